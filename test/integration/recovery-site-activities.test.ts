import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createPrimarySiteActivities, createRecoverySiteActivities } from '../../activities/recovery-site';
import { createVmPowerActivities } from '../../activities/vm-power';
import { representationVmName } from '../../common/resource-names';
import type { SiteProvider } from '../../sites/provider';
import { admin, useTestSites } from '../harness/sites';

const MiB = 1024 * 1024;
const placement = { datacenter: 'dc-b', cluster: 'cluster-b1', resourcePool: 'dr-pool', datastore: 'ds-b' };

/** The provider with each call's method name recorded, in order. */
function countingCalls(provider: SiteProvider): { calls: string[]; counted: SiteProvider } {
  const calls: string[] = [];
  const counted = new Proxy(provider, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (...args: unknown[]) => (calls.push(String(property)), (value as (...a: unknown[]) => unknown).apply(target, args)) : value;
    },
  });
  return { calls, counted };
}

describe('recovery- and primary-site activities against real site processes', () => {
  const environment = new MockActivityEnvironment();
  // The mock's run() cannot infer results; this keeps each activity's own types.
  const env = { run: <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) => environment.run<A, R, typeof fn>(fn, ...args) };
  const { sites, recovery, primary } = useTestSites();

  it('runs every recovery step twice without duplicating anything, then compensates completely', async () => {
    const acts = createRecoverySiteActivities({ provider: recovery.client });
    const rocva = { name: 'rocva-demo-1a2b3c4d', placement, networks: { externalReplication: 'dr-replication', internal: 'dr-rocva-internal', management: 'dr-management' } };
    for (let attempt = 0; attempt < 2; attempt++) {
      await env.run(acts.deployRocva, rocva);
      const { diskIds } = await env.run(acts.prepareTargetDisks, { vm: 'db-1', placement, disks: [{ diskId: 'db-1-disk-0', sizeBytes: 2 * MiB }, { diskId: 'db-1-disk-1', sizeBytes: MiB }] });
      assert.deepEqual(diskIds, ['db-1-disk-0', 'db-1-disk-1']);
    }
    let vms = await recovery.client.listVms();
    assert.deepEqual(vms.map((v) => `${v.kind}:${v.name}`).sort(), ['representation:repr-db-1', 'rocva:rocva-demo-1a2b3c4d']);

    const spec = { name: 'db-1', kind: 'vm' as const, cpus: 8, memoryMiB: 16384, placement, nics: [{ network: 'dr-db', ip: { address: '10.20.1.10', prefix: 24, dns: [] } }], diskIds: ['db-1-disk-0', 'db-1-disk-1'] };
    for (let attempt = 0; attempt < 2; attempt++) {
      await env.run(acts.removeRepresentationVm, { vm: 'db-1' });
      await env.run(acts.registerRecoveredVm, { spec });
    }
    await env.run(acts.registerRecoveredVm, { spec: { ...spec, cpus: 12 } });
    const db = await recovery.client.getVm('db-1');
    assert.equal(db.cpus, 12, 'a re-run with a changed spec reconfigures instead of duplicating');
    assert.deepEqual(db.diskIds, ['db-1-disk-0', 'db-1-disk-1']);
    vms = await recovery.client.listVms();
    assert.equal(vms.filter((v) => v.name === 'db-1').length, 1);

    await recovery.client.powerOn('db-1');
    for (let attempt = 0; attempt < 2; attempt++) {
      await env.run(acts.removeRecoveredVm, { vm: 'db-1' });
      await env.run(acts.destroyRocva, { name: rocva.name });
    }
    assert.deepEqual(await recovery.client.listVms(), []);
    await assert.rejects(recovery.client.getDisk('db-1-disk-0'), /does not exist/);
    await assert.rejects(recovery.client.getVm(representationVmName('db-1')), /does not exist/);
  });

  it('makes one site call per disk and one per VM to prepare and register, attaches a disk added since, refuses a name the site holds as another kind, and reconfigures only what differs', async () => {
    const { calls, counted } = countingCalls(recovery.client);
    const acts = createRecoverySiteActivities({ provider: counted });
    await env.run(acts.prepareTargetDisks, { vm: 'web-1', placement, disks: [{ diskId: 'web-1-disk-0', sizeBytes: MiB }] });
    assert.deepEqual(calls.splice(0), ['createDisk', 'registerVm']);
    const disks = [{ diskId: 'web-1-disk-0', sizeBytes: MiB }, { diskId: 'web-1-disk-1', sizeBytes: MiB }];
    await env.run(acts.prepareTargetDisks, { vm: 'web-1', placement, disks });
    assert.deepEqual(calls.splice(0), ['createDisk', 'createDisk', 'registerVm', 'reconfigureVm']);
    assert.deepEqual((await recovery.client.getVm(representationVmName('web-1'))).diskIds, ['web-1-disk-0', 'web-1-disk-1']);

    const spec = { name: 'web-1', kind: 'vm' as const, cpus: 2, memoryMiB: 4096, placement, nics: [], diskIds: ['web-1-disk-0', 'web-1-disk-1'] };
    await assert.rejects(env.run(acts.registerRecoveredVm, { spec: { ...spec, name: representationVmName('web-1') } }), (e: unknown) => {
      assert.equal((e as { type?: string }).type, 'NameConflict');
      assert.match((e as Error).message, /already exists at site .* as a representation/);
      return true;
    });
    calls.length = 0;
    await env.run(acts.removeRepresentationVm, { vm: 'web-1' });
    await env.run(acts.registerRecoveredVm, { spec });
    assert.deepEqual(calls, ['unregisterVm', 'registerVm']);
    assert.equal((await recovery.client.getVm('web-1')).kind, 'vm');

    // A re-IP as the runbook gives it (its fields in another order than the site answers them) is no drift.
    const reIp = { ...spec, name: 'web-2', diskIds: [], nics: [{ network: 'dr-db', ip: { address: '10.20.2.10', prefix: 24, dns: ['10.20.0.2'], gateway: '10.20.2.1' } }] };
    calls.length = 0;
    await env.run(acts.registerRecoveredVm, { spec: reIp });
    await env.run(acts.registerRecoveredVm, { spec: reIp });
    assert.deepEqual(calls, ['registerVm', 'registerVm']);
    const moved = { ...reIp, nics: [{ network: 'dr-db', ip: { ...reIp.nics[0].ip, gateway: '10.20.2.254' } }] };
    calls.length = 0;
    await env.run(acts.registerRecoveredVm, { spec: moved });
    assert.deepEqual(calls, ['registerVm', 'reconfigureVm']);
    assert.equal((await recovery.client.getVm('web-2')).nics[0]?.ip?.gateway, '10.20.2.254');
  });

  it('powers a VM on in one site call, once, and never one deactivated after a split-brain', async () => {
    const { calls, counted } = countingCalls(recovery.client);
    const power = createVmPowerActivities({ provider: counted });
    const powerOnVm = (input: { vm: string }) => power.powerOnVm(input);
    const vm = { cpus: 1, memoryMiB: 512, placement, nics: [], diskIds: [] };
    await recovery.client.registerVm({ name: 'app-7', ...vm });
    await recovery.client.registerVm({ name: 'app-8', ...vm, metadata: { drState: 'inactive', drInactiveBy: 'resolve-conflict-demo-1' } });

    assert.deepEqual(await env.run(powerOnVm, { vm: 'app-7' }), { alreadyOn: false });
    assert.deepEqual(calls.splice(0), ['powerOn']);
    assert.deepEqual(await env.run(powerOnVm, { vm: 'app-7' }), { alreadyOn: true }, 'a retry finds it on');

    await assert.rejects(env.run(powerOnVm, { vm: 'app-8' }), (e: unknown) => {
      assert.equal((e as { type?: string }).type, 'VmInactive');
      assert.equal((e as { nonRetryable?: boolean }).nonRetryable, true);
      assert.match((e as Error).message, /app-8 at site .* deactivated after a split-brain \(resolve-conflict-demo-1\)/);
      return true;
    });
    assert.equal((await recovery.client.getVm('app-8')).powerState, 'poweredOff');
  });

  it('refuses placement the site does not have as a non-retryable failure', async () => {
    const acts = createRecoverySiteActivities({ provider: recovery.client });
    await assert.rejects(env.run(acts.prepareTargetDisks, { vm: 'x-1', placement: { ...placement, datastore: 'nope' }, disks: [{ diskId: 'x-1-disk-0', sizeBytes: MiB }] }), (e: unknown) => {
      assert.equal((e as { type?: string }).type, 'UnknownPlacement');
      assert.equal((e as { nonRetryable?: boolean }).nonRetryable, true);
      return true;
    });
  });

  it('shuts a primary VM down gracefully, or powers it off when the guest hangs, as the runbook chooses', async () => {
    const acts = createPrimarySiteActivities({ provider: primary.client });
    assert.deepEqual(await env.run(acts.shutdownForHandover, { vm: 'app-1', timeoutMs: 5_000, onTimeout: 'abort' as const }), { outcome: 'shutDown' });
    await admin(primary, sites.token, '/admin/faults', { hangGuestShutdown: true });
    await assert.rejects(env.run(acts.shutdownForHandover, { vm: 'db-1', timeoutMs: 300, onTimeout: 'abort' as const }), (e: unknown) => (e as { type?: string }).type === 'GuestShutdownTimeout');
    assert.equal((await primary.client.getVm('db-1')).powerState, 'poweredOn');
    assert.deepEqual(await env.run(acts.shutdownForHandover, { vm: 'db-1', timeoutMs: 300, onTimeout: 'powerOff' as const }), { outcome: 'poweredOff' });
    assert.equal((await primary.client.getVm('db-1')).powerState, 'poweredOff');
  });
});
