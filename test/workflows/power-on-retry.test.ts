/**
 * A VM's power-on and heartbeat wait retry a site that does not answer for about five minutes and
 * no longer (workflows/power-on-group-run.ts), whether its group runs inside the operation or as a
 * child: read from the retry policy the histories record, against stub sites (fast tier).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tsToMs } from '@temporalio/common/lib/time';
import { failover } from '../../workflows/failover';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { powerOnGroupWorkflowId } from '../../workflows/workflow-ids';
import { failoverInput, vmNames } from '../fixtures/workflow-runbooks';
import { newStubDomain, useWorkflowEnv } from '../harness/workflow-env';

const t = useWorkflowEnv();

const seconds = (duration: Parameters<typeof tsToMs>[0]) => tsToMs(duration) / 1000;

async function scheduledActivities(workflowId: string) {
  const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
}

describe('a VM power-on retries', () => {
  it('a site that does not answer for about five minutes, doubling from 1 s to at most 10 s between tries, inside the operation and in a child', async () => {
    const domain = newStubDomain(t, 'power-on-retry', vmNames);
    const workflowId = `failover/${domain}/test`;
    const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [failoverInput(domain, 'forced')] });
    assert.equal(report.outcome, 'succeeded', report.failure);

    // The database group needs nobody (the operation powers it on); app has a webhook step (its own child).
    const inOperation = (await scheduledActivities(workflowId)).filter((a) => ['powerOnVm', 'waitForGuestHeartbeat'].includes(a.activityType?.name ?? ''));
    const inChild = (await scheduledActivities(powerOnGroupWorkflowId(workflowId, 'app'))).filter((a) => a.activityType?.name === 'powerOnVm');
    assert.deepEqual(inOperation.map((a) => a.activityType?.name).sort(), ['powerOnVm', 'waitForGuestHeartbeat']);
    assert.equal(inChild.length, 2);
    for (const activity of [...inOperation, ...inChild]) {
      const policy = activity.retryPolicy!;
      const name = activity.activityType?.name;
      assert.equal(seconds(policy.initialInterval), 1, `${name}: first retry after 1 s`);
      assert.equal(policy.backoffCoefficient, 2, `${name}: doubling`);
      assert.equal(seconds(policy.maximumInterval), 10, `${name}: at most 10 s between tries`);
      assert.equal(policy.maximumAttempts, 32, `${name}: 32 tries`);
      const waits = Array.from({ length: (policy.maximumAttempts ?? 0) - 1 }, (_, i) => Math.min(2 ** i, 10));
      const total = waits.reduce((a, b) => a + b, 0);
      assert.ok(total >= 240 && total <= 360, `${name}: the tries span about five minutes of outage (${total} s of waits)`);
    }
  });
});
