import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { parseSegmentReference } from '../../datapath/segment-objects';
import { defaultPayloadConverter } from '@temporalio/common';
import type { RehydrateInput } from '../../activities/datapath';
import type { RehydrationProgress } from '../../datapath/rehydrate';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { rehydration } from '../../workflows/rehydration';
import { protect, protectStatusQuery, restorePointNowUpdate, stopProtectionSignal } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { admin } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const DISKS = ['db-1-disk-0', 'db-1-disk-1', 'app-1-disk-0'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('datapath end to end: a workload, protect with SIGKILLed replicators, rehydration at the other site', () => {
  const { stack, sites, primary, recovery, workers } = useTestbed({ workers: ['orchestration'] });

  it('replicates through repeated SIGKILLs and rehydrates byte-identical disks to a restore point and to an instant', async () => {
    // Every segment with a write in it is uploaded ahead and referred to: the kills land among staged
    // uploads. The worker's memory has room for one segment read ahead (a read of 8 MiB and its encoding).
    const uploadAhead = { DR_SEGMENT_INLINE_MAX_BYTES: '4096', DR_REPLICATION_STAGING_MIB: '16' };
    let primaryWorker = await workers.site(primary, 'primary', uploadAhead);
    let recoveryWorker = await workers.site(recovery, 'recovery');
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, blockSize: 4096, pattern: 'random', seed: 'datapath-e2e' });
    const workflowId = 'protect/demo';
    await stack.client.workflow.start(protect, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId,
      args: [{ domain: 'demo', site: 'primary', vms: ['db-1', 'app-1'], protectionWindowMs: 3_600_000, restorePointIntervalMs: 1_500, replicatorRunMs: 1_500, runsPerExecution: 3, gcEveryRuns: 2 }],
    });
    const handle = stack.client.workflow.getHandle(workflowId);

    for (let kill = 0; kill < 3; kill++) {
      await sleep(1_500 + Math.random() * 1_000);
      await primaryWorker.kill();
      await sleep(300);
      primaryWorker = await workers.site(primary, 'primary', uploadAhead);
    }
    // The kills delay replication; a point can only be asked for once the initial sync is
    // committed and some writes are in the log.
    for (let waited = 0; ; waited += 200) {
      const { mode, cursor } = await handle.query(protectStatusQuery);
      if (mode === 'log' && cursor > 0) break;
      assert.ok(waited < 60_000, `no replication progress within a minute (mode ${mode}, cursor ${cursor})`);
      await sleep(200);
    }
    const point = await handle.executeUpdate(restorePointNowUpdate, { args: [{}] });
    await sleep(1_000);
    const instant = Date.now();
    await sleep(1_000);
    await primaryWorker.kill();
    primaryWorker = await workers.site(primary, 'primary', uploadAhead);
    await sleep(1_000);
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');

    const { lastSequence } = await primary.client.readJournal({ afterSequence: 0, maxEntries: 1 });
    // A loaded machine slows replication down; what must not happen is that it stops.
    for (let progressAt = Date.now(), last = -1; ; ) {
      const { mode, cursor } = await handle.query(protectStatusQuery);
      if (cursor >= lastSequence) break;
      if (cursor > last) [last, progressAt] = [cursor, Date.now()];
      assert.ok(Date.now() - progressAt < 60_000, `replication stalled for a minute at journal sequence ${cursor} of ${lastSequence} (mode ${mode})`);
      await sleep(200);
    }
    // Garbage collection runs every two replicator runs; inside the hour-long window it deletes nothing.
    for (let waited = 0; !(await handle.query(protectStatusQuery)).lastGc; waited += 200) {
      assert.ok(waited < 10_000, 'no garbage collection within 10 s');
      await sleep(200);
    }
    const status = await handle.query(protectStatusQuery);
    assert.deepEqual(status.lastGc?.deleted, { points: 0, segments: 0, bases: 0, leases: 0 }, JSON.stringify(status.lastGc));
    assert.ok(status.epoch === 1 && status.lastRestorePoint && status.base, JSON.stringify(status));
    await handle.signal(stopProtectionSignal);
    await handle.result();

    // Every write the workload made is in the log exactly once, in order.
    const record = readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));
    const store = new ObjectStore(stack.s3Client, stack.s3Settings);
    const ownership = new Ownership(store, 'demo');
    const logged: number[] = [];
    const chain = await resolveChain(store, ownership);
    for await (const { segment } of readChain(store, chain, 8)) logged.push(...segment.entries.map((e) => e.sequence));
    assert.deepEqual(logged, record.map((w) => w.sequence).sort((a, b) => a - b));
    const referring = (await Promise.all(chain.map(async (link) => parseSegmentReference(link.key, (await store.get(link.key))!)))).filter(Boolean).length;
    assert.ok(referring > chain.length / 2, `${referring} of ${chain.length} segments refer to bytes uploaded ahead`);

    // Rehydration at the recovery site, slowed so that its worker dies mid-way and resumes.
    await admin(recovery, sites.token, '/admin/faults', { latencyMs: 80 });
    const chainToPoint = (await resolveChain(store, ownership)).filter((l) => l.segment <= point.position.segment);
    const rehydrate = (input: Omit<RehydrateInput, 'domain' | 'targetSite' | 'datastore'>, id: string) =>
      stack.client.workflow.execute(rehydration, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `rehydrate/demo/${id}`, args: [{ domain: 'demo', targetSite: 'recovery', datastore: 'ds-b', ...input }] });
    const toPoint = rehydrate({ upTo: { kind: 'position', position: point.position }, diskIdPrefix: 'point-' }, 'point');
    // Killed once the activity has heartbeated progress (a segment applied), however slow the machine is.
    for (;;) {
      const run = await stack.client.workflow.getHandle('rehydrate/demo/point').describe().catch(() => undefined);
      if (run && run.status.name !== 'RUNNING') break;
      // A heartbeat names a segment once one is applied (before that it only says the attempt lives).
      const progress = (run?.raw.pendingActivities ?? []).flatMap((a) => (a.heartbeatDetails?.payloads ?? []).map((p) => defaultPayloadConverter.fromPayload<RehydrationProgress | undefined>(p)));
      if (progress.some((p) => p?.segment !== undefined)) break;
      await sleep(100);
    }
    await recoveryWorker.kill();
    recoveryWorker = await workers.site(recovery, 'recovery');
    const pointResult = await toPoint;
    assert.ok(pointResult.segmentsApplied < chainToPoint.length, `resumed: ${pointResult.segmentsApplied} of ${chainToPoint.length} segments in the last attempt`);
    await admin(recovery, sites.token, '/admin/faults', { latencyMs: 0 });
    // Every request held 8 s as the rehydration starts (its disks and base): longer than its 5 s
    // heartbeat timeout, which the attempt outlives by heartbeating while it waits, with no retry
    // writing the same disks beside it.
    await admin(recovery, sites.token, '/admin/partition', { mode: 'delay', delayMs: 8_000, forMs: 9_000 });
    await rehydrate({ upTo: { kind: 'instant', at: instant }, diskIdPrefix: 'instant-' }, 'instant');
    const started = (await stack.client.workflow.getHandle('rehydrate/demo/instant').fetchHistory()).events?.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : []));
    assert.deepEqual(started, [1], 'the rehydration through a slow site in one attempt');

    for (const diskId of DISKS) {
      const size = (await primary.client.getDisk(diskId)).sizeBytes;
      const atPoint = await recovery.client.readDisk(`point-${diskId}`, 0, size);
      assert.ok(atPoint.equals(expectedDiskContent(record, diskId, size, { sequence: point.lastJournalSequence })), `${diskId} at the restore point`);
      const atInstant = await recovery.client.readDisk(`instant-${diskId}`, 0, size);
      assert.ok(atInstant.equals(expectedDiskContent(record, diskId, size, { instant })), `${diskId} at ${new Date(instant).toISOString()}`);
    }
  });
});
