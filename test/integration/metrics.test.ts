import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { generateToken } from '../../api/auth';
import { apiMetrics, type ApiMetrics } from '../../api/metrics';
import { protectStatusQuery } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

describe('GET /metrics on real servers, read by a Prometheus text-format parser: RPO and protection per domain, worker polling, the API\'s own traffic', () => {
  const viewer: ApiPrincipal = { name: 'prometheus', role: 'viewer', token: generateToken() };
  const { stack, sites, primary, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['echo']), workers: ['orchestration', 'primary'] });
  let metrics: ApiMetrics | undefined;
  const api = useTestApi({
    principals: [viewer],
    routers: (log) => {
      metrics = apiMetrics({ client: stack.client, store, runbooks, log, sites: ['primary', 'recovery'], refreshMs: 200 });
      return [metrics.router];
    },
    httpMetrics: (req, res, next) => metrics!.httpMetrics(req, res, next),
  });
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 20, blockSize: 4096, pattern: 'random', seed: 'metrics' });
    await protectAtPrimary(stack.client, 'echo');
    await runbooks.put('echo', runbookYaml('echo', {}).replace('protectionWindow: 1d }', 'protectionWindow: 1d, rpoTarget: 10m }'), 'test');
    const protection = stack.client.workflow.getHandle(protectionWorkflowId('echo', 'primary', 1));
    await waitFor('echo replicating in log mode', async () => (await protection.query(protectStatusQuery)).mode === 'log', 60_000);
  });

  async function scrape(token: string | null = viewer.token) {
    const res = await fetch(`${api.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  }
  function sample(families: ReturnType<typeof parsePrometheusTextFormat>, name: string, labels: Record<string, string>): number | undefined {
    const family = families.find((f) => f.name === name);
    const found = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return found?.value === undefined ? undefined : Number(found.value);
  }

  it('answers each domain\'s RPO, protection mode, domain mode and restore point age, and which task queues have workers', async () => {
    const { status, type, text } = await scrape();
    assert.equal(status, 200, text);
    assert.match(type ?? '', /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(text);
    const rpo = sample(families, 'dr_rpo_seconds', { domain: 'echo' });
    assert.ok(rpo !== undefined && rpo >= 0 && rpo < 600, `dr_rpo_seconds ${rpo}`);
    assert.equal(sample(families, 'dr_rpo_target_seconds', { domain: 'echo' }), 600, 'the target of echo\'s latest runbook');
    assert.equal(sample(families, 'dr_rpo_target_breached', { domain: 'echo' }), 0);
    assert.equal(sample(families, 'dr_protection_mode', { domain: 'echo', mode: 'log' }), 1);
    assert.equal(sample(families, 'dr_protection_mode', { domain: 'echo', mode: 'bitmap' }), 0);
    assert.equal(sample(families, 'dr_domain_mode', { domain: 'echo', mode: 'Protected' }), 1);
    assert.equal(sample(families, 'dr_protection_answering', { domain: 'echo' }), 1);
    assert.ok((sample(families, 'dr_worker_pollers', { task_queue: 'site.primary' }) ?? 0) >= 1);
    assert.equal(sample(families, 'dr_worker_pollers', { task_queue: 'site.recovery' }), 0, 'no worker for the recovery site');
    assert.ok((sample(families, 'dr_worker_pollers', { task_queue: 'orchestration' }) ?? 0) >= 1);
    for (const name of ['dr_operations_total', 'dr_operation_duration_seconds', 'dr_last_restore_point_age_seconds']) assert.ok(families.some((f) => f.name === name), `${name} is exposed`);
  });

  it('counts the API\'s requests by route pattern and status, refusals included, and needs a token', async () => {
    assert.equal((await scrape(null)).status, 401);
    await scrape();
    const families = parsePrometheusTextFormat((await scrape()).text);
    assert.ok((sample(families, 'dr_http_requests_total', { method: 'GET', route: '/metrics', status: '200' }) ?? 0) >= 2);
    assert.ok((sample(families, 'dr_http_requests_total', { method: 'GET', route: 'unmatched', status: '401' }) ?? 0) >= 1, 'the refused scrape is counted');
    assert.ok(families.find((f) => f.name === 'dr_http_request_duration_seconds')?.type === 'HISTOGRAM');
  });
});
