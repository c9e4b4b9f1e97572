import assert from 'node:assert/strict';
import { before, after, describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { generateToken } from '../../api/auth';
import { domainListRouter } from '../../api/domain-list';
import { apiMetrics, type ApiMetrics } from '../../api/metrics';
import { operationsRouter } from '../../api/operations';
import { Ownership } from '../../datapath/ownership';
import { protectStatusQuery, rpoBound, type ProtectStatus } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { failoverSiteDefinitions, protectAtPrimary, waitFor } from '../fixtures/failover-domains';
import { assertLogHoldsEachWriteOnce, assertLogRebuildsPrimary } from '../harness/log-checks';
import { siteWorkersBehindProxy, type S3FaultProxy } from '../harness/s3-fault-proxy';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

const DOMAIN = 'revoked';
/** Shortened from the 30 s default, so that protection tries again soon after the credentials are valid. */
const ACCESS_RETRY_MS = 3_000;
const REFUSED_MS = 15_000;
/**
 * Bitmap mode once the oldest write not in the log is this old: past what the refusal leaves
 * behind (its window and one wait), short of the outage.
 */
const MAX_LAG_MS = 30_000;
/** Shortened from the minute issue 17 names: long enough for bitmap mode to take over. */
const UNREACHABLE_MS = 40_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the object store refusing the site worker\'s credentials (403), then unreachable past the throttle, under protection with a live workload: protection shows the refusal and resumes by itself, bitmap mode holds the outage, and the log is complete', () => {
  const viewer: ApiPrincipal = { name: 'operator-console', role: 'viewer', token: generateToken() };
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  let metrics: ApiMetrics | undefined;
  const api = useTestApi({
    principals: [viewer],
    routers: (log) => {
      metrics = apiMetrics({ client: stack.client, store, runbooks, log, sites: ['primary'], refreshMs: 200 });
      return [metrics.router, operationsRouter({ client: stack.client, runbooks, store, log }), domainListRouter({ client: stack.client, store, runbooks, log })];
    },
  });
  let proxy: S3FaultProxy | undefined;
  before(async () => {
    proxy = await siteWorkersBehindProxy(bed, ['primary']);
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 's3-refused' });
    await protectAtPrimary(stack.client, DOMAIN, { accessRetryMs: ACCESS_RETRY_MS, throttle: { maxLagMs: MAX_LAG_MS } });
  });
  after(() => proxy?.close());

  const get = async (path: string) => {
    const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${viewer.token}` } });
    assert.equal(res.status, 200, path);
    return res;
  };
  const shownProtection = async () => ((await (await get(`/domains/${DOMAIN}`)).json()) as { protection: ProtectStatus | null }).protection;
  const failingMetric = async () => {
    const family = parsePrometheusTextFormat(await (await get('/metrics')).text()).find((f) => f.name === 'dr_protection_failing');
    const sample = family?.metrics.find((m) => m.labels?.domain === DOMAIN && m.labels.reason === 'ObjectStoreAccessDenied');
    return sample?.value === undefined ? undefined : Number(sample.value);
  };
  const protection = () => stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', 1));

  it('a refusal fails each replicator run at once, names the bucket and key in the domain\'s status, the Web UI and the metrics, and protection resumes by itself once the credentials are valid', async (t) => {
    const refusing = proxy!;
    assert.equal(await failingMetric(), 0, 'nothing fails before the refusal');
    refusing.setRules({ accessDenied: true });
    const refusedAt = Date.now();
    await waitFor('the refusal in GET /domains/{d}', async () => (await shownProtection())?.failing !== undefined, REFUSED_MS);
    const shown = (await shownProtection())!.failing!;
    assert.equal(shown.reason, 'ObjectStoreAccessDenied');
    assert.match(shown.message, new RegExp(`s3://${stack.s3Settings.bucket}/\\S*domains/${DOMAIN}/\\S+`), 'the bucket and key');
    await waitFor('dr_protection_failing 1', async () => (await failingMetric()) === 1, 5_000);
    const listed = (await (await get('/domains')).json()) as { domains: Array<{ domain: string; protection: { failing?: { reason: string; message: string } } | null; warnings?: string[] }> };
    const line = listed.domains.find((d) => d.domain === DOMAIN);
    assert.equal(line?.protection?.failing?.reason, 'ObjectStoreAccessDenied', 'GET /domains shows it on the domain\'s line');
    assert.ok(line.warnings?.some((w) => w.includes(shown.message)), `a warning quotes the refusal: ${JSON.stringify(line.warnings)}`);
    const { currentDetails } = await protection().query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    assert.match(currentDetails ?? '', /Failing since .* \(ObjectStoreAccessDenied\): the object store refused access to s3:\/\//);
    await sleep(refusedAt + REFUSED_MS - Date.now());
    const refused = await protection().query(protectStatusQuery);
    refusing.clear();
    const clearedAt = Date.now();
    // Each try is refused at its first request and not retried until the wait is over: a handful of refusals, not a storm.
    const tries = REFUSED_MS / ACCESS_RETRY_MS + 1;
    assert.ok(refusing.counts.refusals > 0 && refusing.counts.refusals <= 3 * tries, `${refusing.counts.refusals} requests refused in ${REFUSED_MS / 1000} s`);

    await waitFor('protection resumed, the RPO back under 10 s', async () => {
      const status = await protection().query(protectStatusQuery);
      return status.failing === undefined && status.cursor > refused.cursor && (rpoBound(status, Date.now()) ?? Infinity) < 10;
    }, 30_000);
    const resumedAfterMs = Date.now() - clearedAt;
    assert.equal((await shownProtection())?.failing, undefined);
    const relisted = (await (await get('/domains')).json()) as { domains: Array<{ domain: string; protection: { failing?: unknown } | null }> };
    assert.equal(relisted.domains.find((d) => d.domain === DOMAIN)?.protection?.failing, undefined, 'and no longer once it resumed');
    await waitFor('dr_protection_failing 0', async () => (await failingMetric()) === 0, 5_000);
    const resumed = await protection().query(protectStatusQuery);
    assert.deepEqual(resumed.modeChanges.map((c) => c.mode), ['initial-sync', 'log'], 'the refusal left no bitmap stretch');
    t.diagnostic(`refused ${refusing.counts.refusals} requests; RPO ${rpoBound(refused, clearedAt)} s when the credentials came back, ${rpoBound(resumed, Date.now())} s ${Math.round(resumedAfterMs / 1000)} s later`);
  });

  it('the store unreachable past the throttle: bitmap mode takes over once it answers, the resync completes, and the log rebuilds the primary\'s disks', async (t) => {
    const faulty = proxy!;
    faulty.setRules({ unreachable: true });
    await sleep(UNREACHABLE_MS);
    const cut = await protection().query(protectStatusQuery);
    assert.equal(cut.mode, 'log', 'the replicator cannot start bitmap mode while the store does not answer');
    faulty.clear();
    const answeredAt = Date.now();
    await waitFor('bitmap mode, a resync, and log mode again with the RPO under 10 s', async () => {
      const status = await protection().query(protectStatusQuery);
      return status.mode === 'log' && status.modeChanges.some((c) => c.mode === 'resync' && c.at >= answeredAt) && (rpoBound(status, Date.now()) ?? Infinity) < 10;
    }, 60_000);
    const caughtUpAfterMs = Date.now() - answeredAt;
    const { modeChanges } = await protection().query(protectStatusQuery);
    assert.match(modeChanges.map((c) => c.mode).join(' '), /^initial-sync log bitmap resync log$/);

    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    const { lastSequence } = await primary.client.readJournal({ afterSequence: 0, maxEntries: 1 });
    await waitFor('every write of the workload in the log', async () => {
      const status = await protection().query(protectStatusQuery);
      return status.mode === 'log' && status.cursor >= lastSequence;
    }, 30_000);
    const bitmapFrom = modeChanges.find((c) => c.mode === 'bitmap')!.cursor;
    assert.ok(await store.get(new Ownership(store, DOMAIN).keys.resync(1, bitmapFrom, 'done')), `the resync from cursor ${bitmapFrom} is done: base and log exact again`);
    await assertLogHoldsEachWriteOnce(store, DOMAIN, 1);
    await assertLogRebuildsPrimary(store, DOMAIN, primary, recovery, 'ds-b');
    t.diagnostic(`RPO ${rpoBound(cut, answeredAt)} s when the store answered again; log mode and RPO under 10 s ${Math.round(caughtUpAfterMs / 1000)} s later`);
  });
});
