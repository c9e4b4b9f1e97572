import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import { TargetNotRestorableError } from '../../activities/datapath/log-chain';
import { ObjectStore } from '../../activities/datapath/object-store';
import { Ownership } from '../../activities/datapath/ownership';
import { rehydrate } from '../../activities/datapath/rehydrate';
import { listRestorePoints } from '../../activities/datapath/restore-points';
import { startChild, waitUntilReady, type ChildHandle } from '../../stack/child-process';
import type { SiteService } from '../../sites/launch';
import { protect, protectStatusQuery, restorePointNowUpdate, stopProtectionSignal, type ProtectMode } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { admin, prepareTestSites, type TestSites } from '../harness/sites';
import { startTestStack, type TestStack } from '../harness/stack';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('datapath bitmap mode: a write burst past a tiny throttle, resync, back to log mode', () => {
  let stack: TestStack;
  let sites: TestSites;
  let primary: SiteService;
  let recovery: SiteService;
  let orchestration: Worker;
  let orchestrationRun: Promise<void>;
  let siteWorker: ChildHandle | undefined;

  before(async () => {
    stack = await startTestStack();
    sites = await prepareTestSites(stack.dir);
    [primary, recovery] = await Promise.all([sites.start('primary'), sites.start('recovery')]);
    orchestration = await Worker.create({ connection: stack.nativeConnection, taskQueue: ORCHESTRATION_TASK_QUEUE, workflowsPath: require.resolve('../../workflows') });
    orchestrationRun = orchestration.run();
    const child = startChild({
      name: 'datapath worker primary',
      command: process.execPath,
      args: ['--import', 'tsx', path.join(__dirname, '../fixtures/datapath-worker.ts')],
      logFile: path.join(stack.dir, 'worker-primary.log'),
      env: {
        ...process.env,
        DR_S3_SETTINGS: JSON.stringify(stack.s3Settings),
        DR_SITE: 'primary',
        DR_SITE_URL: primary.url,
        DR_SITE_TOKEN: sites.token,
        DR_TEMPORAL_ADDRESS: stack.temporalSettings.address,
      },
    });
    siteWorker = child;
    await waitUntilReady(child, () => (readFileSync(child.logFile, 'utf8').includes('worker ready') ? Promise.resolve() : Promise.reject(new Error('starting'))));
  });
  after(async () => {
    await siteWorker?.kill();
    orchestration?.shutdown();
    await orchestrationRun;
    await primary?.process.stop();
    await recovery?.process.stop();
    await stack?.stop();
  });

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
    await handle.executeUpdate(restorePointNowUpdate);
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
    await assert.rejects(rehydrate({ store, ownership, target: recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'instant', at: firstBitmap.at } }), TargetNotRestorableError);

    await rehydrate({ store, ownership, target: recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'latest' }, targetDiskId: (id) => `end-${id}` });
    for (const disk of disks) {
      const expected = await primary.client.readDisk(disk.diskId, 0, disk.sizeBytes);
      const actual = await recovery.client.readDisk(`end-${disk.diskId}`, 0, disk.sizeBytes);
      assert.ok(actual.equals(expected), `${disk.diskId} rebuilt to the end equals the primary's`);
    }
  });
});
