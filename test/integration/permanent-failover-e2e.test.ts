import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readConflict } from '../../datapath/conflict';
import { readDomainStatus } from '../../datapath/domain-status';
import { validateRunbook } from '../../runbooks/validate';
import type { OperationReport } from '../../workflows/operation-messages';
import type { retireSite } from '../../workflows/retire';
import { retireWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { domainJourney } from '../harness/domain-journey';
import { disksOf } from '../harness/failback';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A runbook whose failback section describes the primary fully (placement, every network the
 * domain and the RocVA use at the recovery site mapped back): a permanent failover can name the
 * old primary as the new recovery site.
 */
const withFailbackSection = (domain: string) => `${runbookYaml(domain, {})}  failback:
    placement: { datacenter: dc-a, cluster: cluster-a1, resourcePool: prod, datastore: ds-a }
    networkMapping:
      - { source: dr-app, target: prod-app }
      - { source: dr-db, target: prod-db }
      - { source: dr-replication, target: a-replication }
      - { source: dr-rocva-internal, target: a-management }
      - { source: dr-management, target: a-management }
`;

describe('permanent failover end to end, on real Temporal, S3, sites and worker processes: the recovery site becomes the primary for good, the old one is cleared', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['foxtrot', 'golf', 'echo']), workers: ['orchestration', 'primary', 'recovery'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  const api = useTestApi({
    principals: [operator],
    routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log, sites: { names: ['primary', 'recovery'] } })],
  });
  const calls = apiCalls(() => api.url, operator.token);
  const { call } = calls;
  const journey = domainJourney(bed, calls);

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'permanent-failover-e2e' });
    await Promise.all(['foxtrot', 'golf', 'echo'].map((domain) => protectAtPrimary(stack.client, domain)));
    for (const domain of ['foxtrot', 'golf', 'echo']) {
      await calls.submitRunbook(domain === 'foxtrot' ? runbookYaml(domain, {}) : withFailbackSection(domain));
      await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    }
  });

  const permanentFailover = (domain: string) => journey.operate(`/domains/${domain}/permanent-failover`, { confirm: domain }, new RegExp(`^permanent-failover/${domain}/`));

  /** The permanent failover's workflow id as the domain's operations desk records it: the desk learns of the end a moment after the caller does. */
  const lastOperationId = async (domain: string) => {
    let id = '';
    await waitFor(`${domain}'s permanent failover among its recent operations`, async () => {
      id = ((await call('GET', `/domains/${domain}/operations`)).body.recent as Array<{ workflowId: string }>)[0]?.workflowId ?? '';
      return id.startsWith(`permanent-failover/${domain}/`);
    }, 10_000);
    return id;
  };

  /** The newest version of the domain's runbook is the new direction, written by the permanent failover: primary the recovery site, and `recovery`. */
  async function assertNewDirection(domain: string, report: OperationReport, workflowId: string, recovery?: string): Promise<void> {
    const latest = await runbooks.latest(domain);
    assert.equal(latest?.record.version, 2);
    assert.equal(latest.record.submittedBy, workflowId);
    const sites = { primary: 'recovery', ...(recovery ? { recovery } : {}) };
    assert.deepEqual(report.newDirection, { runbook: { name: domain, version: 2 }, ...sites });
    assert.deepEqual(validateRunbook(latest.text).runbook?.spec.sites, sites);
    assert.ok(await runbooks.get(domain, 1), 'the version it failed over by is kept');
  }

  /** Failback is refused, naming the permanent failover. */
  async function assertNoFailback(domain: string, workflowId: string): Promise<void> {
    const failback = await call('POST', `/domains/${domain}/failback`, { type: 'planned' });
    assert.equal(failback.status, 409, JSON.stringify(failback.body));
    assert.match(String(failback.body.detail), new RegExp(`${domain} was permanently failed over from primary to recovery by ${workflowId.replace(/[.]/g, '\\.')} at `));
    assert.equal((failback.body.permanentFailover as { workflowId: string }).workflowId, workflowId);
  }

  /** Failover is refused with 409 saying why. */
  async function assertFailoverRefused(domain: string, why: RegExp): Promise<void> {
    const failover = await call('POST', `/domains/${domain}/failover`, { type: 'planned' });
    assert.equal(failover.status, 409, JSON.stringify(failover.body));
    assert.match(String(failover.body.detail), why);
  }

  it('refuses a request that is not confirmed by the domain name (400), from a mode that does not allow it (409), and to an unknown site (400)', async () => {
    const unconfirmed = await call('POST', '/domains/foxtrot/permanent-failover', {});
    assert.equal(unconfirmed.status, 400, JSON.stringify(unconfirmed.body));
    assert.match(String(unconfirmed.body.detail), /confirm by repeating the domain name: "confirm": "foxtrot"/);
    assert.equal((await call('POST', '/domains/foxtrot/permanent-failover', { confirm: 'echo' })).status, 400);
    const protectedDomain = await call('POST', '/domains/foxtrot/permanent-failover', { confirm: 'foxtrot' });
    assert.equal(protectedDomain.status, 409, JSON.stringify(protectedDomain.body));
    assert.match(String(protectedDomain.body.detail), /permanent-failover is refused while foxtrot is Protected; allowed now: power-on, failover, continuous-failover/);
    assert.deepEqual((await call('GET', '/domains/foxtrot/operations')).body.recent, [], 'nothing started');
  });

  it('after a planned failover: the old primary holds none of the domain, failback is refused naming it, a new runbook version has the new direction, and writes at the new primary replicate', async () => {
    await journey.operate('/domains/foxtrot/failover', { type: 'planned' }, /^failover\/foxtrot\//);
    const unknownSite = await call('POST', '/domains/foxtrot/permanent-failover', { confirm: 'foxtrot', newRecoverySite: 'atlantis' });
    assert.equal(unknownSite.status, 400, JSON.stringify(unknownSite.body));
    assert.match(String(unknownSite.body.detail), /"atlantis" is not a known site; known sites: primary, recovery/);
    const diskIds = [...(await disksOf(recovery, 'foxtrot')).keys()].sort();

    const report = await permanentFailover('foxtrot');
    const id = await lastOperationId('foxtrot');
    assert.equal(report.retirement?.state, 'removed', JSON.stringify(report.retirement));
    assert.deepEqual(report.retirement.removed?.vms.filter((vm) => vm.kind === 'vm').map((vm) => vm.name), domainVms('foxtrot').sort());
    assert.deepEqual(report.retirement.removed?.diskIds, diskIds);
    await journey.assertNothingOfDomainAt(primary, 'foxtrot', diskIds);
    assert.deepEqual([...(await disksOf(recovery, 'foxtrot')).keys()].sort(), diskIds, 'the new primary keeps every disk');
    await assertNewDirection('foxtrot', report, id);
    await assertNoFailback('foxtrot', id);
    await assertFailoverRefused('foxtrot', /needs a recovery site, and runbook .* names none/);

    const domain = await call('GET', '/domains/foxtrot');
    assert.equal(domain.body.mode, 'Protected');
    assert.equal((domain.body.status as { runningAt: string }).runningAt, 'recovery');
    assert.equal((domain.body.owner as { site: string }).site, 'recovery');
    assert.equal((domain.body.permanentFailover as { retiredSite: string }).retiredSite, 'primary');
    const offered = domain.body.allowedOperations as string[];
    assert.ok(offered.includes('restore') && !['failover', 'continuous-failover', 'drill'].some((r) => offered.includes(r)), `with no recovery site nothing is offered there: ${offered.join(', ')}`);

    // Protection runs from the new primary: what the domain writes there reaches the log.
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'permanent-failover-foxtrot' });
    await sleep(3_000);
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    const written = journey.workloadRecord(recovery).filter((w) => domainVms('foxtrot').includes(w.vm));
    assert.ok(written.length > 0, 'the workload wrote at the new primary');
    const last = Math.max(...written.map((w) => w.sequence));
    const replicatedUpTo = async () => ((await call('GET', '/domains/foxtrot')).body.protection as { cursor: number } | null)?.cursor ?? 0;
    await waitFor("the new primary's writes replicated", async () => (await replicatedUpTo()) >= last, 60_000);
  });

  it('with the old primary as the new recovery site: its failback section becomes the recovery side, and a later failover to it rebuilds the domain there', async () => {
    await journey.operate('/domains/golf/failover', { type: 'planned' }, /^failover\/golf\//);
    const report = await journey.operate('/domains/golf/permanent-failover', { confirm: 'golf', newRecoverySite: 'primary' }, /^permanent-failover\/golf\//);
    await assertNewDirection('golf', report, await lastOperationId('golf'), 'primary');
    assert.equal(report.retirement?.state, 'removed', JSON.stringify(report.retirement));
    const diskIds = [...(await disksOf(recovery, 'golf')).keys()].sort();
    await journey.assertNothingOfDomainAt(primary, 'golf', diskIds);
    const spec = validateRunbook((await runbooks.latest('golf'))!.text).runbook!.spec;
    assert.deepEqual(spec.placement, { datacenter: 'dc-a', cluster: 'cluster-a1', resourcePool: 'prod', datastore: 'ds-a' });
    assert.deepEqual(spec.rocva?.networks, { externalReplication: 'a-replication', internal: 'a-management', management: 'a-management' });
    assert.deepEqual(spec.failback?.placement, { datacenter: 'dc-b', cluster: 'cluster-b1', resourcePool: 'dr-pool', datastore: 'ds-b' });

    // The domain writes at its new primary, then fails over by the new runbook to its new recovery site.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    const writingSince = Date.now();
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'permanent-failover-golf' });
    await sleep(3_000);
    assert.ok(journey.workloadRecord(recovery).some((w) => domainVms('golf').includes(w.vm) && w.at >= writingSince), 'the domain wrote at its new primary');
    const failover = await journey.operate('/domains/golf/failover', { type: 'planned' }, /^failover\/golf\//);
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    assert.equal(failover.runbook.version, 2);
    assert.equal(failover.rpoMs, 0);
    const atNewPrimary = await disksOf(recovery, 'golf');
    const rebuilt = await disksOf(primary, 'golf');
    assert.deepEqual([...rebuilt.keys()].sort(), diskIds);
    for (const [id, content] of atNewPrimary) assert.ok(rebuilt.get(id)!.equals(content), `${id} rebuilt at the new recovery site holds every write made at the new primary`);
    const vms = (await primary.client.listVms()).filter((vm) => domainVms('golf').includes(vm.name));
    assert.deepEqual(vms.map((vm) => `${vm.name}:${vm.powerState}:${vm.nics.map((n) => n.network).join()}`), domainVms('golf').map((vm) => `${vm}:poweredOn:prod-app`));
    const status = await readDomainStatus(store, 'golf');
    assert.equal(status?.mode, 'Running in Failover');
    assert.equal(status?.runningAt, 'primary');
  });

  it('the old primary down during the permanent failover: the removal waits for it, the operation ends, a failover to it waits for the removal, and once it returns running its copies they are removed and the conflict ends', async () => {
    await journey.forcedFailover('echo');
    const diskIds = [...(await disksOf(recovery, 'echo')).keys()].sort();
    const report = await journey.operate('/domains/echo/permanent-failover', { confirm: 'echo', newRecoverySite: 'primary' }, /^permanent-failover\/echo\//);
    const id = await lastOperationId('echo');
    assert.equal(report.retirement?.state, 'pending', JSON.stringify(report.retirement));
    assert.equal(report.retirement.workflowId, retireWorkflowId('echo', 'primary'));
    assert.equal((await call('GET', '/domains/echo/operations')).body.running, null, 'the domain\'s desk is free');
    await assertNewDirection('echo', report, id, 'primary');
    await assertNoFailback('echo', id);
    await assertFailoverRefused('echo', /echo is still being removed from primary by retire\/echo\/primary .* fail over to primary once it is done/);

    const retire = stack.client.workflow.getHandle<typeof retireSite>(retireWorkflowId('echo', 'primary'));
    assert.equal((await retire.describe()).status.name, 'RUNNING');
    await admin(primary, sites.token, '/admin/restore');
    const removed = await retire.result();
    assert.deepEqual(removed.vms.filter((vm) => vm.kind === 'vm').map((vm) => `${vm.name}:${vm.poweredOn ? 'running' : 'off'}`), domainVms('echo').sort().map((vm) => `${vm}:running`), 'the returned site ran its stale copies (a split-brain) until they were removed');
    await journey.assertNothingOfDomainAt(primary, 'echo', diskIds);
    // The copies ran when the site returned: whether or not the watch saw them, no conflict is open, and none comes back.
    await sleep(5_000);
    assert.equal(await readConflict(store, 'echo'), undefined);
    const domain = await call('GET', '/domains/echo');
    assert.equal(domain.body.conflict, null);
    assert.equal(domain.body.mode, 'Protected');
    assert.equal((domain.body.status as { runningAt: string }).runningAt, 'recovery');
  });
});
