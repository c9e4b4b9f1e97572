import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { domainListRouter } from '../../api/domain-list';
import { protectStatusQuery } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { apiCalls } from '../harness/api-calls';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

interface Line {
  domain: string;
  mode: string;
  owner: { site: string; epoch: number } | null;
  conflict: boolean;
  protection: { mode: string } | null;
  rpo: { seconds: number; targetSeconds: number | null; breached: boolean } | null;
  lastRestorePoint: { id: string; at: string } | null;
  running: unknown;
  drill: unknown;
  lastDrill: unknown;
  warnings?: string[];
}

describe('GET /domains on real servers: every domain of the storage site on one line, in bounded time even when its workflows cannot answer', () => {
  const viewer: ApiPrincipal = { name: 'noc', role: 'viewer', token: generateToken() };
  const { stack, sites, primary, store, runbooks, workers } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['echo', 'foxtrot']), workers: ['orchestration', 'primary'] });
  const api = useTestApi({ principals: [viewer], routers: (log) => [domainListRouter({ client: stack.client, store, runbooks, log, deadlineMs: 1_500 })] });
  const { call } = apiCalls(() => api.url, viewer.token);
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 20, blockSize: 4096, pattern: 'random', seed: 'domain-list' });
    for (const domain of ['echo', 'foxtrot']) await protectAtPrimary(stack.client, domain);
    await runbooks.put('echo', runbookYaml('echo', {}).replace('protection: { restorePointInterval: 1m, protectionWindow: 1d }', 'protection: { restorePointInterval: 1m, protectionWindow: 1d, rpoTarget: 10m }'), 'test');
    for (const domain of ['echo', 'foxtrot']) {
      const protection = stack.client.workflow.getHandle(protectionWorkflowId(domain, 'primary', 1));
      await waitFor(`${domain} replicating in log mode`, async () => (await protection.query(protectStatusQuery)).mode === 'log', 60_000);
    }
  });

  it('lists each protected domain: mode, owner, protection and its RPO now, nothing running, never drilled', async () => {
    const { status, body } = await call('GET', '/domains');
    assert.equal(status, 200, JSON.stringify(body));
    const lines = body.domains as Line[];
    assert.deepEqual(lines.map((l) => l.domain), ['echo', 'foxtrot']);
    for (const line of lines) {
      assert.deepEqual([line.mode, line.owner, line.conflict, line.running, line.drill, line.lastDrill], ['Protected', { site: 'primary', epoch: 1 }, false, null, null, null], JSON.stringify(line));
      assert.equal(line.protection?.mode, 'log');
      assert.ok(line.rpo && line.rpo.seconds >= 0 && line.rpo.seconds < 600, JSON.stringify(line.rpo));
      assert.equal(line.warnings, undefined);
    }
    const echo = lines.find((l) => l.domain === 'echo')!;
    assert.deepEqual([echo.rpo?.targetSeconds, echo.rpo?.breached], [600, false], 'echo\'s runbook sets rpoTarget 10m');
    assert.equal(lines.find((l) => l.domain === 'foxtrot')!.rpo?.targetSeconds, null, 'foxtrot has no runbook: no target');
  });

  it('still answers, in bounded time, with no orchestration worker to answer the queries: the protection unknown and a warning saying why', async () => {
    await workers.crash('orchestration');
    try {
      const asked = Date.now();
      const { status, body } = await call('GET', '/domains');
      assert.equal(status, 200, JSON.stringify(body));
      assert.ok(Date.now() - asked < 10_000, `answered in ${Date.now() - asked} ms`);
      for (const line of body.domains as Line[]) {
        assert.equal(line.protection, null);
        assert.equal(line.mode, 'Protected', 'what the storage site knows is still shown');
        assert.ok(line.warnings?.some((w) => w.startsWith(`${protectionWorkflowId(line.domain, 'primary', 1)} did not answer within 1.5 s`)), JSON.stringify(line.warnings));
      }
    } finally {
      await workers.orchestration();
    }
  });

  it('is for viewers and above', async () => {
    assert.equal((await call('GET', '/domains', undefined, null)).status, 401);
  });
});
