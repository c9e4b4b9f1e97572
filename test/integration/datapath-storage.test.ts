import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { ObjectStore } from '../../datapath/object-store';
import { parseSegmentReference } from '../../datapath/segment-objects';
import { Ownership, StaleEpochError } from '../../datapath/ownership';
import { rehydrate, type RehydrationProgress } from '../../datapath/rehydrate';
import { replicate, replicateUntilDrained, SEGMENTS_STAGED_AHEAD } from '../../datapath/replicator';
import { createRestorePoint, listRestorePoints } from '../../datapath/restore-points';
import { SegmentWriter } from '../../datapath/segment-writer';
import { ReplicationMemory } from '../../datapath/replication-memory';
import type { DomainDisk } from '../../datapath/records';
import { decodeSegment, encodeSegment } from '../../datapath/segment-codec';
import { startChild, TYPESCRIPT_LOADER } from '../../common/child-process';
import { useTestStack } from '../harness/stack';
import { drainJournal, MemorySite } from '../unit/datapath-memory-site';

const DISKS: DomainDisk[] = [
  { vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 1024 * 1024 },
  { vm: 'db-1', diskId: 'db-1-disk-1', sizeBytes: 512 * 1024 },
  { vm: 'app-1', diskId: 'app-1-disk-0', sizeBytes: 256 * 1024 },
];

/** Random guest writes of 512 B..16 KiB, at clock `start + i`. */
function writeWorkload(site: MemorySite, count: number, start: number): void {
  for (let i = 0; i < count; i++) {
    const disk = DISKS[i % DISKS.length];
    const length = 512 * (1 + Math.floor(Math.random() * 32));
    const offset = Math.floor(Math.random() * (disk.sizeBytes - length));
    site.guestWrite(disk.vm, disk.diskId, offset, randomBytes(length), start + i);
  }
}

/** Counts the plain PUTs (segment uploads) in flight at once, each made slow enough that the next segment is read and encoded before it ends. */
class UploadCountingStore extends ObjectStore {
  private inFlight = 0;
  mostInFlight = 0;

  override async put(key: string, body: Buffer | string, contentType?: string): Promise<void> {
    this.mostInFlight = Math.max(this.mostInFlight, ++this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      await super.put(key, body, contentType);
    } finally {
      this.inFlight--;
    }
  }
}

function snapshot(site: MemorySite): Map<string, Buffer> {
  return new Map([...site.disks].map(([id, data]) => [id, Buffer.from(data)]));
}

const drain = (store: ObjectStore, ownership: Ownership, source: MemorySite, epoch: number, site: string, cursor: number, maxEntries = 25) =>
  drainJournal(store, ownership, source, { epoch, site, cursor, vms: ['db-1', 'app-1'], maxEntries, maxBytes: 256 * 1024 });

function assertDisksEqual(target: MemorySite, expected: Map<string, Buffer>): void {
  for (const disk of DISKS) assert.ok(target.disks.get(disk.diskId)!.equals(expected.get(disk.diskId)!), `disk ${disk.diskId} differs`);
}

describe('datapath on real S3: fencing, replication log, restore points, rehydration', () => {
  const { stack, store } = useTestStack();

  /** The domain `name` claimed by the primary (epoch 1), its disks protected, `writes` guest writes journaled. */
  async function claimedPrimary(name: string, writes: number): Promise<{ ownership: Ownership; primary: MemorySite }> {
    const ownership = new Ownership(store, name);
    await ownership.claim('primary');
    const primary = new MemorySite();
    for (const disk of DISKS) await primary.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
    writeWorkload(primary, writes, 1_000);
    return { ownership, primary };
  }

  it('replicates, makes a restore point, and rehydrates byte-identical disks to the point, to an instant and to the end', async () => {
    const ownership = new Ownership(store, 'pitr');
    assert.equal((await ownership.claim('primary')).won, true);
    const primary = new MemorySite();
    for (const disk of DISKS) await primary.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });

    writeWorkload(primary, 120, 1_000);
    let progress = await drain(store, ownership, primary, 1, 'primary', 0);
    const atPoint = snapshot(primary);
    const point = await createRestorePoint(store, ownership, { reason: 'on-demand', vms: [], now: 5_000 });
    assert.equal(point.timestamp, 1_119);

    writeWorkload(primary, 60, 2_000);
    const atInstant = snapshot(primary);
    writeWorkload(primary, 60, 3_000);
    progress = await drain(store, ownership, primary, 1, 'primary', progress.cursor);
    assert.equal(progress.cursor, 240);
    assert.deepEqual((await listRestorePoints(store, ownership)).map((p) => p.id), [point.id]);

    const toPoint = new MemorySite();
    await rehydrate({ store, ownership, target: toPoint, disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: point.position } });
    assertDisksEqual(toPoint, atPoint);

    const toInstant = new MemorySite();
    await rehydrate({ store, ownership, target: toInstant, disks: DISKS, datastore: 'ds', upTo: { kind: 'instant', at: 2_059 } });
    assertDisksEqual(toInstant, atInstant);

    const toEnd = new MemorySite();
    const result = await rehydrate({ store, ownership, target: toEnd, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
    assertDisksEqual(toEnd, snapshot(primary));
    assert.equal(result.disks.length, 3);
  });

  it('resumes a replicator from a stale cursor without duplicating, and a rehydration from its last progress', async () => {
    const { ownership, primary } = await claimedPrimary('resume', 100);
    const first = await drain(store, ownership, primary, 1, 'primary', 0, 10);
    assert.equal(first.segmentsWritten, 10);
    writeWorkload(primary, 35, 2_000);
    // A killed worker whose last recorded heartbeat said cursor 0: everything is adopted, then new writes follow.
    const again = await drain(store, ownership, primary, 1, 'primary', 0, 10);
    assert.equal(again.segmentsAdopted, 10);
    assert.equal(again.segmentsWritten, 4);
    const chain = await resolveChain(store, ownership);
    assert.equal(chain.length, 14);

    const progress: RehydrationProgress[] = [];
    const target = new MemorySite();
    await assert.rejects(
      rehydrate({
        store,
        ownership,
        target,
        disks: DISKS,
        datastore: 'ds',
        upTo: { kind: 'latest' },
        onProgress: (p) => {
          progress.push(p);
          if (progress.length === 6) throw new Error('worker died');
        },
      }),
      /worker died/,
    );
    const resumed = await rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' }, resumeAfter: progress.at(-1) });
    assert.equal(resumed.segmentsApplied, 8);
    assertDisksEqual(target, snapshot(primary));
  });

  it('uploads large segments two at a time, commits them in order, and a resumed replicator that reads the journal in other slices leaves no upload behind', async () => {
    const { ownership, primary } = await claimedPrimary('uploads-ahead', 0);
    const counting = new UploadCountingStore(store.s3, store.settings);
    const drainFrom = (cursor: number, maxEntries: number) =>
      drainJournal(counting, ownership, primary, { epoch: 1, site: 'primary', cursor, vms: ['db-1', 'app-1'], maxEntries, maxBytes: 256 * 1024, inlineMaxBytes: 1024 });
    writeWorkload(primary, 100, 1_000);
    const first = await drainFrom(0, 10);
    assert.equal(first.segmentsWritten, 10);
    assert.equal(counting.mostInFlight, SEGMENTS_STAGED_AHEAD + 1, 'the next segments upload while the one before them is committed');

    // A worker killed after its heartbeat said cursor 0, resumed with smaller reads of the journal:
    // each staged segment ends inside the one the first run committed, which is adopted instead.
    writeWorkload(primary, 35, 2_000);
    const again = await drainFrom(0, 7);
    assert.equal(again.segmentsAdopted, 10);
    assert.ok(again.segmentsWritten >= 5, `${again.segmentsWritten} segments written after the adopted ones`);
    assert.equal(again.cursor, 135);

    const keys = ownership.keys;
    const chain = await resolveChain(store, ownership);
    const referenced = new Set<string>();
    for (const link of chain) {
      const reference = parseSegmentReference(link.key, (await store.get(link.key))!);
      assert.ok(reference, `segment ${link.key} refers to its uploaded bytes`);
      referenced.add(reference.data);
      assert.equal(link.bytes, reference.bytes, 'the chain counts the bytes a reader fetches');
    }
    const uploads = (await store.list(keys.segmentDataPrefix(1))).keys;
    assert.deepEqual(uploads.sort(), [...referenced].sort(), 'every upload that lost its key was removed');

    const target = new MemorySite();
    await rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
    assertDisksEqual(target, snapshot(primary));

    // The bytes of a referenced segment lost: the reader names the log key and applies nothing of it.
    const damaged = chain[4];
    await store.delete([parseSegmentReference(damaged.key, (await store.get(damaged.key))!)!.data]);
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } }), (error: Error) => {
      assert.equal(error.name, 'CorruptSegmentError');
      assert.match(error.message, new RegExp(`${damaged.key}: the segment's bytes at .* are missing`));
      return true;
    });
  });

  it("replicators sharing a worker's memory stage ahead only within it, and a run that fails gives its room back", async () => {
    const counting = new UploadCountingStore(store.s3, store.settings);
    const maxBytes = 256 * 1024;
    // Room for one segment read ahead (a journal read and its encoding), for both replicators together.
    const memory = new ReplicationMemory(2 * maxBytes);
    const domains = await Promise.all(
      ['shared-memory-1', 'shared-memory-2'].map(async (name) => {
        const { ownership, primary } = await claimedPrimary(name, 100);
        return { ownership, primary };
      }),
    );
    const drained = await Promise.all(
      domains.map(({ ownership, primary }) => drainJournal(counting, ownership, primary, { epoch: 1, site: 'primary', cursor: 0, vms: ['db-1', 'app-1'], maxEntries: 10, maxBytes, inlineMaxBytes: 1024, memory })),
    );
    assert.deepEqual(drained.map((p) => p.segmentsWritten), [10, 10]);
    assert.equal(counting.mostInFlight, 3, 'each replicator uploads the segment it commits, and one of them one more ahead');
    assert.equal(memory.reservedBytes, 0);
    for (const { ownership, primary } of domains) {
      const target = new MemorySite();
      await rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
      assertDisksEqual(target, snapshot(primary));
    }

    // The store refuses an upload while segments are staged ahead: the run fails and holds no room.
    const roomy = new ReplicationMemory();
    const failing = new (class extends ObjectStore {
      private puts = 0;
      override async put(key: string, body: Buffer | string, contentType?: string): Promise<void> {
        if (++this.puts === 4) throw new Error('the store went away');
        await new Promise((resolve) => setTimeout(resolve, 50));
        await super.put(key, body, contentType);
      }
    })(store.s3, store.settings);
    const { ownership, primary } = domains[0];
    writeWorkload(primary, 60, 2_000);
    await assert.rejects(
      drainJournal(failing, ownership, primary, { epoch: 1, site: 'primary', cursor: drained[0].cursor, vms: ['db-1', 'app-1'], maxEntries: 10, maxBytes, inlineMaxBytes: 1024, memory: roomy }),
      /the store went away/,
    );
    assert.equal(roomy.reservedBytes, 0);
  });

  it('a replicator overtaken by another (the journal let go of what the other logged) adopts its segments instead of waiting for writes that never come', async () => {
    const { ownership, primary } = await claimedPrimary('overtaken', 40);
    // The protection's replicator logs everything, and the site frees what it acknowledged.
    const protection = await drain(store, ownership, primary, 1, 'primary', 0, 10);
    await primary.trimJournal(protection.cursor);
    // A drain that read the end of the log just before the protection's last two segments landed.
    const from = (await resolveChain(store, ownership)).at(-2)!.segment;
    let polls = 0;
    const drained = await replicate({
      source: primary,
      writer: new SegmentWriter(store, ownership, 1, 'primary'),
      vms: ['db-1', 'app-1'],
      cursor: from,
      maxEntries: 10,
      maxBytes: 256 * 1024,
      idlePollMs: 1,
      trimJournal: false,
      onSegment: () => undefined,
      shouldStop: () => ++polls > 20,
    });
    assert.deepEqual({ cursor: drained.cursor, adopted: drained.segmentsAdopted, written: drained.segmentsWritten }, { cursor: protection.cursor, adopted: 2, written: 0 });
  });

  it('a drain that adopts a shorter segment the protection\'s replicator put at its cursor (the answer lost, nothing acknowledged) goes on to the end of the journal', async () => {
    const { ownership, primary } = await claimedPrimary('drain-adopts-shorter', 40);
    const journaled = primary.journal.map((e) => e.sequence);
    const journalEnd = journaled.at(-1)!;
    // The protection's replicator stored its next segment (the first ten writes) and lost the answer: the journal is not trimmed.
    const { entries: firstTen } = await primary.readJournal({ afterSequence: 0, maxEntries: 10 });
    await new SegmentWriter(store, ownership, 1, 'primary').write(0, firstTen, firstTen.at(-1)!.sequence);
    // The drain read the log's end before that segment landed: it stages every write from 0, reads the journal empty after them, then finds the shorter segment at 0.
    const drained = await replicateUntilDrained({
      source: primary,
      writer: new SegmentWriter(store, ownership, 1, 'primary'),
      vms: ['db-1', 'app-1'],
      cursor: 0,
      maxEntries: 2_000,
      maxBytes: 8 * 1024 * 1024,
      idlePollMs: 1,
      trimJournal: true,
      onSegment: () => undefined,
      shouldStop: () => false,
    });
    assert.equal(drained.cursor, journalEnd, `drained to ${drained.cursor} of a journal ending at ${journalEnd}`);
    assert.equal(drained.segmentsAdopted, 1);
    const logged: number[] = [];
    for await (const { segment } of readChain(store, await resolveChain(store, ownership), 2)) logged.push(...segment.entries.map((e) => e.sequence));
    assert.deepEqual(logged, journaled, 'every write of the journal in the log once, in order');
  });

  it('fences a taken-over owner: its writes are refused and its late segments are never read', async () => {
    const { ownership, primary } = await claimedPrimary('takeover', 50);
    const before = await drain(store, ownership, primary, 1, 'primary', 0);
    const atTakeover = snapshot(primary);
    // A writer that verified its epoch before the takeover and keeps writing after it.
    const staleWriter = new SegmentWriter(store, ownership, 1, 'primary');
    await staleWriter.existing(0);
    writeWorkload(primary, 20, 2_000);
    const { entries } = await primary.readJournal({ afterSequence: before.cursor });
    await staleWriter.write(before.cursor, entries.slice(0, 5), entries[4].sequence);
    const afterAcked = await primary.readJournal({ afterSequence: entries[4].sequence });
    for (const entry of entries.slice(0, 5)) entry.data.copy(atTakeover.get(entry.diskId)!, entry.offset);

    const takeover = await ownership.claim('recovery');
    assert.deepEqual([takeover.won, takeover.epoch, takeover.owner.kind], [true, 2, 'takeover']);
    const lateKey = ownership.keys.segment(1, entries[4].sequence);
    await assert.rejects(staleWriter.write(entries[4].sequence, afterAcked.entries, afterAcked.entries.at(-1)!.sequence), StaleEpochError);
    assert.ok(await store.get(lateKey), 'the fenced writer put its segment before learning it was fenced');
    await assert.rejects(drain(store, ownership, primary, 1, 'primary', before.cursor), StaleEpochError);

    const target = new MemorySite();
    await rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
    assertDisksEqual(target, atTakeover);
    assert.equal((await ownership.inspect()).owner?.site, 'recovery');
  });

  it('fails rehydration naming the object when a segment is truncated or corrupted', async () => {
    const { ownership, primary } = await claimedPrimary('damage', 60);
    await drain(store, ownership, primary, 1, 'primary', 0, 20);
    const chain = await resolveChain(store, ownership);
    const victim = chain[1].key;
    const original = (await store.get(victim))!;

    await store.put(victim, original.subarray(0, original.length - 7));
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } }), (error: Error) => error.message.includes(victim) && /truncated/.test(error.message));

    const flipped = Buffer.from(original);
    flipped[flipped.length - 3] ^= 0xff;
    await store.put(victim, flipped);
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } }), (error: Error) => error.message.includes(victim) && /checksum/.test(error.message));

    // A well-formed segment that skips journal entries is a gap, not data.
    await store.put(victim, encodeSegment({ epoch: 1, afterSequence: chain[1].segment + 1, lastSequence: 41, entries: [] }));
    await assert.rejects(rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } }), (error: Error) => error.message.includes(victim));
  });

  it('two processes claiming one domain 200 times: exactly one wins each time and the loser cannot write', async () => {
    const rounds = 200;
    const startAt = Date.now() + 3_000;
    const racers = ['site-a', 'site-b'].map((site) =>
      startChild({
        name: `claimer ${site}`,
        command: process.execPath,
        args: [...TYPESCRIPT_LOADER, path.join(__dirname, '../fixtures/datapath-claimer.ts')],
        logFile: path.join(stack.dir, `claimer-${site}.log`),
        env: { ...process.env, DR_S3_SETTINGS: JSON.stringify(stack.s3Settings), DR_SITE: site, DR_RACE_ROUNDS: String(rounds), DR_START_AT: String(startAt) },
      }),
    );
    const codes = await Promise.all(racers.map((r) => r.exited));
    assert.deepEqual(codes, [0, 0], racers.map((r) => readFileSync(r.logFile, 'utf8')).join('\n'));
    const lines = racers.flatMap((r) =>
      readFileSync(r.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { round: number; site: string; won: boolean; owner: string; write: string }),
    );
    assert.equal(lines.length, 2 * rounds);
    for (let round = 0; round < rounds; round++) {
      const pair = lines.filter((l) => l.round === round);
      const winners = pair.filter((l) => l.won);
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(pair)}`);
      for (const line of pair) {
        assert.equal(line.owner, winners[0].site);
        assert.equal(line.write, line.won ? 'accepted' : 'refused');
      }
      const key = new Ownership(store, `race-${round}`).keys.segment(1, 0);
      assert.equal(decodeSegment(key, (await store.get(key))!).entries[0].data.toString(), winners[0].site);
    }
  });
});
