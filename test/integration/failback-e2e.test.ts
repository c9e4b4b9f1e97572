import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import type { OperationProgress, OperationReport } from '../../workflows/operation-messages';
import { apiCalls } from '../harness/api-calls';
import { domainJourney } from '../harness/domain-journey';
import { assertBackAtPrimary, disksOf } from '../harness/failback';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('failback end to end, on real Temporal, S3, sites and worker processes: the domain returns to its original VMs at the primary', () => {
  const viewer: ApiPrincipal = { name: 'auditor', role: 'viewer', token: generateToken() };
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['foxtrot', 'golf', 'charlie', 'hotel']), workers: ['orchestration', 'primary', 'recovery'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  const api = useTestApi({ principals: [operator, viewer], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const calls = apiCalls(() => api.url, operator.token);
  const journey = domainJourney(bed, calls);

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'failback-e2e' });
    await Promise.all(['foxtrot', 'golf', 'charlie', 'hotel'].map((domain) => protectAtPrimary(stack.client, domain)));
  });

  /** Planned failover, the workload writes at the recovery site, then stops: returns the recovery site's disks as failback will find them. */
  async function failOverAndWriteThere(domain: string): Promise<Map<string, Buffer>> {
    await calls.submitRunbook(runbookYaml(domain, {}));
    await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    await journey.operate(`/domains/${domain}/failover`, { type: 'planned' }, new RegExp(`^failover/${domain}/`));
    return writeAtRecovery(domain);
  }

  /** The domain's writes move to the recovery site for a while: returns its disks there once the workload has stopped. */
  async function writeAtRecovery(domain: string): Promise<Map<string, Buffer>> {
    // The primary's workload would write to the original VMs again once failback powers them on.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: `failback-${domain}` });
    await sleep(3_000);
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    return disksOf(recovery, domain);
  }

  /** A planned failover kept open by a commit policy, through the API: its workflow id once the window is open. */
  async function failOverWithCommitWindow(domain: string, commit: { after: string; then: 'commit' | 'rollback' }): Promise<string> {
    await calls.submitRunbook(runbookYaml(domain, {}));
    await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    const started = await calls.call('POST', `/domains/${domain}/failover`, { type: 'planned', commit });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.deepEqual(started.body.commit, commit);
    const workflowId = String(started.body.workflowId);
    await waitFor(`the commit window of ${workflowId}`, async () => commitWindowOf((await calls.call('GET', operationUrl(workflowId))).body)?.state === 'open', 120_000);
    return workflowId;
  }

  const operationUrl = (workflowId: string) => `/operations/${encodeURIComponent(workflowId)}`;
  const commitWindowOf = (operation: Record<string, unknown>) => (operation.progress as OperationProgress | undefined)?.commitWindow ?? (operation.result as OperationReport | undefined)?.commitWindow;

  it('planned failback after a planned failover: only the changes since go back (delta), onto the original VMs, which run again', async () => {
    const expected = await failOverAndWriteThere('foxtrot');
    const report = await journey.failBack('foxtrot', { type: 'planned' });
    const size = [...expected.values()].reduce((sum, d) => sum + d.length, 0);
    assert.equal(report.rehydration?.kind, 'delta', JSON.stringify(report.rehydration));
    assert.ok(report.rehydration.bytesWritten > 0 && report.rehydration.bytesWritten < size / 2, `${report.rehydration.bytesWritten} bytes of ${size}`);
    assert.ok(report.rtoMs !== undefined && report.rpoMs === 0);
    assert.ok(report.steps.some((s) => s.name === 'rehydrate the changes since the failover (delta)'));
    await assertBackAtPrimary({ primary, recovery, store }, 'foxtrot', domainVms('foxtrot'), expected);
  });

  it('planned failback onto a damaged original disk: a full rehydration overwrites it, and the disks verify', async () => {
    const expected = await failOverAndWriteThere('golf');
    const [damaged] = expected.keys();
    await primary.client.writeDisk(damaged, 0, Buffer.alloc(4096, 0xdb));
    const report = await journey.failBack('golf', { type: 'planned' });
    assert.equal(report.rehydration?.kind, 'full', JSON.stringify(report.rehydration));
    await assertBackAtPrimary({ primary, recovery, store }, 'golf', domainVms('golf'), expected);
  });

  it("a rollback in a failover's commit window returns the domain to its originals by delta, with nothing lost", async () => {
    const workflowId = await failOverWithCommitWindow('charlie', { after: '30m', then: 'commit' });
    assert.equal((await readDomainStatus(store, 'charlie'))?.mode, 'Running in Failover', 'the failover is done while its window is open');
    const busy = await calls.call('POST', '/domains/charlie/failback', { type: 'planned' });
    assert.equal(busy.status, 409, 'the open failover holds the domain: a rollback is how it returns');
    const expected = await writeAtRecovery('charlie');
    assert.equal((await calls.call('POST', `${operationUrl(workflowId)}/rollback`, {}, viewer.token)).status, 403);
    const asked = await calls.call('POST', `${operationUrl(workflowId)}/rollback`, {});
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    const { status, result } = await calls.operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const window = (result as OperationReport).commitWindow;
    assert.equal(window?.state, 'rolled back', JSON.stringify(window));
    assert.equal(window.decidedBy, operator.name);
    assert.equal(window.rollback?.rpoMs, 0);
    assert.equal(window.rollback?.rehydration?.kind, 'delta', JSON.stringify(window.rollback));
    assert.match(window.rollback?.workflowId ?? '', /^failback\/charlie\//);
    await assertBackAtPrimary({ primary, recovery, store }, 'charlie', domainVms('charlie'), expected);
    assert.equal((await calls.call('POST', `${operationUrl(workflowId)}/commit`, {})).status, 409, 'a closed window takes no decision');
  });

  it('a commit window that ends with then: commit commits by itself, although the Temporal server restarted during the wait', async () => {
    const workflowId = await failOverWithCommitWindow('hotel', { after: '20s', then: 'commit' });
    await stack.restartTemporal();
    await waitFor('the operation readable again', async () => (await calls.call('GET', operationUrl(workflowId)).catch(() => ({ status: 0 }))).status === 200, 60_000);
    const { status, result } = await calls.operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const window = (result as OperationReport).commitWindow;
    assert.equal(window?.state, 'committed', JSON.stringify(window));
    assert.equal(window.decidedBy, 'the commit policy');
    assert.ok(window.decidedAt! >= window.deadline, 'decided when the window ended, not before');
    const status2 = await readDomainStatus(store, 'hotel');
    assert.equal(status2?.mode, 'Running in Failover');
    assert.equal(status2?.runningAt, 'recovery');
  });
});
