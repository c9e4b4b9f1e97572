/**
 * Operator decisions while no orchestration worker polls: the API cannot ask the operation what
 * waits, and must say so (503 naming what it could not reach) instead of claiming that nothing waits.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../api/app';
import { generateToken, hashToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { createLogger } from '../../common/logger';
import { ObjectStore } from '../../datapath/object-store';
import { RunbookStore } from '../../runbooks/store';
import type { PowerOnPlanInput } from '../../workflows/power-on-plan';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { startTestStack, type TestStack } from '../harness/stack';

describe('operations API without an orchestration worker', () => {
  let stack: TestStack;
  let server: Server;
  let url: string;
  const operator = generateToken();

  before(async () => {
    stack = await startTestStack();
    const log = createLogger('api-test', new Writable({ write: (_c, _e, done) => done() }));
    const app = createApp({
      log,
      tokens: { tokens: [{ name: 'dr-lead', role: 'operator', sha256: hashToken(operator) }] },
      healthChecks: [],
      routers: [operationsRouter({ client: stack.client, runbooks: new RunbookStore(stack.s3Client, stack.s3Settings), store: new ObjectStore(stack.s3Client, stack.s3Settings), log })],
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server?.close(r));
    await stack?.stop();
  });

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
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

    const status = await fetch(`${url}/operations/${id}`, { headers: { authorization: `Bearer ${operator}` } });
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
