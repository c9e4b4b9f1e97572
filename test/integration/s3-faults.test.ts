import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateRunbook } from '../../runbooks/validate';
import { failover } from '../../workflows/failover';
import { protectStatusQuery, rpoBound } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { assertLogHoldsEachWriteOnce, assertRecoveredEqualsPrimary } from '../harness/log-checks';
import { atChaosSize } from '../harness/crashes';
import { FLAKY_STORE, siteWorkersBehindProxy, type S3FaultProxy } from '../harness/s3-fault-proxy';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const DOMAIN = 'flaky';
/** The two minutes of faults and a minute unreachable under `npm run chaos`; shorter in npm test. */
const FAULTS_MS = atChaosSize(120_000, 15_000);
const UNREACHABLE_MS = atChaosSize(60_000, 20_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a flaky object store (errors, stalls, lost answers), then an unreachable one, under protection, and a planned failover through the faults: the RPO recovers, nothing is lost or written twice', () => {
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration'] });
  const { stack, sites, primary, recovery, store } = bed;
  let proxy: S3FaultProxy | undefined;
  before(async () => {
    proxy = await siteWorkersBehindProxy(bed, ['primary', 'recovery']);
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 's3-faults' });
    await protectAtPrimary(stack.client, DOMAIN);
  });
  after(() => proxy?.close());

  it('protects through the faults and the outage, catches up once they stop, fails over through them, and the recovered disks equal the primary\'s', async (t) => {
    const faulty = proxy!;
    const protection = stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', 1));
    faulty.setRules(FLAKY_STORE);
    await sleep(FAULTS_MS);
    const during = await protection.query(protectStatusQuery);
    faulty.clear();
    await waitFor('the RPO back under 10 s once the faults stop, after a replicator run', async () => {
      const status = await protection.query(protectStatusQuery);
      return status.cursor > during.cursor && (rpoBound(status, Date.now()) ?? Infinity) < 10;
    }, 60_000);
    t.diagnostic(`after ${FAULTS_MS / 1000} s of faults: RPO ${rpoBound(during, Date.now())} s, mode ${during.mode}`);

    // The store unreachable: the site's journal holds the writes meanwhile, and the log catches up once it answers.
    faulty.setRules({ unreachable: true });
    await sleep(UNREACHABLE_MS);
    const cut = await protection.query(protectStatusQuery);
    assert.ok((rpoBound(cut, Date.now()) ?? 0) >= UNREACHABLE_MS / 1000 - 5, `the RPO rose while the store was unreachable: ${rpoBound(cut, Date.now())} s`);
    faulty.clear();
    await waitFor('the RPO back under 10 s once the store answers again', async () => {
      const status = await protection.query(protectStatusQuery);
      return status.cursor > cut.cursor && (rpoBound(status, Date.now()) ?? Infinity) < 10;
    }, 90_000);

    faulty.setRules(FLAKY_STORE);
    const checked = validateRunbook(runbookYaml(DOMAIN, {}));
    assert.ok(checked.runbook, JSON.stringify(checked.errors));
    const report = await stack.client.workflow.execute(failover, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: `failover/${DOMAIN}/s3-faults`,
      args: [{ domain: DOMAIN, type: 'planned', runbook: checked.runbook, runbookVersion: 1, requestedBy: 's3-faults-test', declaredAt: Date.now() }],
    });
    faulty.clear();
    t.diagnostic(`proxy: ${JSON.stringify(faulty.counts)}; failover ${report.outcome} in ${Math.round(report.rtoMs! / 1000)} s`);
    assert.equal(report.outcome, 'succeeded');
    assert.ok(faulty.counts.errors > 0 && faulty.counts.stalls > 0 && faulty.counts.lostAnswers > 0, JSON.stringify(faulty.counts));

    await assertRecoveredEqualsPrimary(DOMAIN, primary, recovery);
    await assertLogHoldsEachWriteOnce(store, DOMAIN, 1);
  });
});
