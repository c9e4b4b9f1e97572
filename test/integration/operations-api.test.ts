/**
 * HTTP triggers on the real servers: runbook from the object store, the domain's operations desk
 * on Temporal, approvals and cancellation through the API, with roles and problem+json errors.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { recordingSite, recordingSiteRunbook } from '../harness/recording-site';
import { useTestStack } from '../harness/stack';
import { useTestApi, type ApiPrincipal } from '../harness/testbed';
import { useInProcessWorkers } from '../harness/workers';

const RUNBOOK = recordingSiteRunbook('demo-recovery', ['{ name: db-1 }', '{ name: app-1 }', '{ name: report-1, startupAction: poweredOff }'], `    groups:
      - name: database
        vms: [{ name: db-1 }]
      - name: app
        dependsOn: [database]
        before:
          - { name: go-ahead, type: approval, approvers: [dr-lead], timeout: 10m }
        vms: [{ name: app-1 }, { name: report-1 }]
`);

describe('operations API: one operation per domain, approvals and cancel over HTTP', () => {
  const site = recordingSite();
  const principals: ApiPrincipal[] = [
    { name: 'dr-lead', role: 'operator', token: generateToken() },
    { name: 'night-operator', role: 'operator', token: generateToken() },
    { name: 'auditor', role: 'viewer', token: generateToken() },
  ];
  const token = (name: string) => principals.find((p) => p.name === name)!.token;

  const { stack, store, runbooks } = useTestStack();
  before(() => runbooks.put('demo-recovery', RUNBOOK, 'dr-lead'));
  const api = useTestApi({ principals, routers: (log) => [operationsRouter({ client: stack.client, runbooks, store, log, webUiUrl: 'http://127.0.0.1:8233' })] });
  useInProcessWorkers(stack, 'recovery', () => site.activities);

  const call = async (method: string, path: string, as?: string, body?: unknown) => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { ...(as ? { authorization: `Bearer ${token(as)}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', requestId: res.headers.get('x-request-id'), body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };

  async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
    for (let i = 0; i < 100; i++) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it('refuses missing auth, viewers, malformed bodies and unknown runbooks with 4xx problems', async () => {
    assert.equal((await call('POST', '/domains/demo/power-on', undefined, { runbook: 'demo-recovery' })).status, 401);
    assert.equal((await call('POST', '/domains/demo/power-on', 'auditor', { runbook: 'demo-recovery' })).status, 403);
    const bad = await call('POST', '/domains/demo/power-on', 'dr-lead', { runbook: 'Demo Recovery', extra: 1 });
    assert.equal(bad.status, 400);
    assert.match(bad.type, /application\/problem\+json/);
    assert.deepEqual((bad.body.errors as Array<{ path: string }>).map((e) => e.path).sort(), ['(body)', 'runbook']);
    assert.equal((await call('POST', '/domains/demo/power-on', 'dr-lead', { runbook: 'nope' })).status, 404);
    assert.equal((await call('POST', '/domains/other/power-on', 'dr-lead', { runbook: 'demo-recovery' })).status, 422);
    assert.equal((await call('POST', '/domains/Bad_Name/power-on', 'dr-lead', { runbook: 'demo-recovery' })).status, 400);
    const shortWindow = await call('POST', '/domains/demo/failover', 'dr-lead', { type: 'planned', commit: { after: '1s', then: 'commit' } });
    assert.equal(shortWindow.status, 400);
    assert.deepEqual((shortWindow.body.errors as Array<{ path: string }>).map((e) => e.path), ['commit.after']);
    const noPolicy = await call('POST', '/domains/demo/failover', 'dr-lead', { type: 'planned', commit: { after: '30m', then: 'later' } });
    assert.deepEqual((noPolicy.body.errors as Array<{ path: string }>).map((e) => e.path), ['commit.then']);
    assert.equal((await call('POST', '/operations/failover%2Fdemo%2Fnone/rollback', 'auditor', {})).status, 403);
    assert.equal((await call('POST', '/operations/failover%2Fdemo%2Fnone/rollback', 'dr-lead', {})).status, 404);
    const noJson = await fetch(`${api.url}/domains/demo/power-on`, { method: 'POST', headers: { authorization: `Bearer ${token('dr-lead')}`, 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(noJson.status, 415);
  });

  it('starts an operation (202 with links), refuses a second one with 409 naming it, and routes the approval', async () => {
    const started = await call('POST', '/domains/demo/power-on', 'night-operator', { runbook: 'demo-recovery' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, /^power-on\/demo\/\d{4}-\d\d-\d\dT/);
    assert.equal(started.body.statusUrl, `/operations/${encodeURIComponent(workflowId)}`);
    assert.match(String(started.body.webUiUrl), /^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/power-on%2Fdemo%2F/);
    assert.equal((await stack.client.workflow.getHandle(workflowId).describe()).memo?.requestId, started.requestId, 'the request id links the operation to its audit record');

    const second = await call('POST', '/domains/demo/power-on', 'dr-lead', { runbook: 'demo-recovery' });
    assert.equal(second.status, 409);
    assert.match(String(second.body.detail), new RegExp(`power-on ${workflowId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(requested by night-operator\\) is running`));
    assert.equal((second.body.running as { workflowId: string }).workflowId, workflowId);

    const status = String(started.body.statusUrl);
    const gate = await eventually(async () => {
      const s = await call('GET', status, 'auditor');
      return (s.body.groups as Array<{ waitingForApproval?: unknown }>).some((g) => g.waitingForApproval) ? s : undefined;
    }, 'the approval gate');
    assert.deepEqual(site.poweredOn.map((p) => p.vm), ['db-1']);
    // database needs no operator: the operation powered it on itself and its progress is in the plan's; app, gated, is a child.
    const plan = gate.body.plan as { groups: Array<{ name: string; workflowId: string; inOperation?: { vms: Array<{ name: string; state: string }> } }> };
    assert.deepEqual(plan.groups.map((g) => [g.name, g.workflowId]), [['database', workflowId], ['app', `${workflowId}/power-on/app`]]);
    assert.deepEqual(plan.groups[0].inOperation?.vms.map((v) => `${v.name}:${v.state}`), ['db-1:poweredOn']);

    const wrongApprover = await call('POST', `${status}/approve`, 'night-operator', { step: 'go-ahead' });
    assert.equal(wrongApprover.status, 403);
    assert.match(String(wrongApprover.body.detail), /"night-operator" may not approve step "go-ahead"; approvers: dr-lead/);
    assert.equal((await call('POST', `${status}/approve`, 'dr-lead', { step: 'not-a-step' })).status, 409);
    const approved = await call('POST', `${status}/approve`, 'dr-lead', { step: 'go-ahead' });
    assert.equal(approved.status, 200);

    const done = await eventually(async () => {
      const s = await call('GET', status, 'auditor');
      return s.body.status === 'COMPLETED' ? s : undefined;
    }, 'completion');
    const result = done.body.result as Array<{ group: string; vms: Array<{ name: string; state: string }> }>;
    assert.deepEqual(result.map((g) => g.vms.map((v) => `${v.name}:${v.state}`)), [['db-1:poweredOn'], ['app-1:poweredOn', 'report-1:leftPoweredOff']]);

    const desk = await eventually(async () => {
      const d = await call('GET', '/domains/demo/operations', 'auditor');
      return d.body.running === null ? d : undefined;
    }, 'the desk to be free');
    assert.equal((desk.body.recent as Array<{ workflowId: string; outcome: string }>)[0].outcome, 'succeeded');
  });

  it('cancels a running operation, after which the domain accepts the next one', async () => {
    const started = await call('POST', '/domains/demo/power-on', 'dr-lead', { runbook: 'demo-recovery' });
    assert.equal(started.status, 202);
    const status = String(started.body.statusUrl);
    await eventually(async () => {
      const s = await call('GET', status, 'auditor');
      return (s.body.groups as Array<{ waitingForApproval?: unknown }>).some((g) => g.waitingForApproval) ? s : undefined;
    }, 'the approval gate');
    assert.equal((await call('POST', `${status}/cancel`, 'auditor')).status, 403);
    assert.equal((await call('POST', `${status}/cancel`, 'dr-lead')).status, 202);
    await eventually(async () => {
      const s = await call('GET', status, 'auditor');
      return s.body.status === 'CANCELLED' ? s : undefined;
    }, 'cancellation');
    const next = await eventually(async () => {
      const n = await call('POST', '/domains/demo/power-on', 'dr-lead', { runbook: 'demo-recovery' });
      return n.status === 202 ? n : undefined;
    }, 'the desk to accept the next operation');
    await call('POST', `${String(next.body.statusUrl)}/cancel`, 'dr-lead');
    assert.equal((await call('GET', '/operations/no-such-op', 'auditor')).status, 404);
  });
});
