import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RetentionPolicy } from '../../common/retention';
import { commitBase, copyDisksIntoBase, ensureSyncIntent, listBases } from '../../datapath/base-image';
import { collectGarbage } from '../../datapath/gc';
import { resolveChain } from '../../datapath/log-chain';
import { Ownership } from '../../datapath/ownership';
import type { DomainDisk, RestorePoint } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import { createRestorePoint, listRestorePoints, pinRestorePoint, pointAtTarget, readPointTags, recordTested, unpinRestorePoint } from '../../datapath/restore-points';
import { useTestStack } from '../harness/stack';
import { drainJournal, MemorySite } from '../unit/datapath-memory-site';

const DISKS: DomainDisk[] = [
  { vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 512 * 1024 },
  { vm: 'app-1', diskId: 'app-1-disk-0', sizeBytes: 256 * 1024 },
];
/** Ten writes from each start (ms on a simulated clock), a restore point after each burst: its timestamp is start + 9. */
const BURSTS = [1_000, 1_500, 2_200, 2_600, 3_300, 5_200, 5_700, 6_100];
/** Every point for 1 s; the newest point of each 1 s bucket for 4 s; tested points pinned. */
const POLICY: RetentionPolicy = {
  tiers: [
    { everyMs: 'all', forMs: 1_000 },
    { everyMs: 1_000, forMs: 4_000 },
  ],
  keepTested: true,
};
const WINDOW_MS = 4_000;
const NOW = 6_500;

const snapshot = (site: MemorySite) => new Map([...site.disks].map(([id, data]) => [id, Buffer.from(data)]));

describe('restore point retention on real S3: garbage collection keeps exactly what the tiers and pins name, and a pinned point older than the window stays restorable', () => {
  const { store } = useTestStack();

  async function protectedDomain(domain: string) {
    const ownership = new Ownership(store, domain);
    await ownership.claim('primary');
    const site = new MemorySite();
    for (const disk of DISKS) {
      await site.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
      randomBytes(50_000).copy(site.disks.get(disk.diskId)!, 4096);
    }
    await ensureSyncIntent(store, ownership, { epoch: 1, cursor: 0, site: 'primary', now: 900 });
    await copyDisksIntoBase({ store, ownership, baseId: ownership.keys.baseId(1, 0), disks: DISKS, source: site, onProgress: () => undefined });
    await commitBase(store, ownership, { epoch: 1, cursor: 0, kind: 'initial-sync', disks: DISKS, consistentFrom: null, timestamp: 950, createdAt: 950 });
    let cursor = 0;
    const points = new Map<number, RestorePoint>();
    const expected = new Map<string, Map<string, Buffer>>();
    for (const start of BURSTS) {
      for (let i = 0; i < 10; i++) {
        const disk = DISKS[i % DISKS.length];
        site.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (disk.sizeBytes - 4096)), randomBytes(512 * (1 + (i % 8))), start + i);
      }
      ({ cursor } = await drainJournal(store, ownership, site, { epoch: 1, site: 'primary', cursor, vms: ['db-1', 'app-1'], maxEntries: 20, maxBytes: 1024 * 1024 }));
      const point = await createRestorePoint(store, ownership, { reason: 'policy', vms: [], disks: DISKS, now: start + 50 });
      assert.equal(point.timestamp, start + 9);
      points.set(point.timestamp, point);
      expected.set(point.id, snapshot(site));
    }
    return { ownership, points, expected };
  }

  it('keeps the tiers\' points plus a pinned and a tested one; unpinned and untested they go, and so do the base and log only they needed', async () => {
    const { ownership, points, expected } = await protectedDomain('retention');
    const at = (timestamp: number) => points.get(timestamp)!;
    const rebuildsExactly = async (timestamp: number, when: string) => {
      const target = new MemorySite();
      await rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: { kind: 'position', position: at(timestamp).position } });
      for (const disk of DISKS) assert.ok(target.disks.get(disk.diskId)!.equals(expected.get(at(timestamp).id)!.get(disk.diskId)!), `${when}: the point of ${timestamp} rebuilds ${disk.diskId} byte for byte`);
    };
    const remaining = async () => (await listRestorePoints(store, ownership)).map((p) => p.timestamp).sort((a, b) => a - b);

    // The oldest point, 5.5 s old, is older than the 4 s window: a pin keeps it.
    await pinRestorePoint(store, ownership, at(1_009).id, { pinnedBy: 'dr-lead', now: 6_000 });
    // Not the newest of its 1 s bucket (2 609 is): a drill's test keeps it, with keepTested.
    await recordTested(store, ownership, at(2_209).id, { drill: 'd1', workflowId: 'drill/retention/x', at: 6_200, outcome: 'passed' });
    const segmentsBefore = (await resolveChain(store, ownership)).length;

    const first = await collectGarbage({ store, ownership, disks: DISKS, windowMs: WINDOW_MS, retention: POLICY, now: NOW });
    // Tier 1 keeps 5 709 and 6 109 (younger than 1 s); tier 2 the newest of buckets 2, 3, 5 and 6 younger than 4 s:
    // 2 609, 3 309, 5 709, 6 109. 1 509 (newest of bucket 1 but 4.991 s old) and 5 209 (older than 5 709 in bucket 5) go.
    assert.deepEqual(await remaining(), [1_009, 2_209, 2_609, 3_309, 5_709, 6_109]);
    assert.equal(first.deleted.points, 2);
    assert.ok(first.compactedInto, 'the log older than the window was compacted');
    assert.equal(first.oldestNeededBase, ownership.keys.baseId(1, 0), 'the pinned point still starts from the initial base');
    assert.equal(first.deleted.segments, 0);
    assert.equal((await resolveChain(store, ownership)).length, segmentsBefore);
    for (const timestamp of [1_009, 2_209, 3_309, 6_109]) await rebuildsExactly(timestamp, 'after the first collection');

    // Unpinned, and with a policy that no longer keeps tested points: the next run applies it.
    await unpinRestorePoint(store, ownership, at(1_009).id);
    const second = await collectGarbage({ store, ownership, disks: DISKS, windowMs: WINDOW_MS, retention: { ...POLICY, keepTested: false }, now: NOW });
    assert.deepEqual(await remaining(), [2_609, 3_309, 5_709, 6_109]);
    assert.equal(second.deleted.points, 2);
    assert.deepEqual([...(await readPointTags(store, ownership)).keys()], [], 'the tested record went with its point');
    assert.equal(second.deleted.bases, 1, 'the initial base only the pinned point needed is gone');
    assert.ok(second.deleted.segments > 0, 'so is the log before the compaction base');
    assert.deepEqual((await listBases(store, ownership)).map((b) => b.kind), ['compaction']);
    for (const timestamp of [2_609, 3_309, 6_109]) await rebuildsExactly(timestamp, 'after the second collection');
    assert.deepEqual((await collectGarbage({ store, ownership, disks: DISKS, windowMs: WINDOW_MS, retention: { ...POLICY, keepTested: false }, now: NOW })).deleted, { points: 0, segments: 0, bases: 0, leases: 0 }, 'a repeated run changes nothing');
    // A run killed after deleting a point but before its tags: the next one finds them without their point.
    await recordTested(store, ownership, at(1_509).id, { drill: 'd0', workflowId: 'drill/retention/w', at: 5_000, outcome: 'failed' });
    await collectGarbage({ store, ownership, disks: DISKS, windowMs: WINDOW_MS, retention: POLICY, now: NOW });
    assert.deepEqual([...(await readPointTags(store, ownership)).keys()], [], 'the tags of a point that is gone are collected');
    assert.deepEqual(await remaining(), [2_609, 3_309, 5_709, 6_109]);
  });

  it('finds the point a drill rebuilt: at its position, or at an instant no later write precedes', async () => {
    const { ownership, points } = await protectedDomain('tested-point');
    const id = (timestamp: number) => points.get(timestamp)!.id;
    assert.equal((await pointAtTarget(store, ownership, { kind: 'position', position: points.get(3_309)!.position }))?.id, id(3_309));
    // No write between 3 309 and 5 200: an instant in between rebuilds exactly the point of 3 309.
    assert.equal((await pointAtTarget(store, ownership, { kind: 'instant', at: 4_000 }))?.id, id(3_309));
    assert.equal((await pointAtTarget(store, ownership, { kind: 'instant', at: 6_500 }))?.id, id(6_109), 'after the last write: the last point');
    // Inside a burst: writes of 3 300-3 305 are after the point of 2 609.
    assert.equal(await pointAtTarget(store, ownership, { kind: 'instant', at: 3_305 }), undefined);
    assert.equal(await pointAtTarget(store, ownership, { kind: 'instant', at: 900 }), undefined, 'before any point');
    const once = await recordTested(store, ownership, id(3_309), { drill: 'd2', workflowId: 'drill/tested-point/x', at: 7_000, outcome: 'failed' });
    const again = await recordTested(store, ownership, id(3_309), { drill: 'd2', workflowId: 'drill/tested-point/x', at: 7_500, outcome: 'failed' });
    assert.deepEqual(again, once, 'a repeated record finds the first');
    assert.deepEqual((await readPointTags(store, ownership)).get(id(3_309))?.tested.map((t) => [t.drill, t.at, t.outcome]), [['d2', 7_000, 'failed']]);
  });
});
