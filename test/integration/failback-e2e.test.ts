import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import type { OperationReport } from '../../workflows/operation-messages';
import { apiCalls } from '../harness/api-calls';
import { assertBackAtPrimary, disksOfVms } from '../harness/failback';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('failback end to end, on real Temporal, S3, sites and worker processes: the domain returns to its original VMs at the primary', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, recovery, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['foxtrot', 'golf']), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'failback-e2e' });
    await Promise.all(['foxtrot', 'golf'].map((domain) => protectAtPrimary(stack.client, domain)));
  });

  /** Planned failover, the workload writes at the recovery site, then stops: returns the recovery site's disks as failback will find them. */
  async function failOverAndWriteThere(domain: string): Promise<Map<string, Buffer>> {
    await submitRunbook(runbookYaml(domain, {}));
    await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    const failover = await call('POST', `/domains/${domain}/failover`, { type: 'planned' });
    assert.equal(failover.status, 202, JSON.stringify(failover.body));
    const failedOver = await operationResult(String(failover.body.workflowId));
    assert.equal(failedOver.status, 'COMPLETED', JSON.stringify(failedOver.result));
    // The primary's workload would write to the original VMs again once failback powers them on.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: `failback-${domain}` });
    await sleep(3_000);
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    return disksOfVms(recovery, domainVms(domain));
  }

  async function failBack(domain: string): Promise<OperationReport> {
    const started = await call('POST', `/domains/${domain}/failback`, { type: 'planned' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.match(String(started.body.workflowId), new RegExp(`^failback/${domain}/`));
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    return result as OperationReport;
  }

  it('planned failback after a planned failover: only the changes since go back (delta), onto the original VMs, which run again', async () => {
    const expected = await failOverAndWriteThere('foxtrot');
    const report = await failBack('foxtrot');
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
    const report = await failBack('golf');
    assert.equal(report.rehydration?.kind, 'full', JSON.stringify(report.rehydration));
    await assertBackAtPrimary({ primary, recovery, store }, 'golf', domainVms('golf'), expected);
  });
});
