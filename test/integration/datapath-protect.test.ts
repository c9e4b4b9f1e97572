import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TargetNotRestorableError } from '../../datapath/log-chain';
import { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { rehydrate } from '../../datapath/rehydrate';
import { listRestorePoints } from '../../datapath/restore-points';
import { protect, protectStatusQuery, restorePointNowUpdate, stopProtectionSignal, type ProtectMode } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { admin } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('protect workflow on real sites: bitmap mode past a tiny throttle, and protection resumed by a new owner', () => {
  const { stack, sites, primary, recovery } = useTestbed({ workers: ['orchestration', 'primary', 'recovery'] });

  it('goes bitmap -> resync -> log, makes no restore point inside the stretch, and rebuilds the primary byte for byte', async () => {
    const handle = await stack.client.workflow.start(protect, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'protect/demo-bitmap',
      args: [
        {
          domain: 'demo',
          site: 'primary',
          vms: ['db-1', 'app-1'],
          protectionWindowMs: 3_600_000,
          restorePointIntervalMs: 300,
          replicatorRunMs: 1_000,
          throttle: { maxBacklogEntries: 5, maxLagMs: 150 },
        },
      ],
    });
    for (let waited = 0; (await handle.query(protectStatusQuery)).mode !== 'log'; waited += 100) {
      assert.ok(waited < 30_000, 'the initial sync did not finish');
      await sleep(100);
    }
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 250, blockSize: 4096, pattern: 'random', seed: 'bitmap' });
    await sleep(3_000);
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');

    const { lastSequence } = await primary.client.readJournal({ afterSequence: 0, maxEntries: 1 });
    for (let waited = 0; ; waited += 200) {
      const status = await handle.query(protectStatusQuery);
      if (status.mode === 'log' && status.cursor >= lastSequence) break;
      assert.ok(waited < 60_000, `replication did not catch up: ${JSON.stringify(status)}`);
      await sleep(200);
    }
    const { modeChanges } = await handle.query(protectStatusQuery);
    const modes = modeChanges.map((c) => c.mode).join(' ');
    assert.match(modes, /bitmap resync log/, modes);
    await handle.executeUpdate(restorePointNowUpdate, { args: [{}] });
    await handle.signal(stopProtectionSignal);
    await handle.result();

    const store = new ObjectStore(stack.s3Client, stack.s3Settings);
    const ownership = new Ownership(store, 'demo');
    const { disks } = JSON.parse((await store.get(ownership.keys.manifest()))!.toString()) as { disks: Array<{ vm: string; diskId: string; sizeBytes: number }> };
    // No point inside a stretch: each one rebuilds.
    const points = await listRestorePoints(store, ownership);
    assert.ok(points.length > 0);
    for (const point of points.slice(-3)) {
      await rehydrate({ store, ownership, target: recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'position', position: point.position }, targetDiskId: (id) => `point-${point.id}-${id}` });
    }
    const firstBitmap = modeChanges.find((c) => c.mode === ('bitmap' satisfies ProtectMode))!;
    await assert.rejects(rehydrate({ store, ownership, target: recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'instant', at: firstBitmap.at }, targetDiskId: (id) => `refused-${id}` }), TargetNotRestorableError);

    await rehydrate({ store, ownership, target: recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'latest' }, targetDiskId: (id) => `end-${id}` });
    for (const disk of disks) {
      const expected = await primary.client.readDisk(disk.diskId, 0, disk.sizeBytes);
      const actual = await recovery.client.readDisk(`end-${disk.diskId}`, 0, disk.sizeBytes);
      assert.ok(actual.equals(expected), `${disk.diskId} rebuilt to the end equals the primary's`);
    }
  });
  it('resumes protection at a new owner that claimed the next epoch: its disks become the epoch\'s base, whatever the old log holds', async () => {
    const store = new ObjectStore(stack.s3Client, stack.s3Settings);
    const ownership = new Ownership(store, 'demo');
    const { disks } = JSON.parse((await store.get(ownership.keys.manifest()))!.toString()) as { disks: Array<{ vm: string; diskId: string; sizeBytes: number }> };
    // What a failover to the oldest restore point does at the recovery site before it resumes protection.
    const [oldest] = await listRestorePoints(store, ownership);
    for (const disk of disks) await recovery.client.createDisk({ id: disk.diskId, datastore: 'ds-b', sizeBytes: disk.sizeBytes, protected: true });
    await rehydrate({ store, ownership, target: recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'position', position: oldest.position } });
    for (const vm of ['db-1', 'app-1']) {
      await recovery.client.registerVm({
        name: vm,
        cpus: 2,
        memoryMiB: 2048,
        placement: { datacenter: 'dc-b', cluster: 'cluster-b1', datastore: 'ds-b' },
        nics: [],
        diskIds: disks.filter((d) => d.vm === vm).map((d) => d.diskId),
      });
    }
    const claim = await ownership.claim('recovery');
    assert.deepEqual([claim.won, claim.epoch], [true, 2]);
    const { lastSequence: cursor } = await recovery.client.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 });

    const handle = await stack.client.workflow.start(protect, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'protect/demo-recovery',
      args: [{ domain: 'demo', site: 'recovery', vms: ['db-1', 'app-1'], protectionWindowMs: 3_600_000, restorePointIntervalMs: 60_000, replicatorRunMs: 1_000, initialSync: true, start: { epoch: 2, cursor } }],
    });
    // The recovered domain's guests write while the base is copied.
    for (let i = 0; i < 40; i++) {
      const disk = disks[i % disks.length];
      await recovery.client.writeDisk(disk.diskId, (i * 37 % 64) * 4096, Buffer.alloc(4096, i + 1));
    }
    const { lastSequence } = await recovery.client.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 });
    for (let waited = 0; ; waited += 200) {
      const status = await handle.query(protectStatusQuery);
      if (status.mode === 'log' && status.cursor >= lastSequence) break;
      assert.ok(waited < 60_000, `protection at the recovery site did not catch up: ${JSON.stringify(status)}`);
      await sleep(200);
    }
    const status = await handle.query(protectStatusQuery);
    assert.deepEqual([status.epoch, status.base], [2, ownership.keys.baseId(2, cursor)]);
    const manifest = JSON.parse((await store.get(ownership.keys.manifest()))!.toString()) as { protectedSite: string };
    assert.equal(manifest.protectedSite, 'recovery');
    await handle.signal(stopProtectionSignal);
    await handle.result();

    await rehydrate({ store, ownership, target: primary.client, disks, datastore: 'ds-a', upTo: { kind: 'latest' }, targetDiskId: (id) => `back-${id}` });
    for (const disk of disks) {
      const expected = await recovery.client.readDisk(disk.diskId, 0, disk.sizeBytes);
      assert.ok((await primary.client.readDisk(`back-${disk.diskId}`, 0, disk.sizeBytes)).equals(expected), `${disk.diskId}: epoch 2 rebuilt from its base equals the recovery site's disk`);
    }
  });
});
