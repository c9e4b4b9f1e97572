/**
 * The domain's operations desk (workflows/domain-operations.ts) on stub sites: it continues as new
 * without losing an operation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import {
  domainOperations,
  domainOperationsQuery,
  domainOperationsWorkflowId,
  startOperationUpdate,
  type DomainOperationsState,
  type OperationRequest,
} from '../../workflows/domain-operations';
import type { PowerOnPlanInput } from '../../workflows/power-on-plan';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { runbook, vmNames } from '../fixtures/workflow-runbooks';
import { RECOVERY, startWorkflowEnv, type WorkflowEnv } from '../harness/workflow-env';

let t: WorkflowEnv;
before(async () => {
  t = await startWorkflowEnv();
});
after(async () => {
  await t?.teardown();
});

/** Polls until `probe` answers; a guard against a hang (it fails after 30 s), not a timing check. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`never happened: ${what}`);
}

function powerOnRequest(domain: string): OperationRequest {
  const input: PowerOnPlanInput = { domain, site: RECOVERY, powerOn: runbook(domain).spec.powerOn, leavePoweredOff: [] };
  return { operation: 'power-on', requestedBy: 'test-operator', summary: `power on ${domain}`, input };
}

/** The desk's state once it has recorded the end of `workflowId`. */
function recorded(desk: WorkflowHandle, workflowId: string): Promise<DomainOperationsState> {
  return eventually(`the desk records the end of ${workflowId}`, async () => {
    const state = await desk.query(domainOperationsQuery);
    return !state.running && state.recent.some((r) => r.workflowId === workflowId) ? state : undefined;
  });
}

describe('domain operations desk on stub sites', () => {
  it('an operation accepted in the workflow task that reaches the continue-as-new bound is started and recorded, and the next one is accepted', async () => {
    const domain = 'desk-bound';
    t.sites.placeVms(RECOVERY, vmNames(domain));
    const desk = t.client.workflow.getHandle(domainOperationsWorkflowId(domain));
    const started = await t.client.workflow.start(domainOperations, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: domainOperationsWorkflowId(domain),
      // One event more than the run began with: the task that accepts the request reaches the bound.
      args: [{ domain, recent: [], maxEventsPerRun: 1 }],
    });
    try {
      await eventually("the desk's first workflow task", async () => ((await desk.fetchHistory()).events ?? []).some((e) => e.workflowTaskCompletedEventAttributes) || undefined);

      const first = await desk.executeUpdate(startOperationUpdate, { args: [powerOnRequest(domain)] });
      assert.match(first.workflowId, new RegExp(`^power-on/${domain}/`));
      await t.client.workflow.getHandle(first.workflowId).result();
      const state = await recorded(desk, first.workflowId);
      assert.deepEqual(
        state.recent.map((r) => r.workflowId),
        [first.workflowId],
      );
      assert.notEqual((await desk.describe()).runId, started.firstExecutionRunId, 'the desk continued as new');

      const second = await desk.executeUpdate(startOperationUpdate, { args: [powerOnRequest(domain)] });
      await t.client.workflow.getHandle(second.workflowId).result();
      assert.deepEqual(
        (await recorded(desk, second.workflowId)).recent.map((r) => r.workflowId),
        [second.workflowId, first.workflowId],
      );
    } finally {
      await desk.terminate('test finished').catch(() => undefined);
      await t.closeDomain(domain);
    }
  });
});
