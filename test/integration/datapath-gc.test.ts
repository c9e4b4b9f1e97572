import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { commitBase, copyDisksIntoBase, ensureSyncIntent, listBases } from '../../datapath/base-image';
import { collectGarbage, type GcStep } from '../../datapath/gc';
import { ReaderLease } from '../../datapath/lease';
import { resolveChain } from '../../datapath/log-chain';
import type { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import type { DomainDisk, RestorePoint } from '../../datapath/records';
import type { RehydrationTarget } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import { createRestorePoint, listRestorePoints } from '../../datapath/restore-points';
import { useTestStack } from '../harness/stack';
import { drainJournal, MemorySite } from '../unit/datapath-memory-site';
import { parseSegmentReference } from '../../datapath/segment-objects';

const DISKS: DomainDisk[] = [
  { vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 1024 * 1024 },
  { vm: 'app-1', diskId: 'app-1-disk-0', sizeBytes: 512 * 1024 },
];
const WINDOW_MS = 1_000;

const snapshot = (site: MemorySite) => new Map([...site.disks].map(([id, data]) => [id, Buffer.from(data)]));

/**
 * A protected domain with three bursts of writes (at t=1000, 2000 and 4500), each followed by a
 * restore point, and the disks as they were at each point and at an instant inside the last burst.
 */
async function protectedDomain(store: ObjectStore, domain: string, options: { initialSync?: boolean } = {}) {
  const ownership = new Ownership(store, domain);
  await ownership.claim('primary');
  const site = new MemorySite();
  for (const disk of DISKS) {
    await site.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
    if (options.initialSync) randomBytes(100_000).copy(site.disks.get(disk.diskId)!, 8192);
  }
  if (options.initialSync) {
    await ensureSyncIntent(store, ownership, { epoch: 1, cursor: 0, site: 'primary', now: 900 });
    await copyDisksIntoBase({ store, ownership, baseId: ownership.keys.baseId(1, 0), disks: DISKS, source: site, onProgress: () => undefined });
    await commitBase(store, ownership, { epoch: 1, cursor: 0, kind: 'initial-sync', disks: DISKS, consistentFrom: null, timestamp: 950, createdAt: 950 });
  }
  let cursor = 0;
  const expected = new Map<string, Map<string, Buffer>>();
  const points: RestorePoint[] = [];
  for (const start of [1_000, 2_000, 4_500]) {
    for (let i = 0; i < 60; i++) {
      const disk = DISKS[i % DISKS.length];
      site.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (disk.sizeBytes - 8192)), randomBytes(512 * (1 + (i % 16))), start + i);
      if (start === 4_500 && i === 29) expected.set('instant', snapshot(site));
    }
    ({ cursor } = await drainJournal(store, ownership, site, { epoch: 1, site: 'primary', cursor, vms: ['db-1', 'app-1'], maxEntries: 15, maxBytes: 1024 * 1024, inlineMaxBytes: 4096 }));
    const point = await createRestorePoint(store, ownership, { reason: 'policy', vms: [], now: start + 100 });
    points.push(point);
    expected.set(point.id, snapshot(site));
  }
  return { ownership, site, points, expected };
}

describe('datapath garbage collection on real S3: compaction into a base, deletion of what nothing needs', () => {
  const { store } = useTestStack();

  async function assertRebuilds(ownership: Ownership, target: RehydrationTarget, expected: Map<string, Buffer>, what: string) {
    const site = new MemorySite();
    await rehydrate({ store, ownership, target: site, disks: DISKS, datastore: 'ds', upTo: target });
    for (const disk of DISKS) assert.ok(site.disks.get(disk.diskId)!.equals(expected.get(disk.diskId)!), `${what}: ${disk.diskId} differs`);
  }

  it('compacts the log older than the window, deletes it and the points there, and is safe to kill after any step', async () => {
    const { ownership, site, points, expected } = await protectedDomain(store, 'gc');
    const segmentsBefore = (await resolveChain(store, ownership)).length;
    const gc = (killAt?: GcStep) =>
      collectGarbage({
        store,
        ownership,
        disks: DISKS,
        windowMs: WINDOW_MS,
        now: 4_700,
        onStep: (step) => {
          if (step === killAt) throw new Error(`killed after ${step}`);
        },
      });
    const inWindow = points[2];
    const check = async (when: string) => {
      assert.deepEqual((await listRestorePoints(store, ownership)).map((p) => p.id), [inWindow.id], when);
      await assertRebuilds(ownership, { kind: 'position', position: inWindow.position }, expected.get(inWindow.id)!, `${when}, to the point in the window`);
      await assertRebuilds(ownership, { kind: 'instant', at: 4_529 }, expected.get('instant')!, `${when}, to an instant in the window`);
      await assertRebuilds(ownership, { kind: 'latest' }, snapshot(site), `${when}, to the end`);
    };

    for (const step of ['points-deleted', 'compacted', 'segments-deleted'] as const) {
      await assert.rejects(gc(step), /killed/);
      await check(`killed after ${step}`);
    }
    const result = await gc();
    await check('after a complete run');
    const bases = await listBases(store, ownership);
    assert.deepEqual(bases.map((b) => [b.id, b.kind]), [[result.oldestNeededBase, 'compaction']], 'the base the killed run committed is reused, not made twice');
    const chain = await resolveChain(store, ownership);
    assert.equal(chain.length, segmentsBefore - 8, 'the 8 segments of the two bursts before the window are gone');
    assert.ok(chain.every((link) => link.segment >= bases[0].cursor));
    const referenced = await Promise.all(chain.map(async (link) => parseSegmentReference(link.key, (await store.get(link.key))!)?.data));
    assert.ok(referenced.every((data) => data !== undefined), 'the segments of this log refer to their uploaded bytes');
    assert.deepEqual((await store.list(ownership.keys.segmentDataPrefix(1))).keys.sort(), referenced.sort(), 'the bytes of deleted segments went with them, also those a killed run left');
    await assert.rejects(
      rehydrate({ store, ownership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: points[0].position } }),
      /before the oldest base .* compacted away/,
    );
    assert.deepEqual((await gc()).deleted, { points: 0, segments: 0, bases: 0, leases: 0 }, 'a repeated run has nothing left to do');
  });

  it('keeps what a live lease names until it is released or expires, and replaces an initial-sync base', async () => {
    const { ownership, site, expected, points } = await protectedDomain(store, 'gc-lease', { initialSync: true });
    const chainBefore = await resolveChain(store, ownership);
    const clock = { now: 4_700 };
    const unplanned = new ReaderLease(store, ownership, 'rehydrate/gc-lease/unplanned', () => clock.now);
    await unplanned.hold(undefined);
    const gc = () => collectGarbage({ store, ownership, disks: DISKS, windowMs: WINDOW_MS, now: clock.now });
    assert.match((await gc()).skipped ?? '', /has not planned yet/);
    assert.equal((await resolveChain(store, ownership)).length, chainBefore.length);

    // A rehydration that started from the initial-sync base before the compaction.
    await unplanned.hold(ownership.keys.baseId(1, 0));
    const pinned = await gc();
    assert.equal(pinned.oldestNeededBase, ownership.keys.baseId(1, 0));
    assert.equal(pinned.deleted.segments, 0);
    await assertRebuilds(ownership, { kind: 'position', position: points[2].position }, expected.get(points[2].id)!, 'with the lease held');

    clock.now += 11 * 60_000;
    const released = await collectGarbage({ store, ownership, disks: DISKS, windowMs: WINDOW_MS + 11 * 60_000, now: clock.now });
    assert.deepEqual([released.deleted.leases, released.deleted.bases], [1, 1], 'the expired lease and the initial-sync base are gone');
    assert.deepEqual((await listBases(store, ownership)).map((b) => b.kind), ['compaction']);
    assert.ok(released.deleted.segments > 0);
    await assertRebuilds(ownership, { kind: 'latest' }, snapshot(site), 'to the end from the compaction base');
    await assertRebuilds(ownership, { kind: 'position', position: points[2].position }, expected.get(points[2].id)!, 'to the point in the window');
  });
});
