import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { BASE_CHUNK_BYTES, commitBase, consistentPosition, copyDisksIntoBase, ensureSyncIntent, type BaseCopyProgress } from '../../datapath/base-image';
import { TargetNotRestorableError } from '../../datapath/log-chain';
import type { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { rehydrate } from '../../datapath/rehydrate';
import { createRestorePoint } from '../../datapath/restore-points';
import type { DomainDisk } from '../../datapath/records';
import type { CreateDiskSpec } from '../../sites/provider';
import { useTestStack } from '../harness/stack';
import { drainJournal, MemorySite } from '../unit/datapath-memory-site';

// Several chunks per disk, a partial last chunk, and chunks left zero.
const DISKS: DomainDisk[] = [
  { vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 3 * BASE_CHUNK_BYTES },
  { vm: 'db-1', diskId: 'db-1-disk-1', sizeBytes: BASE_CHUNK_BYTES + BASE_CHUNK_BYTES / 2 },
  { vm: 'app-1', diskId: 'app-1-disk-0', sizeBytes: 256 * 1024 },
];
const VMS = ['db-1', 'app-1'];
const LATEST = { kind: 'latest' } as const;

class Clock {
  constructor(public now: number) {}
  tick(): number {
    return ++this.now;
  }
}

/** Random guest writes in the first 256 KiB of each disk, so that the later chunks stay zero. */
function writeWorkload(site: MemorySite, count: number, clock: Clock): void {
  for (let i = 0; i < count; i++) {
    const disk = DISKS[Math.floor(Math.random() * DISKS.length)];
    const length = 512 * (1 + Math.floor(Math.random() * 16));
    site.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (256 * 1024 - length)), randomBytes(length), clock.tick());
  }
}

/** A protected site whose disks held data before protection began: none of it is in the journal. */
async function siteWithHistory(): Promise<MemorySite> {
  const site = new MemorySite();
  for (const disk of DISKS) {
    await site.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
    randomBytes(200_000).copy(site.disks.get(disk.diskId)!, 4096);
  }
  return site;
}

const snapshot = (site: MemorySite) => new Map([...site.disks].map(([id, data]) => [id, Buffer.from(data)]));

function assertDisksEqual(target: MemorySite, expected: Map<string, Buffer>, what: string): void {
  for (const disk of DISKS) assert.ok(target.disks.get(disk.diskId)!.equals(expected.get(disk.diskId)!), `${what}: disk ${disk.diskId} differs`);
}

const drain = (store: ObjectStore, ownership: Ownership, source: MemorySite, epoch: number, site: string, cursor: number) =>
  drainJournal(store, ownership, source, { epoch, site, cursor, vms: VMS, maxEntries: 10, maxBytes: 256 * 1024 });

const journalMark = async (site: MemorySite) => (await site.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 })).lastSequence;

describe('datapath bases on real S3: initial sync of live disks, base + log rehydration, refused targets', () => {
  const { store } = useTestStack();

  it('copies live disks into a base resumably; base + log is exact from its consistent position on, and nothing before it is offered', async () => {
    const ownership = new Ownership(store, 'sync');
    await ownership.claim('primary');
    const primary = await siteWithHistory();
    const clock = new Clock(1_000);
    writeWorkload(primary, 30, clock);
    const { cursor } = await drain(store, ownership, primary, 1, 'primary', 0);
    const intent = await ensureSyncIntent(store, ownership, { epoch: 1, cursor, site: 'primary', now: clock.tick() });
    assert.equal((await ensureSyncIntent(store, ownership, { epoch: 1, cursor: cursor + 99, site: 'primary', now: 0 })).cursor, cursor, 'a retry gets the first intent');
    await assert.rejects(createRestorePoint(store, ownership, { reason: 'on-demand', vms: [], now: clock.now }), /initial sync of epoch 1 .* not finished/);

    // The guest keeps writing while the chunks are read; the first copy attempt dies at its third report.
    const reads: Array<{ disk: number; offset: number }> = [];
    const source = {
      readDisk: (diskId: string, offset: number, length: number) => {
        reads.push({ disk: DISKS.findIndex((d) => d.diskId === diskId), offset });
        writeWorkload(primary, 4, clock);
        return primary.readDisk(diskId, offset, length);
      },
    };
    const baseId = ownership.keys.baseId(1, intent.cursor);
    let last: BaseCopyProgress | undefined;
    let batches = 0;
    const copy = (resumeFrom?: BaseCopyProgress) =>
      copyDisksIntoBase({
        store,
        ownership,
        baseId,
        disks: DISKS,
        source,
        resumeFrom,
        concurrency: 2,
        onProgress: (progress) => {
          if (++batches === 3) throw new Error('worker died');
          last = progress;
        },
      });
    await assert.rejects(copy(), /worker died/);
    assert.ok(last && last.disk < DISKS.length && (last.disk > 0 || last.offset > 0), `the first attempt reported progress: ${JSON.stringify(last)}`);
    const checkpoint = last;
    reads.length = 0;
    const resumed = await copy(checkpoint);
    const before = reads.filter((r) => r.disk < checkpoint.disk || (r.disk === checkpoint.disk && r.offset < checkpoint.offset));
    assert.deepEqual(before, [], `nothing before the resume point (disk ${checkpoint.disk} at ${checkpoint.offset}) is read again`);
    assert.deepEqual([resumed.disk, resumed.offset], [DISKS.length, 0], 'every disk copied');
    const storedChunks = (await Promise.all(DISKS.map(async (d) => (await store.list(ownership.keys.baseChunksPrefix(baseId, d.diskId))).keys.length))).reduce((a, b) => a + b);
    assert.equal(storedChunks, 3, 'one chunk per disk holds data; zero chunks are not stored');

    const mark = await journalMark(primary);
    const markedAt = clock.tick();
    assert.equal(await consistentPosition(store, ownership, primary, { epoch: 1, cursor: intent.cursor, vms: VMS, journalMark: mark }), undefined, 'the copy-time writes are not logged yet');
    await drain(store, ownership, primary, 1, 'primary', cursor);
    const consistentFrom = await consistentPosition(store, ownership, primary, { epoch: 1, cursor: intent.cursor, vms: VMS, journalMark: mark });
    assert.ok(consistentFrom && consistentFrom.segment > intent.cursor);
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: LATEST }), TargetNotRestorableError, 'chunks without base.json are not a base');

    const base = await commitBase(store, ownership, { epoch: 1, cursor: intent.cursor, kind: 'initial-sync', disks: DISKS, consistentFrom, timestamp: markedAt, createdAt: markedAt });
    assert.equal(base.disks.reduce((sum, d) => sum + d.chunks.length, 0), storedChunks);
    const toEnd = new MemorySite();
    const result = await rehydrate({ store, ownership, target: toEnd, disks: DISKS, datastore: 'ds', upTo: LATEST });
    assert.equal(result.base, base.id);
    assertDisksEqual(toEnd, snapshot(primary), 'to the end');

    // Disks the operation created already are not created again; the domain's others are.
    const prepared = new MemorySite();
    for (const disk of [DISKS[0], DISKS[2]]) await prepared.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: false });
    const created: string[] = [];
    const counting = Object.assign(Object.create(prepared) as MemorySite, { createDisk: (spec: CreateDiskSpec) => (created.push(spec.id), prepared.createDisk(spec)) });
    await rehydrate({ store, ownership, target: counting, disks: DISKS, datastore: 'ds', preparedDisks: new Set([DISKS[0].diskId, DISKS[2].diskId]), upTo: LATEST });
    assert.deepEqual(created, [DISKS[1].diskId]);
    assertDisksEqual(prepared, snapshot(primary), 'into disks created before');

    const inside = { epoch: 1, segment: intent.cursor, entries: 1 };
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: inside } }), /inside the initial sync/);
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'instant', at: 1_010 } }), /before the initial sync of epoch 1/);

    const atPoint = snapshot(primary);
    const point = await createRestorePoint(store, ownership, { reason: 'on-demand', vms: [], now: clock.tick() });
    writeWorkload(primary, 20, clock);
    const instant = clock.now;
    const atInstant = snapshot(primary);
    writeWorkload(primary, 20, clock);
    await drain(store, ownership, primary, 1, 'primary', point.lastJournalSequence);
    const toPoint = new MemorySite();
    await rehydrate({ store, ownership, target: toPoint, disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: point.position } });
    assertDisksEqual(toPoint, atPoint, 'to the restore point');
    const toInstant = new MemorySite();
    await rehydrate({ store, ownership, target: toInstant, disks: DISKS, datastore: 'ds', upTo: { kind: 'instant', at: instant } });
    assertDisksEqual(toInstant, atInstant, 'to an instant');
  });

  it('reads only the chunks the site lists as allocated; a chunk first written after its listing is exact from the log', async () => {
    const ownership = new Ownership(store, 'allocated');
    await ownership.claim('primary');
    const primary = await siteWithHistory();
    const clock = new Clock(1_000);
    const { cursor } = await drain(store, ownership, primary, 1, 'primary', 0);
    const intent = await ensureSyncIntent(store, ownership, { epoch: 1, cursor, site: 'primary', now: clock.tick() });
    const [first] = DISKS;
    const reads: string[] = [];
    const source = {
      allocatedChunks: (diskId: string, chunkBytes: number) => {
        const data = primary.disks.get(diskId)!;
        const listed: number[] = [];
        for (let offset = 0; offset < data.length; offset += chunkBytes) if (data.subarray(offset, offset + chunkBytes).some((byte) => byte !== 0)) listed.push(offset);
        // The guest writes a chunk of this disk that the listing just called empty.
        if (diskId === first.diskId) primary.guestWrite(first.vm, first.diskId, 2 * BASE_CHUNK_BYTES + 512, randomBytes(8192), clock.tick());
        return Promise.resolve(listed);
      },
      readDisk: (diskId: string, offset: number, length: number) => {
        reads.push(`${diskId}@${offset}`);
        return primary.readDisk(diskId, offset, length);
      },
    };
    const baseId = ownership.keys.baseId(1, intent.cursor);
    const reported: string[] = [];
    const copy = await copyDisksIntoBase({ store, ownership, baseId, disks: DISKS, source, onProgress: (p) => void reported.push(`${p.disk}@${p.offset}`) });
    assert.deepEqual(reads, DISKS.map((d) => `${d.diskId}@0`), 'only the chunk each disk held when listed is read');
    // Progress (the activity's heartbeat) after each disk too, so that thousands of empty disks are not one silent stretch.
    assert.equal(reported.length, reads.length + DISKS.length, `a report after each chunk and each disk: ${reported.join(' ')}`);
    assert.equal(reported.at(-1), '3@0');
    assert.equal(copy.bytesRead, DISKS.reduce((sum, d) => sum + Math.min(BASE_CHUNK_BYTES, d.sizeBytes), 0));

    const mark = await journalMark(primary);
    await drain(store, ownership, primary, 1, 'primary', cursor);
    const consistentFrom = await consistentPosition(store, ownership, primary, { epoch: 1, cursor: intent.cursor, vms: VMS, journalMark: mark });
    assert.ok(consistentFrom);
    await commitBase(store, ownership, { epoch: 1, cursor: intent.cursor, kind: 'initial-sync', disks: DISKS, consistentFrom, timestamp: clock.now, createdAt: clock.now });
    const target = new MemorySite();
    await rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: LATEST });
    assertDisksEqual(target, snapshot(primary), 'base of the listed chunks + log');
  });

  it('copies a domain of many small disks several disks at once, never more than its concurrency in flight', async () => {
    const ownership = new Ownership(store, 'many-disks');
    const disks: DomainDisk[] = Array.from({ length: 40 }, (_, i) => ({ vm: `vm-${i}`, diskId: `vm-${i}-disk-0`, sizeBytes: BASE_CHUNK_BYTES }));
    const site = new MemorySite();
    for (const disk of disks) {
      await site.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
      randomBytes(4096).copy(site.disks.get(disk.diskId)!, 0);
    }
    let inFlight = 0;
    let mostInFlight = 0;
    const disksInFlight = new Set<string>();
    let mostDisksInFlight = 0;
    const source = {
      allocatedChunks: () => Promise.resolve([0]),
      readDisk: async (diskId: string, offset: number, length: number) => {
        inFlight++;
        disksInFlight.add(diskId);
        mostInFlight = Math.max(mostInFlight, inFlight);
        mostDisksInFlight = Math.max(mostDisksInFlight, disksInFlight.size);
        // A site's round trip: the reads of other disks start meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        disksInFlight.delete(diskId);
        return site.readDisk(diskId, offset, length);
      },
    };
    const baseId = ownership.keys.baseId(1, 0);
    const copy = await copyDisksIntoBase({ store, ownership, baseId, disks, source, concurrency: 4, onProgress: () => undefined });
    assert.deepEqual([copy.disk, copy.chunksStored], [disks.length, disks.length]);
    assert.deepEqual([mostInFlight, mostDisksInFlight], [4, 4], 'four reads in flight, each of another disk (one at a time took a round trip per disk in a row)');
  });

  it("a new owner's initial sync replaces the old chain: failover to a point in time, then rebuilds at the new site", async () => {
    const ownership = new Ownership(store, 'pit-failover');
    await ownership.claim('primary');
    const primary = new MemorySite();
    for (const disk of DISKS) await primary.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
    const clock = new Clock(1_000);
    writeWorkload(primary, 40, clock);
    const first = await drain(store, ownership, primary, 1, 'primary', 0);
    const point = await createRestorePoint(store, ownership, { reason: 'on-demand', vms: [], now: clock.tick() });
    const atPoint = snapshot(primary);
    writeWorkload(primary, 40, clock);
    await drain(store, ownership, primary, 1, 'primary', first.cursor);

    // The failover rebuilds the point at the recovery site, claims epoch 2 there, and protects from its own journal.
    const recovery = new MemorySite();
    await rehydrate({ store, ownership, target: recovery, disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: point.position } });
    assert.equal((await ownership.claim('recovery')).epoch, 2);
    const intent = await ensureSyncIntent(store, ownership, { epoch: 2, cursor: 0, site: 'recovery', now: clock.tick() });
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: LATEST }), /initial sync of epoch 2 .* not finished/);
    const baseId = ownership.keys.baseId(2, intent.cursor);
    const source = {
      readDisk: (diskId: string, offset: number, length: number) => {
        writeWorkload(recovery, 3, clock);
        return recovery.readDisk(diskId, offset, length);
      },
    };
    await copyDisksIntoBase({ store, ownership, baseId, disks: DISKS, source, onProgress: () => undefined });
    const mark = await journalMark(recovery);
    const markedAt = clock.tick();
    await drain(store, ownership, recovery, 2, 'recovery', 0);
    const consistentFrom = await consistentPosition(store, ownership, recovery, { epoch: 2, cursor: 0, vms: VMS, journalMark: mark });
    assert.notEqual(consistentFrom, undefined);
    await commitBase(store, ownership, { epoch: 2, cursor: 0, kind: 'initial-sync', disks: DISKS, consistentFrom: consistentFrom!, timestamp: markedAt, createdAt: markedAt });

    const rebuilt = new MemorySite();
    await rehydrate({ store, ownership, target: rebuilt, disks: DISKS, datastore: 'ds', upTo: LATEST });
    assertDisksEqual(rebuilt, snapshot(recovery), 'the new epoch, not the old chain');
    const old = new MemorySite();
    await rehydrate({ store, ownership, target: old, disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: point.position } });
    assertDisksEqual(old, atPoint, 'a point of the old epoch');
  });
});
