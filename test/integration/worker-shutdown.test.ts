import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { protect, protectStatusQuery, stopProtectionSignal } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { admin } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const FORCE_MS = 3_000;

/** Polls until `done`; a guard against a hang, not a timing check. */
async function until(what: string, done: () => Promise<boolean>, guardMs = 90_000): Promise<void> {
  for (const started = Date.now(); !(await done()); await new Promise((resolve) => setTimeout(resolve, 200))) {
    if (Date.now() - started > guardMs) throw new Error(`never happened: ${what}`);
  }
}

describe('a site worker asked to stop while an activity waits on a site that does not answer', () => {
  const { stack, sites, primary, workers } = useTestbed({ workers: ['orchestration'] });

  it('exits once the shutdown force time has passed instead of waiting for the site, and protection goes on with the next worker', async () => {
    const env = { DR_WORKER_SHUTDOWN_FORCE_MS: String(FORCE_MS) };
    const worker = await workers.site(primary, 'primary', env);
    const handle = await stack.client.workflow.start(protect, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'protect/demo',
      args: [{ domain: 'demo', site: 'primary', vms: ['db-1', 'app-1'], protectionWindowMs: 3_600_000, restorePointIntervalMs: 60_000, replicatorRunMs: 30_000 }],
    });
    await until('protection logs every write', async () => (await handle.query(protectStatusQuery)).mode === 'log');

    // Every request to the site now waits 120 s: the replicator's next read of the journal hangs
    // in a call that does not hear the activity's cancel (the site client's own timeout is 30 s).
    await admin(primary, sites.token, '/admin/partition', { mode: 'delay', delayMs: 120_000, forMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const stopAsked = Date.now();
    await worker.stop(60_000);
    const stoppedAfter = Date.now() - stopAsked;
    assert.equal(worker.exitSignal(), null, 'it exited by itself, not by the SIGKILL after the grace period');
    assert.equal(await worker.exited, 0, readFileSync(worker.logFile, 'utf8').slice(-2500));
    assert.ok(stoppedAfter < FORCE_MS + 8_000, `stopped ${stoppedAfter} ms after SIGTERM (force time ${FORCE_MS} ms)`);
    assert.match(readFileSync(worker.logFile, 'utf8'), /shutdown force time ran out/);

    // The abandoned attempt times out on its heartbeat; a new worker takes protection on.
    const cursorBefore = (await handle.query(protectStatusQuery)).cursor;
    await admin(primary, sites.token, '/admin/partition', undefined, 'DELETE');
    await workers.site(primary, 'primary', env);
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 20, blockSize: 4096, pattern: 'random', seed: 'worker-shutdown' });
    await until('the new worker replicates', async () => (await handle.query(protectStatusQuery)).cursor > cursorBefore);
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    await handle.signal(stopProtectionSignal);
    await handle.result();
  });
});
