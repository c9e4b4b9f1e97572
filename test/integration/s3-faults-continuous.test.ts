import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { temporal } from '@temporalio/proto';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import type { OperationReport } from '../../workflows/operation-messages';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { apiCalls } from '../harness/api-calls';
import { assertLogHoldsEachWriteOnce, assertRecoveredEqualsPrimary } from '../harness/log-checks';
import { FLAKY_STORE, siteWorkersBehindProxy, type S3FaultProxy } from '../harness/s3-fault-proxy';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

const DOMAIN = 'wobbly';
/** How long the copy follows through the faults before the completion is asked for (the completion runs through them too). */
const FOLLOWING_THROUGH_FAULTS_MS = 10_000;

/** The reads of log segments (not the listings, whose path is the bucket's). */
const SEGMENT_READ = /\/log\/\d+\//;
/** Longer than the follower's heartbeat timeout (3 s). */
const SEGMENT_READS_HELD_MS = 5_000;

describe('a continuous failover following through an object store that holds its segment reads for 5 s, then a flaky one (10% errors, 5% stalls of 2 s, lost answers), and its planned completion through the same faults: it completes, and the recovered disks equal the primary\'s', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);
  let proxy: S3FaultProxy | undefined;
  before(async () => {
    // The replicator at the primary and the follower at the recovery site.
    proxy = await siteWorkersBehindProxy(bed, ['primary', 'recovery']);
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 's3-faults-continuous' });
    await protectAtPrimary(stack.client, DOMAIN);
    await submitRunbook(runbookYaml(DOMAIN, {}));
  });
  after(() => proxy?.close());

  /**
   * Follower activities (runs and the tail) that the server timed out and started again while the
   * attempt may still have been running. A retry after an attempt that failed (the store's errors
   * outlasted the SDK's retries) is not one: that attempt had ended.
   */
  const followerRunsTimedOut = async (workflowId: string) => {
    const events = (await stack.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const followers = new Set(events.flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name === 'followLog' ? [String(e.eventId)] : [])));
    return events.flatMap((e) => {
      const started = e.activityTaskStartedEventAttributes;
      const timedOut = started?.lastFailure?.timeoutFailureInfo;
      return started && followers.has(String(started.scheduledEventId)) && timedOut ? [`followLog attempt ${started.attempt} after ${temporal.api.enums.v1.TimeoutType[timedOut.timeoutType ?? 0]}`] : [];
    });
  };

  it('follows through segment reads held past its heartbeat timeout in one run, and completes through the faults; each VM once at the recovery site, every disk equal to the primary\'s after its shutdown, the log holding each write once', async (t) => {
    const faulty = proxy!;
    await waitFor(`${DOMAIN} Protected`, async () => (await call('GET', `/domains/${DOMAIN}`)).body.mode === 'Protected', 30_000);
    const started = await call('POST', `/domains/${DOMAIN}/continuous-failover`, {});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    await waitFor(`${DOMAIN} following`, async () => (await call('GET', `/domains/${DOMAIN}`)).body.mode === 'Continuous Rehydration in Progress', 60_000);

    // A store that answers no segment read for longer than the follower's heartbeat timeout: the follower, alive, keeps its run.
    faulty.setRules({ hold: { method: 'GET', path: SEGMENT_READ } });
    await waitFor('a segment read held', () => Promise.resolve(faulty.counts.held > 0), 30_000);
    await new Promise((resolve) => setTimeout(resolve, SEGMENT_READS_HELD_MS));
    faulty.setRules(FLAKY_STORE);
    await new Promise((resolve) => setTimeout(resolve, FOLLOWING_THROUGH_FAULTS_MS));
    const askedAt = Date.now();
    const completion = await call('POST', `/domains/${DOMAIN}/failover`, { type: 'planned' });
    assert.equal(completion.status, 202, JSON.stringify(completion.body));
    const { status, result } = await operationResult(workflowId);
    faulty.clear();
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    t.diagnostic(`proxy: ${JSON.stringify(faulty.counts)}; completion ${report.outcome} ${Math.round((Date.now() - askedAt) / 1000)} s after it was asked, RPO ${report.rpoMs} ms`);
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.rpoMs, 0, 'a planned completion loses nothing');
    assert.ok(faulty.counts.errors > 0 && faulty.counts.stalls > 0, JSON.stringify(faulty.counts));

    assert.deepEqual(await followerRunsTimedOut(workflowId), [], 'no follower run was given up on while it waited for the store');
    await assertRecoveredEqualsPrimary(DOMAIN, primary, recovery);
    await assertLogHoldsEachWriteOnce(store, DOMAIN, 1);
  });
});
