/**
 * Operator decisions while no orchestration worker polls: the API cannot ask the operation what
 * waits, and must say so (503 naming what it could not reach) instead of claiming that nothing waits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import type { PowerOnPlanInput } from '../../workflows/power-on-plan';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { useTestStack } from '../harness/stack';
import { useTestApi } from '../harness/testbed';

describe('operations API without an orchestration worker', () => {
  const operator = generateToken();
  const { stack, store, runbooks } = useTestStack();
  // A short deadline keeps the test quick; the product waits OPERATION_QUERY_DEADLINE_MS.
  const api = useTestApi({ principals: [{ name: 'dr-lead', role: 'operator', token: operator }], routers: (log) => [operationsRouter({ client: stack.client, runbooks, store, log, queryDeadlineMs: 1_000 })] });

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${api.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: (await res.json()) as Record<string, unknown> };
  };

  /** A power-on operation as the desk would start it, on the orchestration queue that nothing polls in this stack. */
  async function startUnattendedOperation(workflowId: string) {
    const input: PowerOnPlanInput = { domain: 'demo', site: 'recovery', powerOn: { groups: [{ name: 'app', before: [{ name: 'go-ahead', type: 'approval', approvers: ['dr-lead'], timeout: '10m' }], vms: [{ name: 'app-1' }] }] }, leavePoweredOff: [] } as unknown as PowerOnPlanInput;
    return stack.client.workflow.start('powerOnPlan', { workflowId, taskQueue: ORCHESTRATION_TASK_QUEUE, args: [input] });
  }

  it('answers approve, resume, retry and skip with 503 naming the unreachable worker, not 409', async () => {
    const workflowId = 'power-on/demo/2026-01-01T00:00:00.000Z';
    await startUnattendedOperation(workflowId);
    const id = encodeURIComponent(workflowId);

    const approve = await post(`/operations/${id}/approve`, { step: 'go-ahead' });
    assert.equal(approve.status, 503, JSON.stringify(approve.body));
    assert.match(approve.type, /application\/problem\+json/);
    assert.match(String(approve.body.detail), /orchestration worker/);
    assert.match(String(approve.body.detail), new RegExp(`no orchestration worker polls task queue "${ORCHESTRATION_TASK_QUEUE}"`));

    const status = await fetch(`${api.url}/operations/${id}`, { headers: { authorization: `Bearer ${operator}` } });
    assert.equal(status.status, 200, 'the status still answers from Temporal itself');
    const shown = (await status.json()) as Record<string, unknown>;
    assert.equal(shown.status, 'RUNNING');
    assert.match(String(shown.progressUnavailable), /no orchestration worker polls/);

    for (const action of ['resume', 'retry', 'skip']) {
      const decided = await post(`/operations/${id}/${action}`, { target: 'app-1' });
      assert.equal(decided.status, 503, `${action}: ${JSON.stringify(decided.body)}`);
      assert.match(String(decided.body.detail), /orchestration worker/);
    }
  });

  it('keeps 409 for an operation that has ended: nothing of it can wait', async () => {
    const workflowId = 'power-on/demo/2026-01-02T00:00:00.000Z';
    const handle = await startUnattendedOperation(workflowId);
    await handle.terminate('the test ends it');
    const approve = await post(`/operations/${encodeURIComponent(workflowId)}/approve`, { step: 'go-ahead' });
    assert.equal(approve.status, 409, JSON.stringify(approve.body));
    assert.match(String(approve.body.detail), /not waiting for approval/);
  });
});
