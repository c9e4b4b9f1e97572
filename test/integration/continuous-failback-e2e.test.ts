import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import { Ownership } from '../../datapath/ownership';
import type { SiteService } from '../../sites/launch';
import { expectedDiskContent } from '../../sites/workload';
import type { FollowingStatus, OperationReport } from '../../workflows/operation-messages';
import { apiCalls } from '../harness/api-calls';
import { domainJourney } from '../harness/domain-journey';
import { assertBackAtPrimary, disksAtSite, disksOfVms } from '../harness/failback';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const FOLLOWING = 'Continuous Failback in Progress';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const workload = (seed: string, vms: string[]) => ({ writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed, vms });

describe('continuous failback end to end, on real Temporal, S3, sites and worker processes: the original disks at the primary follow the recovery site, then fail back with only the tail', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const domains = ['foxtrot', 'golf', 'hotel', 'delta', 'bravo'];
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), domains), workers: ['orchestration', 'primary', 'recovery'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const calls = apiCalls(() => api.url, operator.token);
  const { call, operationResult } = calls;
  const journey = domainJourney(bed, calls);

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'continuous-failback-e2e' });
    await Promise.all(domains.map((domain) => protectAtPrimary(stack.client, domain)));
    await sleep(2_000);
    // Failback powers the original VMs on: the primary's workload must not change what is compared after.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    for (const domain of domains) await calls.submitRunbook(runbookYaml(domain, {}));
  });

  async function plannedFailover(domain: string, extra: Record<string, unknown> = {}): Promise<OperationReport> {
    await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    return journey.operate(`/domains/${domain}/failover`, { type: 'planned', ...extra }, new RegExp(`^failover/${domain}/`));
  }

  /** Starts the recovery site's workload on the domain's VMs only. */
  const writeAtRecovery = (domain: string) => admin(recovery, sites.token, '/admin/workload', workload(`continuous-failback-${domain}`, domainVms(domain)));
  const stopWritingAtRecovery = () => admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');

  /** Starts a continuous failback through the API: its workflow id. */
  async function startContinuousFailback(domain: string): Promise<string> {
    const started = await call('POST', `/domains/${domain}/continuous-failback`, {});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, new RegExp(`^continuous-failback/${domain}/`));
    return workflowId;
  }

  const shown = async (domain: string) => (await call('GET', `/domains/${domain}`)).body;
  const following = async (domain: string) => ((await shown(domain)).continuousFailback as { following: FollowingStatus }).following;
  const untilFollowing = (domain: string) => waitFor(`${domain} ${FOLLOWING}`, async () => (await shown(domain)).mode === FOLLOWING, 300_000);

  /** What a site holds: its VMs (name, kind, power state) and its disks. */
  async function heldAt(site: SiteService): Promise<{ vms: string[]; disks: string[] }> {
    return { vms: (await site.client.listVms()).map((vm) => `${vm.name}:${vm.kind}:${vm.powerState}`).sort(), disks: await disksAtSite(site) };
  }

  /** The domain's disks as the recovery site holds them after every recorded write (primary's up to the failover, then the recovery site's): what failback must bring back. */
  async function expectedAtHandover(domain: string): Promise<Map<string, Buffer>> {
    const records = [...journey.workloadRecord(primary), ...journey.workloadRecord(recovery)];
    const expected = new Map<string, Buffer>();
    for (const [id, bytes] of await disksOfVms(primary, domainVms(domain))) expected.set(id, expectedDiskContent(records, id, bytes.length, { sequence: Number.MAX_SAFE_INTEGER }));
    return expected;
  }

  async function assertOriginalsOffAtPrimary(domain: string): Promise<void> {
    const vms = (await primary.client.listVms()).filter((vm) => domainVms(domain).includes(vm.name));
    assert.deepEqual(vms.map((vm) => `${vm.name}:${vm.kind}:${vm.powerState}`).sort(), domainVms(domain).sort().map((vm) => `${vm}:vm:poweredOff`), 'the original VMs stay powered off while their disks follow');
  }

  it('planned failover, writes at the recovery site, continuous failback, then a planned failback that applies only the tail: the originals run on disks equal to the recovery site at handover', async (t) => {
    await plannedFailover('foxtrot');
    await writeAtRecovery('foxtrot');
    await sleep(2_000);
    const workflowId = await startContinuousFailback('foxtrot');
    await untilFollowing('foxtrot');
    const domain = await shown('foxtrot');
    const running = domain.continuousFailback as { workflowId: string; statusUrl: string; following: FollowingStatus };
    assert.equal(running.workflowId, workflowId);
    assert.equal(running.statusUrl, `/operations/${encodeURIComponent(workflowId)}`);
    assert.ok(running.following.lag.ms >= 0 && running.following.lag.bytes >= 0 && running.following.vms === 2, JSON.stringify(running.following));
    assert.deepEqual(domain.allowedOperations, ['failback', 'drill'], 'while following: the completion, and a drill beside it');
    assert.equal((await call('POST', '/domains/foxtrot/continuous-failback', {})).status, 409, 'a second continuous failback is refused');
    await assertOriginalsOffAtPrimary('foxtrot');
    assert.ok((await primary.client.listVms()).some((vm) => vm.kind === 'rocva' && vm.name.includes('foxtrot')), 'a RocVA at the primary applies the log');

    // More writes at the recovery site while the original disks follow them.
    const applied = (await following('foxtrot')).segmentsApplied;
    await waitFor('the original disks following more writes', async () => (await following('foxtrot')).segmentsApplied >= applied + 6, 60_000);
    // Long enough that what was followed outweighs what the completion can leave: the last follower run's stretch (its progress is not reported when the completion cancels it) and the writes until the shutdown.
    await sleep(12_000);
    await assertOriginalsOffAtPrimary('foxtrot');

    const before = await following('foxtrot');
    const requestedAt = Date.now();
    const completion = await call('POST', '/domains/foxtrot/failback', { type: 'planned' });
    assert.equal(completion.status, 202, JSON.stringify(completion.body));
    assert.equal(completion.body.completes, workflowId, 'the failback completes the running continuous failback');
    assert.equal((await call('POST', '/domains/foxtrot/failback', { type: 'planned' })).status, 409, 'one completion');
    const { status, result } = await operationResult(workflowId);
    await stopWritingAtRecovery();
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.equal(report.rpoMs, 0);
    assert.ok(report.rtoMs !== undefined && report.rtoMs >= 0);

    // Only the tail: no rehydration at completion, no base read, far fewer bytes than the follower wrote.
    const tail = report.tail!;
    t.diagnostic(`following before completion: ${JSON.stringify(before)}; tail: ${JSON.stringify(tail)}; steps: ${JSON.stringify(report.steps.map((s) => `${s.name}${s.stage ? ' [completion]' : ''}: ${s.durationMs} ms`))}`);
    const domainDisks = new Set((await disksOfVms(primary, domainVms('foxtrot'))).keys());
    const after = journey.workloadRecord(recovery).filter((w) => domainDisks.has(w.diskId) && w.sequence > (before.appliedUpTo?.lastSequence ?? 0));
    const writtenAfter = after.reduce((sum, w) => sum + w.length, 0);
    const writtenSinceRequest = after.filter((w) => w.at >= requestedAt).reduce((sum, w) => sum + w.length, 0);
    const completionSteps = report.steps.filter((s) => s.stage !== undefined);
    assert.ok(completionSteps.some((s) => s.name === 'apply the rest of the log') && completionSteps.every((s) => s.state === 'done'), JSON.stringify(completionSteps.map((s) => s.name)));
    assert.ok(!report.steps.some((s) => /rehydrate/.test(s.name)), 'nothing rehydrated: the original disks were followed');
    assert.equal(tail.bytesRead.base, 0, 'the completion read no base');
    assert.ok(tail.bytesWritten <= writtenAfter, `the tail (${tail.bytesWritten} bytes) is at most what the recovery site wrote after the position applied before completion (${writtenAfter} bytes; ${writtenSinceRequest} since the request)`);
    assert.ok(tail.bytesWritten * 2 < before.bytesWritten, `the tail (${tail.bytesWritten} bytes) is a fraction of what the follower had written (${before.bytesWritten} bytes)`);
    assert.ok(report.following!.bytesWritten >= before.bytesWritten + tail.bytesWritten, 'the report counts the tail with what was followed');

    await assertBackAtPrimary({ primary, recovery, store }, 'foxtrot', domainVms('foxtrot'), await expectedAtHandover('foxtrot'));
    assert.ok(!(await primary.client.listVms()).some((vm) => vm.kind !== 'vm' && vm.name.includes('foxtrot')), 'no RocVA or representation VM left at the primary');
    assert.equal((await new Ownership(store, 'foxtrot').inspect()).owner?.site, 'primary');
    assert.equal((await shown('foxtrot')).mode, 'Protected');
  });

  it('cancelling leaves the domain Running in Failover and the primary as it was, and a plain planned failback afterwards verifies', async () => {
    await plannedFailover('golf');
    await writeAtRecovery('golf');
    await sleep(2_000);
    const atPrimaryBefore = await heldAt(primary);
    const workflowId = await startContinuousFailback('golf');
    await untilFollowing('golf');
    assert.ok((await primary.client.listVms()).some((vm) => vm.kind === 'rocva' && vm.name.includes('golf')));
    assert.equal((await call('POST', `/operations/${encodeURIComponent(workflowId)}/cancel`)).status, 202);
    assert.equal((await operationResult(workflowId)).status, 'CANCELLED');
    const status = await readDomainStatus(store, 'golf');
    assert.equal(status?.mode, 'Running in Failover');
    assert.equal(status?.runningAt, 'recovery');
    assert.deepEqual(await heldAt(primary), atPrimaryBefore, 'the primary holds exactly what it held before: the original VMs (powered off) and disks, no RocVA, no representation VM');
    assert.equal((await new Ownership(store, 'golf').inspect()).owner?.site, 'recovery');
    await waitFor('the desk is free', async () => (await call('GET', '/domains/golf/operations')).body.running === null, 10_000);

    await stopWritingAtRecovery();
    await journey.failBack('golf', { type: 'planned' });
    await assertBackAtPrimary({ primary, recovery, store }, 'golf', domainVms('golf'), await expectedAtHandover('golf'));
  });

  it('a planned failover that asks for a continuous failback: its desk starts one by itself, and a failback completes it', async () => {
    const asked = await call('POST', '/domains/hotel/failover', { type: 'forced', confirm: 'hotel', continuousFailback: true });
    assert.equal(asked.status, 400, 'a forced failover cannot ask for one: the primary is lost');
    const failover = await plannedFailover('hotel', { continuousFailback: true });
    assert.equal(failover.followedBy?.operation, 'continuous-failback');
    let workflowId = '';
    await waitFor('the desk runs the continuous failback', async () => {
      const running = (await call('GET', '/domains/hotel/operations')).body.running as { workflowId: string; operation: string } | null;
      workflowId = running?.operation === 'continuous-failback' ? running.workflowId : '';
      return workflowId !== '';
    }, 30_000);
    assert.match(workflowId, /^continuous-failback\/hotel\//);
    await writeAtRecovery('hotel');
    await untilFollowing('hotel');
    assert.equal(((await shown('hotel')).continuousFailback as { workflowId: string }).workflowId, workflowId);
    await sleep(3_000);
    const completion = await call('POST', '/domains/hotel/failback', { type: 'planned' });
    assert.equal(completion.status, 202, JSON.stringify(completion.body));
    const { status, result } = await operationResult(workflowId);
    await stopWritingAtRecovery();
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    assert.equal((result as OperationReport).outcome, 'succeeded');
    assert.equal((result as OperationReport).rpoMs, 0);
    await assertBackAtPrimary({ primary, recovery, store }, 'hotel', domainVms('hotel'), await expectedAtHandover('hotel'));
  });

  it('a VM deleted at the primary meanwhile: rebuilt there behind a representation VM while the other original disk follows from the base; a cancel removes only what was created, and a completion brings both back', async () => {
    await plannedFailover('delta');
    await writeAtRecovery('delta');
    // The app VM is gone from the primary while the domain runs in failover: its disk too.
    await primary.client.unregisterVm('d-app-1', { deleteDisks: true });
    const atPrimaryBefore = await heldAt(primary);
    assert.ok(!atPrimaryBefore.disks.includes('d-app-1-disk-0'));

    const cancelled = await startContinuousFailback('delta');
    await untilFollowing('delta');
    const vms = await primary.client.listVms();
    assert.deepEqual(vms.filter((vm) => vm.name.includes('d-app-1')).map((vm) => vm.kind), ['representation'], 'the missing VM is rebuilt behind a representation VM');
    assert.equal(vms.find((vm) => vm.name === 'd-db-1')?.powerState, 'poweredOff');
    assert.ok((await following('delta')).bytesRead.base > 0, 'a delta does not apply to new disks: the domain follows from the base');
    assert.equal((await call('POST', `/operations/${encodeURIComponent(cancelled)}/cancel`)).status, 202);
    assert.equal((await operationResult(cancelled)).status, 'CANCELLED');
    assert.deepEqual(await heldAt(primary), atPrimaryBefore, 'the representation VM and the new disk are gone; the original VM and disk stay');
    assert.equal((await readDomainStatus(store, 'delta'))?.mode, 'Running in Failover');
    await waitFor('the desk is free', async () => (await call('GET', '/domains/delta/operations')).body.running === null, 10_000);

    const workflowId = await startContinuousFailback('delta');
    await untilFollowing('delta');
    await sleep(2_000);
    assert.equal((await call('POST', '/domains/delta/failback', { type: 'planned' })).status, 202);
    const { status, result } = await operationResult(workflowId);
    await stopWritingAtRecovery();
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.equal(report.tail?.bytesRead.base, 0, 'the completion read no base');
    await assertBackAtPrimary({ primary, recovery, store }, 'delta', domainVms('delta'), await expectedAtHandover('delta'));
    assert.ok(!(await primary.client.listVms()).some((vm) => vm.kind !== 'vm' && vm.name.includes('d-')), 'no RocVA or representation VM left at the primary');
  });

  it('forced completion with the recovery site lost: the primary claims the domain and its originals run with every write that reached the store', async () => {
    const failover = await plannedFailover('bravo');
    await writeAtRecovery('bravo');
    const workflowId = await startContinuousFailback('bravo');
    await untilFollowing('bravo');
    await sleep(3_000);
    const unconfirmed = await call('POST', '/domains/bravo/failback', { type: 'forced' });
    assert.equal(unconfirmed.status, 400, JSON.stringify(unconfirmed.body));
    assert.equal((await call('POST', '/domains/bravo/failback', { type: 'forced', confirm: 'brav0' })).status, 400);

    // The recovery site is lost: its VMs keep writing, and none of those writes reaches the store any more.
    await admin(recovery, sites.token, '/admin/outage');
    await sleep(1_500);
    const completion = await call('POST', '/domains/bravo/failback', { type: 'forced', confirm: 'bravo' });
    assert.equal(completion.status, 202, JSON.stringify(completion.body));
    assert.equal(completion.body.completes, workflowId);
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.equal(report.type, 'forced');
    assert.equal(report.epoch, failover.epoch! + 1, 'the primary claimed the next epoch');
    assert.equal((await new Ownership(store, 'bravo').inspect()).owner?.site, 'primary');
    assert.equal(report.tail?.bytesRead.base, 0);
    assert.ok(!report.steps.some((s) => s.name.startsWith('remove bravo from recovery')), 'the lost recovery site is not contacted');

    // The originals hold the recovery site's writes up to the last one that reached the store, and run.
    const lastInStore = report.recoveryPoint!.lastJournalSequence!;
    const atRecovery = journey.workloadRecord(recovery).filter((w) => domainVms('bravo').includes(w.vm));
    assert.ok(atRecovery.some((w) => w.sequence > lastInStore), 'the recovery site wrote after its last write that reached the store');
    const lastReached = atRecovery.filter((w) => w.sequence <= lastInStore).at(-1)!;
    assert.equal(report.recoveryPoint!.dataFrom, lastReached.at, 'the recovery point is the last write that reached the store');
    assert.ok((report.rpoMs ?? 0) > 0, `RPO ${report.rpoMs} ms`);
    const records = [...journey.workloadRecord(primary), ...journey.workloadRecord(recovery).filter((w) => w.sequence <= lastInStore)];
    const expected = new Map<string, Buffer>();
    for (const [id, bytes] of await disksOfVms(primary, domainVms('bravo'))) expected.set(id, expectedDiskContent(records, id, bytes.length, { sequence: Number.MAX_SAFE_INTEGER }));
    await journey.assertOriginalsRun('bravo', expected);
    assert.ok(!(await primary.client.listVms()).some((vm) => vm.kind !== 'vm' && vm.name.includes('bravo')), 'no RocVA or representation VM left at the primary');
    await stopWritingAtRecovery().catch(() => undefined);
  });
});
