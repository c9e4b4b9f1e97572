import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readConflict } from '../../datapath/conflict';
import { readSideCopy } from '../../datapath/side-copy';
import { blockContent } from '../../sites/workload';
import type { OperationReport } from '../../workflows/operation-messages';
import { conflictWatchWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { domainJourney } from '../harness/domain-journey';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('split-brain after a forced failover, on real Temporal, S3, sites and worker processes: detected, shown, refused for, resolved, failed back', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['echo']), workers: ['orchestration', 'primary', 'recovery'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const calls = apiCalls(() => api.url, operator.token);
  const { call } = calls;
  const journey = domainJourney(bed, calls);
  const vms = domainVms('echo').sort();
  /** Left by the first test for the second: the forced failover's report and the resolution's. */
  let failover: OperationReport | undefined;
  let resolution: OperationReport | undefined;

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'split-brain-e2e' });
    await protectAtPrimary(stack.client, 'echo');
    await calls.submitRunbook(runbookYaml('echo', {}));
  });

  it('the old primary returns running its VMs: the conflict shows within seconds, refuses continuous failover and failback, and resolving it deactivates the stale copies and keeps their writes apart from the chain', async () => {
    failover = await journey.forcedFailover('echo');
    assert.equal((await call('GET', '/domains/echo')).body.conflict, null, 'the lost primary cannot be looked at: no conflict yet');
    // The recovery site runs echo's VMs and owns it: its own VMs are no conflict.
    await sleep(3_000);
    assert.equal(await readConflict(store, 'echo'), undefined);

    const { restoredAt } = await journey.siteReturns(primary, 'echo', 'recovery');
    const domain = await call('GET', '/domains/echo');
    assert.deepEqual(domain.body.allowedOperations, ['power-on', 'permanent-failover', 'drill', 'resolve-conflict']);

    // The Web UI: the site's watch names the conflict in its search attribute.
    const watch = await stack.client.workflow.getHandle(conflictWatchWorkflowId('primary')).describe();
    assert.deepEqual(watch.typedSearchAttributes.getAll().find((pair) => pair.key.name === 'DrConflict')?.value, ['echo']);

    const refused = await call('POST', '/domains/echo/continuous-failover', {});
    assert.equal(refused.status, 409);
    assert.match(String(refused.body.detail), /continuous-failover is refused while echo is Running in Failover with a split-brain conflict open: site primary runs e-app-1, e-db-1 since .* while recovery owns the domain/);
    assert.equal((refused.body.conflict as { site: string }).site, 'primary');
    const failbackRefused = await call('POST', '/domains/echo/failback', { type: 'planned' });
    assert.equal(failbackRefused.status, 409, JSON.stringify(failbackRefused.body));
    assert.match(String(failbackRefused.body.detail), /failback is refused while echo is Running in Failover with a split-brain conflict open: site primary runs e-app-1, e-db-1 .*; resolve it first with POST \/domains\/echo\/resolve-conflict/);

    // The stale copies keep writing at the primary: those writes must end in the side copy, not in the chain.
    await sleep(2_000);
    assert.equal((await call('POST', '/domains/echo/resolve-conflict', { action: 'reactivate' })).status, 400);
    resolution = await journey.resolveConflict('echo');
    assert.ok(!resolution.steps.some((s) => s.name.startsWith('remove the stale copies')), 'the original VMs at the primary are never removed');

    for (const name of vms) {
      const vm = await primary.client.getVm(name);
      assert.equal(vm.powerState, 'poweredOff', `${name} at the primary is off`);
      assert.equal(vm.metadata.drState, 'inactive', `${name} at the primary is inactive`);
    }

    const sideCopy = resolution.sideCopy!;
    assert.equal(sideCopy.journalGap, false);
    const copy = await readSideCopy(store, 'echo', sideCopy.name);
    assert.ok(copy, `side copy ${sideCopy.name} is readable`);
    const diverged = journey.workloadRecord(primary).filter((w) => vms.includes(w.vm) && w.sequence > sideCopy.afterSequence && w.sequence <= sideCopy.lastSequence);
    assert.ok(diverged.some((w) => w.at > restoredAt), 'the primary wrote after it returned');
    assert.deepEqual(copy.writes.map((w) => w.sequence), diverged.map((w) => w.sequence), 'the side copy holds every write after the fence');
    for (const [i, w] of diverged.entries()) assert.ok(copy.writes[i].data.equals(blockContent(w.seed, w.n, w.length)), `write ${w.sequence} kept byte for byte`);
    await journey.assertChainEndsAtFence('echo', sideCopy.fencedEpoch, sideCopy.afterSequence);

    // Two more passes of the watch: the deactivated copies are not flagged again.
    await sleep(5_000);
    assert.equal((await call('GET', '/domains/echo')).body.conflict, null);
    const again = await call('POST', '/domains/echo/resolve-conflict', { action: 'deactivate' });
    assert.equal(again.status, 409);
    assert.match(String(again.body.detail), /has no split-brain conflict open/);
  });

  it('once resolved, a planned failback returns the domain to its original VMs with the recovery site\'s writes, none of the stale ones', async () => {
    assert.ok(failover && resolution, 'the split-brain was resolved by the test before');
    // Once failback powers the originals on, the primary's workload must not change what is compared.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    // The applications run at the recovery site, and keep writing until the failback shuts them down.
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'split-brain-e2e-recovery' });
    await sleep(3_000);

    const failback = await journey.failBack('echo', { type: 'planned' });
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    assert.equal(failback.rpoMs, 0);
    const atRecovery = journey.workloadRecord(recovery).filter((w) => vms.includes(w.vm));
    assert.ok(atRecovery.length > 0 && atRecovery.every((w) => w.sequence <= failback.recoveryPoint!.lastJournalSequence!), 'every write at the recovery site went back');
    // The stale copies wrote over the original disks: they no longer hold where the domain left them.
    assert.equal(failback.rehydration?.kind, 'full', JSON.stringify(failback.rehydration));
    assert.ok(failback.steps.some((s) => s.name === 'reactivate the original VMs at primary'), JSON.stringify(failback.steps.map((s) => s.name)));

    const expected = await journey.expectedAfterFailback('echo', failover, failback);
    await journey.assertOriginalsRun('echo', expected);
    await journey.assertNothingOfDomainAt(recovery, 'echo', [...expected.keys()]);

    // The stale copies' writes stay readable in the side copy, and none of them is on the domain's disks.
    const copy = (await readSideCopy(store, 'echo', resolution.sideCopy!.name))!;
    assert.ok(copy.writes.length > 0);
    const disks = await journey.disksOf(primary, 'echo');
    for (const w of copy.writes) assert.ok(!disks.get(w.diskId)!.subarray(w.offset, w.offset + w.data.length).equals(w.data), `stale write ${w.sequence} is not on ${w.diskId}`);
    assert.equal((await call('GET', '/domains/echo')).body.conflict, null);
  });
});
