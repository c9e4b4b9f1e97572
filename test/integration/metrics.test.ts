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

const RPO_TARGET_SECONDS = 15;

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
    // Before protection starts, so that its workflow knows the target too (it reads it when each execution starts).
    await runbooks.put('echo', runbookYaml('echo', {}).replace('protectionWindow: 1d }', `protectionWindow: 1d, rpoTarget: ${RPO_TARGET_SECONDS}s }`), 'test');
    await protectAtPrimary(stack.client, 'echo');
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
    assert.ok(rpo !== undefined && rpo >= 0 && rpo < RPO_TARGET_SECONDS, `dr_rpo_seconds ${rpo}`);
    assert.equal(sample(families, 'dr_rpo_target_seconds', { domain: 'echo' }), RPO_TARGET_SECONDS, 'the target of echo\'s latest runbook');
    assert.equal(sample(families, 'dr_rpo_target_breached', { domain: 'echo' }), 0);
    assert.equal(sample(families, 'dr_protection_mode', { domain: 'echo', mode: 'log' }), 1);
    assert.equal(sample(families, 'dr_protection_mode', { domain: 'echo', mode: 'bitmap' }), 0);
    assert.equal(sample(families, 'dr_domain_mode', { domain: 'echo', mode: 'Protected' }), 1);
    assert.equal(sample(families, 'dr_protection_answering', { domain: 'echo' }), 1);
    assert.ok((sample(families, 'dr_worker_pollers', { task_queue: 'site.primary' }) ?? 0) >= 1);
    assert.equal(sample(families, 'dr_worker_pollers', { task_queue: 'site.recovery' }), 0, 'no worker for the recovery site');
    assert.ok((sample(families, 'dr_worker_pollers', { task_queue: 'orchestration' }) ?? 0) >= 1);
    const replicated = sample(families, 'dr_replication_bytes_total', { domain: 'echo' });
    assert.ok(replicated !== undefined && replicated >= 4096, `dr_replication_bytes_total ${replicated}: echo's workload writes 4 KiB blocks`);
    const lagBytes = sample(families, 'dr_replication_lag_bytes', { domain: 'echo' });
    assert.ok(lagBytes !== undefined && lagBytes >= 0 && lagBytes < 1024 * 1024, `dr_replication_lag_bytes ${lagBytes}`);
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

  it('RPO rises while the object store is paused, with the breach flag and the protection\'s details in the Web UI, and falls once it answers again', async (t) => {
    const rpoNow = async () => {
      const families = parsePrometheusTextFormat((await scrape()).text);
      return { seconds: sample(families, 'dr_rpo_seconds', { domain: 'echo' }) ?? NaN, breached: sample(families, 'dr_rpo_target_breached', { domain: 'echo' }) };
    };
    const protection = stack.client.workflow.getHandle(protectionWorkflowId('echo', 'primary', 1));
    const details = async () => (await protection.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails ?? '';
    await waitFor('echo within its RPO target', async () => (await rpoNow()).breached === 0, 30_000);
    process.kill(stack.s3Process.pid, 'SIGSTOP');
    const paused = Date.now();
    try {
      await waitFor('the RPO past its target while S3 is paused', async () => (await rpoNow()).breached === 1, 60_000);
      const during = await rpoNow();
      assert.ok(during.seconds > RPO_TARGET_SECONDS, `dr_rpo_seconds ${during.seconds} while paused`);
      await waitFor('the protection\'s details saying the RPO target is breached', async () => (await details()).includes('RPO target breached'), 60_000);
      t.diagnostic(`after ${(Date.now() - paused) / 1000} s paused: RPO ${(await rpoNow()).seconds} s; details: ${JSON.stringify(await details())}`);
    } finally {
      process.kill(stack.s3Process.pid, 'SIGCONT');
    }
    await waitFor('the RPO back within its target', async () => (await rpoNow()).breached === 0, 90_000);
    assert.ok((await rpoNow()).seconds < RPO_TARGET_SECONDS);
  });
});
