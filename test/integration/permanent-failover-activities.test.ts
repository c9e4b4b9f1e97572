import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createPermanentFailoverActivities, type DomainHoldings } from '../../activities/permanent-failover';
import { representationVmName } from '../../common/resource-names';
import { failoverSiteDefinitions, domainVms, runbookYaml } from '../fixtures/failover-domains';
import { testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const MiB = 1024 * 1024;

/**
 * The permanent failover's activities against a real object store and a real site: runbook versions
 * that a retry does not duplicate, and a removal at the retired site that a kill half-way and a rerun
 * bring to the same end, reporting what the killed attempt removed.
 */
describe('permanent failover activities, on real S3 and a real site', () => {
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['golf']), sites: ['primary'] });
  const activities = () => createPermanentFailoverActivities({ store: bed.store, provider: bed.primary.client, runbooks: bed.runbooks });
  const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, args: A, heartbeatDetails?: unknown) =>
    new MockActivityEnvironment(heartbeatDetails === undefined ? {} : { heartbeatDetails }).run<A, R, typeof fn>(fn, ...args);

  it('a retried submission finds its version; the undo stores the version before it again, once; an undo of nothing stores nothing', async () => {
    const acts = activities();
    await bed.runbooks.put('golf', runbookYaml('golf', {}), 'dr-lead');
    const submit = { name: 'golf', text: `${runbookYaml('golf', {})}# the new direction\n`, submittedBy: 'permanent-failover/golf/t1' };
    assert.deepEqual(await run(acts.submitRunbookVersion, [submit]), { version: 2 });
    assert.deepEqual(await run(acts.submitRunbookVersion, [submit]), { version: 2 }, 'a retry adds no version');
    const revert = { name: 'golf', submittedBy: submit.submittedBy, revertedBy: `${submit.submittedBy}/undo` };
    assert.deepEqual(await run(acts.revertRunbookVersion, [revert]), { version: 3 });
    assert.deepEqual(await run(acts.revertRunbookVersion, [revert]), { version: 3 }, 'a retried undo adds no version');
    assert.equal((await bed.runbooks.get('golf', 3))?.text, (await bed.runbooks.get('golf', 1))?.text);
    assert.deepEqual(await run(acts.revertRunbookVersion, [{ name: 'golf', submittedBy: 'permanent-failover/golf/never', revertedBy: 'x' }]), {});
    assert.equal((await bed.runbooks.versions('golf')).length, 3);
  });

  it('removes the domain from the retired site, running VMs, a representation VM and a loose disk included; a rerun after a kill ends the same and reports the killed attempt\'s removals', async () => {
    const site = bed.primary.client;
    const acts = activities();
    const [vm] = domainVms('golf');
    const domainDisks = (await site.getVm(vm)).diskIds;
    await site.createDisk({ id: 'golf-loose-disk', datastore: 'ds-a', sizeBytes: MiB, protected: false });
    await site.createDisk({ id: 'golf-held-disk', datastore: 'ds-a', sizeBytes: MiB, protected: false });
    await site.registerVm({ name: representationVmName(vm), kind: 'representation', cpus: 1, memoryMiB: 512, placement: { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' }, nics: [], diskIds: ['golf-held-disk'], metadata: { representing: vm } });
    await site.powerOn(vm);
    const diskIds = [...domainDisks, 'golf-loose-disk'];

    await assert.rejects(run(acts.removeDomainHoldings, [{ domain: 'golf', vms: [vm], diskIds, newPrimary: 'primary' }]), (error: unknown) => error instanceof ApplicationFailure && error.type === 'SiteOwnsDomain');
    const found = await run(acts.domainHoldings, [{ domain: 'golf', vms: [vm], diskIds }]);
    assert.deepEqual(found.vms, [{ name: vm, kind: 'vm', poweredOn: true }, { name: representationVmName(vm), kind: 'representation', poweredOn: false }].sort((a, b) => a.name.localeCompare(b.name)));
    assert.deepEqual(found.diskIds, [...diskIds, 'golf-held-disk'].sort());

    // A first attempt removed the VM, heartbeated that, and was killed: the rerun removes the rest.
    await site.powerOff(vm);
    await site.unregisterVm(vm);
    const killed: DomainHoldings = { vms: [{ name: vm, kind: 'vm', poweredOn: true }], diskIds: [] };
    const removed = await run(acts.removeDomainHoldings, [{ domain: 'golf', vms: [vm], diskIds, newPrimary: 'recovery' }], killed);
    assert.deepEqual(removed.vms.map((v) => v.name).sort(), [vm, representationVmName(vm)].sort(), 'the report names what the killed attempt removed too');
    assert.deepEqual(removed.diskIds, [...diskIds, 'golf-held-disk'].sort());
    assert.deepEqual((await site.listVms()).filter((v) => v.name.includes(vm)), []);
    for (const id of removed.diskIds) await assert.rejects(site.getDisk(id), /does not exist/);
    assert.deepEqual(await run(acts.removeDomainHoldings, [{ domain: 'golf', vms: [vm], diskIds, newPrimary: 'recovery' }]), { vms: [], diskIds: [] }, 'a rerun once all is gone removes nothing and fails on nothing');
  });
});
