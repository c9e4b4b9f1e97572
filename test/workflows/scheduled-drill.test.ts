/**
 * A drill schedule's run (workflows/scheduled-drill.ts) with its activity stubbed: what the desk
 * refuses ends the run skipped, naming why; a request that fails for another reason is retried
 * under the same request id, so the desk can recognise a repeat.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { scheduledDrill } from '../../workflows/scheduled-drill';
import { DRILL_SKIPPED, type DrillRequested, type ScheduledDrillActivities } from '../../workflows/scheduled-drill-messages';
import { DR_OPERATION, DR_OUTCOME, DR_REQUESTED_BY } from '../../workflows/search-attributes';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { startWorkflowEnv, type WorkflowEnv } from '../harness/workflow-env';

type Request = Parameters<ScheduledDrillActivities['requestDrill']>[0];
/** What the stubbed desk answers each request with, in order; every request is kept. */
const answers: Array<(request: Request) => Promise<DrillRequested>> = [];
const requests: Request[] = [];

let t: WorkflowEnv;
before(async () => {
  const activities: ScheduledDrillActivities = {
    requestDrill: (request) => {
      requests.push(request);
      const answer = answers.shift();
      if (!answer) throw ApplicationFailure.nonRetryable('the test gave no answer', 'TestMisuse');
      return answer(request);
    },
  };
  t = await startWorkflowEnv({ orchestrationActivities: activities });
});
after(async () => {
  await t?.teardown();
});

const input = { domain: 'sched', schedule: 'drill-schedule/sched', keepFor: '5m' };
const run = (id: string) => t.client.workflow.start(scheduledDrill, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `scheduled-drill/sched-${id}`, args: [input] });

describe('a drill schedule’s run on a stubbed desk', () => {
  it('a request the desk refuses ends the run skipped, not retried, naming why in its failure, its memo and DrOutcome', async () => {
    requests.length = 0;
    answers.push(() => Promise.reject(ApplicationFailure.nonRetryable('drill drill/sched/t (requested by dr-lead) is running for domain sched', DRILL_SKIPPED)));
    const handle = await run('refused');
    await assert.rejects(handle.result(), (error: unknown) => {
      assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure, String(error));
      assert.equal(error.cause.type, DRILL_SKIPPED);
      assert.equal(error.cause.message, 'scheduled drill of sched skipped: drill drill/sched/t (requested by dr-lead) is running for domain sched');
      return true;
    });
    const description = await handle.describe();
    assert.equal(description.memo?.skipped, 'drill drill/sched/t (requested by dr-lead) is running for domain sched');
    assert.equal(description.typedSearchAttributes.get(DR_OUTCOME), 'skipped');
    assert.equal(description.typedSearchAttributes.get(DR_OPERATION), 'scheduled-drill');
    assert.equal(description.typedSearchAttributes.get(DR_REQUESTED_BY), 'schedule drill-schedule/sched');
    assert.equal(requests.length, 1, 'a refusal is not retried');
  });

  it('a request that fails otherwise is retried with the same request id, and the run answers the drill the desk started', async () => {
    requests.length = 0;
    answers.push(
      () => Promise.reject(new Error('the storage site does not answer')),
      (request) => Promise.resolve({ workflowId: 'drill/sched/2026-11-30T03:00:00.000Z', requestedBy: `schedule ${request.schedule}` }),
    );
    const handle = await run('retried');
    assert.deepEqual(await handle.result(), { workflowId: 'drill/sched/2026-11-30T03:00:00.000Z', requestedBy: 'schedule drill-schedule/sched' });
    assert.deepEqual(requests.map((r) => r.requestId), [handle.workflowId, handle.workflowId]);
    assert.deepEqual(requests[0], { ...input, requestId: handle.workflowId });
    const description = await handle.describe();
    assert.equal(description.memo?.drill, 'drill/sched/2026-11-30T03:00:00.000Z');
    assert.equal(description.typedSearchAttributes.get(DR_OUTCOME), 'succeeded');
  });
});
