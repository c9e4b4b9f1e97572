import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readSideCopy } from '../../datapath/side-copy';
import { trailingNumber } from '../../datapath/keys';
import { Ownership } from '../../datapath/ownership';
import { blockContent } from '../../sites/workload';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { domainJourney } from '../harness/domain-journey';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const workload = (seed: string) => ({ writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed });

describe('forced failback with the recovery site down, on real Temporal, S3, sites and worker processes: the primary takes the domain back, and the recovery site that returns gives up its stale copies', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['bravo']), workers: ['orchestration', 'primary', 'recovery'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const calls = apiCalls(() => api.url, operator.token);
  const { call } = calls;
  const journey = domainJourney(bed, calls);
  const vms = domainVms('bravo').sort();

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', workload('forced-failback-primary'));
    await protectAtPrimary(stack.client, 'bravo');
    await calls.submitRunbook(runbookYaml('bravo', {}));
  });

  it('forced failover, the primary returns and is resolved, the domain runs and writes at the recovery site, which goes down: a forced failback brings the originals back with every write that reached the store', async () => {
    const failover = await journey.forcedFailover('bravo');
    await journey.siteReturns(primary, 'bravo', 'recovery');
    await journey.resolveConflict('bravo');
    // The original VMs are off and inactive now; once failback powers them on, the primary's workload must not change what is compared.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');

    await admin(recovery, sites.token, '/admin/workload', workload('forced-failback-recovery'));
    await sleep(3_000);
    // The recovery site is lost: its VMs keep writing, and none of those writes reaches the store any more.
    await admin(recovery, sites.token, '/admin/outage');
    await sleep(1_500);

    const unconfirmed = await call('POST', '/domains/bravo/failback', { type: 'forced' });
    assert.equal(unconfirmed.status, 400, JSON.stringify(unconfirmed.body));
    assert.match(String(unconfirmed.body.detail), /a forced failback fences the recovery site of bravo .*"confirm": "bravo"/);
    assert.equal((await call('POST', '/domains/bravo/failback', { type: 'forced', confirm: 'brav0' })).status, 400);

    const failback = await journey.failBack('bravo', { type: 'forced', confirm: 'bravo' });
    assert.equal(failback.type, 'forced');
    assert.equal(failback.epoch, failover.epoch! + 1, 'the primary claimed the next epoch');
    const { owner, epoch } = await new Ownership(store, 'bravo').inspect();
    assert.deepEqual({ site: owner?.site, epoch }, { site: 'primary', epoch: failback.epoch });
    const fenced = await stack.client.workflow.getHandle(protectionWorkflowId('bravo', 'recovery', failover.epoch!)).describe();
    assert.equal(fenced.status.name, 'CANCELLED', "the fenced recovery site's protection was ended");
    assert.ok(!failback.steps.some((s) => s.name.startsWith('remove bravo from recovery')), 'the lost recovery site is not contacted');

    // RPO: the recovery site's writes after the last one that reached the store are lost, and the report says how long ago that was.
    const lastInStore = failback.recoveryPoint!.lastJournalSequence!;
    const atRecovery = journey.workloadRecord(recovery).filter((w) => vms.includes(w.vm));
    const lost = atRecovery.filter((w) => w.sequence > lastInStore);
    assert.ok(lost.length > 0 && lost[0].at <= failback.declaredAt, 'the recovery site wrote after its last write that reached the store');
    const lastReached = atRecovery.filter((w) => w.sequence <= lastInStore).at(-1)!;
    assert.equal(failback.recoveryPoint!.dataFrom, lastReached.at, 'the recovery point is the last write that reached the store');
    assert.equal(failback.rpoMs, failback.declaredAt - lastReached.at);
    assert.ok((failback.rpoMs ?? 0) >= 1_000, `RPO ${failback.rpoMs} ms covers the outage`);
    assert.ok(failback.rtoMs! > 0);
    assert.ok(failback.rehydration && failback.rehydration.bytesWritten > 0, JSON.stringify(failback.rehydration));

    const expected = await journey.expectedAfterFailback('bravo', failover, failback);
    await journey.assertOriginalsRun('bravo', expected);
    const domain = await call('GET', '/domains/bravo');
    assert.equal(domain.body.mode, 'Protected');
    assert.equal(domain.body.conflict, null);
    assert.equal((domain.body.owner as { site: string }).site, 'primary');
    assert.deepEqual((({ site, epoch }) => ({ site, epoch }))(domain.body.protection as { site: string; epoch: number }), { site: 'primary', epoch: failback.epoch }, 'protection resumed at the primary in its new epoch');

    // The recovery site returns with its stale copies running: a split-brain at the recovery site, shown within seconds.
    const recoveryDisks = [...expected.keys()];
    const { conflict, restoredAt } = await journey.siteReturns(recovery, 'bravo', 'primary');
    assert.equal(conflict.owner.epoch, failback.epoch);
    // A failover now would rebuild the domain under the stale copies that still run there.
    const refused = await call('POST', '/domains/bravo/failover', { type: 'planned' });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(String(refused.body.detail), /split-brain conflict open: site recovery runs b-app-1, b-db-1 since .* while primary owns the domain; resolve it first/);
    await sleep(1_000);

    const resolution = await journey.resolveConflict('bravo');
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    // The stale copies were made by the failover, and the failback that fenced the site could not remove them: the resolution does.
    assert.ok(resolution.steps.some((s) => s.name === 'remove the stale copies from recovery'), JSON.stringify(resolution.steps.map((s) => s.name)));
    assert.deepEqual(resolution.vms.map((v) => `${v.name}:${v.state}`).sort(), vms.map((v) => `${v}:removed`));
    await journey.assertNothingOfDomainAt(recovery, 'bravo', recoveryDisks);

    // Its writes after the fence are kept apart, and never entered the chain.
    const sideCopy = resolution.sideCopy!;
    assert.equal(sideCopy.fencedEpoch, failover.epoch);
    assert.equal(sideCopy.afterSequence, lastInStore, 'the side copy starts where the chain was sealed');
    assert.equal(sideCopy.journalGap, false);
    const copy = await readSideCopy(store, 'bravo', sideCopy.name);
    assert.ok(copy, `side copy ${sideCopy.name} is readable`);
    const diverged = journey.workloadRecord(recovery).filter((w) => vms.includes(w.vm) && w.sequence > lastInStore);
    assert.ok(diverged.some((w) => w.at > restoredAt), 'the recovery site wrote after it returned');
    assert.deepEqual(copy.writes.map((w) => w.sequence), diverged.map((w) => w.sequence), 'the side copy holds every write of the recovery site after the fence');
    for (const [i, w] of diverged.entries()) assert.ok(copy.writes[i].data.equals(blockContent(w.seed, w.n, w.length)), `write ${w.sequence} kept byte for byte`);
    await journey.assertChainEndsAtFence('bravo', failover.epoch!, lastInStore);
    // Nor did the returning site put any segment into its fenced epoch's log after the seal: its protection had been ended.
    const ownership = new Ownership(store, 'bravo');
    const { lastSegment } = await ownership.handoff(failback.epoch);
    const { keys } = await store.list(ownership.keys.logPrefix(failover.epoch!));
    assert.ok(lastSegment !== null && keys.length > 0 && keys.every((key) => trailingNumber(key) <= lastSegment), `segments of epoch ${failover.epoch} end at the seal (${lastSegment})`);

    // The primary runs the domain unchanged; two more passes of the recovery site's watch find nothing.
    await journey.assertOriginalsRun('bravo', expected);
    await sleep(5_000);
    assert.equal(await journey.shownConflict('bravo'), null);
  });
});
