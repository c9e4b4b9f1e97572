/**
 * Requests to a domain's operations desk as the API and a scheduled drill's activity make them
 * (requests/desk.ts), on stub sites: a request repeated with its id, as a retried activity repeats
 * it, answers the operation the first one started instead of being refused by it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeskBusy, startThroughDesk } from '../../requests/desk';
import type { OperationRequest } from '../../workflows/domain-operations';
import type { PowerOnPlanInput } from '../../workflows/power-on-plan';
import { runbook, vmNames } from '../fixtures/workflow-runbooks';
import { holdUntilCancelled } from '../harness/stub-sites';
import { RECOVERY, startWorkflowEnv, type WorkflowEnv } from '../harness/workflow-env';

let t: WorkflowEnv;
before(async () => {
  t = await startWorkflowEnv();
});
after(async () => {
  await t?.teardown();
});

function powerOnRequest(domain: string): OperationRequest {
  const input: PowerOnPlanInput = { domain, site: RECOVERY, powerOn: runbook(domain).spec.powerOn, leavePoweredOff: [] };
  return { operation: 'power-on', requestedBy: 'schedule drill-schedule/x', summary: `power on ${domain}`, input };
}

describe('requests to the operations desk on stub sites', () => {
  it('a request repeated with its id answers the operation it started; another request is refused naming that operation', async () => {
    const domain = 'desk-requests';
    t.sites.placeVms(RECOVERY, vmNames(domain));
    // The operation holds the desk: its first power-on waits until it is cancelled.
    t.sites.intercept(domain, (call, proceed) => (call.name === 'powerOnVm' ? holdUntilCancelled() : proceed()));
    try {
      const first = await startThroughDesk(t.client, domain, powerOnRequest(domain), 'scheduled-drill/desk-requests-1');
      const repeated = await startThroughDesk(t.client, domain, powerOnRequest(domain), 'scheduled-drill/desk-requests-1');
      assert.deepEqual(repeated, first, 'the repeated request answers the first one’s record');
      await assert.rejects(startThroughDesk(t.client, domain, powerOnRequest(domain), 'scheduled-drill/desk-requests-2'), (error: unknown) => {
        assert.ok(error instanceof DeskBusy, String(error));
        assert.equal(error.status, 409);
        assert.equal(error.running.workflowId, first.workflowId);
        assert.match(error.message, new RegExp(`${first.workflowId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(requested by schedule drill-schedule/x\\) is running`));
        return true;
      });
      assert.equal((await t.client.workflow.getHandle(first.workflowId).describe()).status.name, 'RUNNING', 'one operation, still running');
    } finally {
      await t.closeDomain(domain);
    }
  });
});
