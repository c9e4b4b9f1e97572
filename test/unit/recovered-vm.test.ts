import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRunbook } from '../../runbooks/validate';
import type { Vm } from '../../sites/provider';
import { rebuiltVm, recoveredVm, restoredVm, rocvaNetworksAtPrimary } from '../../workflows/recovered-vm';

const runbook = validateRunbook(`apiVersion: dr.example.io/v1alpha1
kind: Runbook
metadata: { name: demo-recovery }
spec:
  protectedDomain: demo
  sites: { primary: primary, recovery: recovery }
  placement: { datacenter: dc-b, cluster: cluster-b1, resourcePool: dr-pool, datastore: ds-b }
  networkMapping:
    - { source: prod-db, target: dr-db }
    - { source: prod-app, target: dr-app }
  vms:
    - name: db-1
      cpus: 16
      storagePolicy: gold
      reIp: { address: 10.20.1.10, prefix: 24, gateway: 10.20.1.1, dns: [10.20.0.53] }
    - { name: app-1, datastore: ds-b-flash }
    - { name: report-1, startupAction: poweredOff }
  rocva: { networks: { externalReplication: dr-replication, internal: dr-rocva-internal, management: dr-management } }
  powerOn:
    groups:
      - { name: all, vms: [{ name: db-1 }, { name: app-1 }] }
`).runbook!;

const source = (name: string, network: string) => ({
  name,
  cpus: 4,
  memoryMiB: 8192,
  nics: [{ network, ip: { address: '10.10.1.10', prefix: 24, dns: [] } }],
  metadata: { protectedDomain: 'demo' },
});

describe('recovered VM: the source configuration with the runbook applied', () => {
  it('places the VM, maps its network, re-IPs it and applies overrides', () => {
    const { spec, leavePoweredOff } = recoveredVm(source('db-1', 'prod-db'), ['db-1-disk-0', 'db-1-disk-1'], runbook);
    assert.equal(leavePoweredOff, false);
    assert.deepEqual(spec, {
      name: 'db-1',
      kind: 'vm',
      cpus: 16,
      memoryMiB: 8192,
      placement: { datacenter: 'dc-b', cluster: 'cluster-b1', resourcePool: 'dr-pool', datastore: 'ds-b' },
      storagePolicy: 'gold',
      nics: [{ network: 'dr-db', ip: { address: '10.20.1.10', prefix: 24, gateway: '10.20.1.1', dns: ['10.20.0.53'] } }],
      diskIds: ['db-1-disk-0', 'db-1-disk-1'],
      metadata: { protectedDomain: 'demo', recoveredBy: 'demo-recovery' },
    });
  });

  it('keeps the source address without re-IP, honours a per-VM datastore, and leaves poweredOff VMs off', () => {
    const app = recoveredVm(source('app-1', 'prod-app'), ['app-1-disk-0'], runbook).spec;
    assert.equal(app.placement.datastore, 'ds-b-flash');
    assert.deepEqual(app.nics, [{ network: 'dr-app', ip: { address: '10.10.1.10', prefix: 24, dns: [] } }]);
    assert.equal(recoveredVm(source('report-1', 'prod-app'), [], runbook).leavePoweredOff, true);
  });

  it('refuses a VM the runbook does not know and a network without a mapping, naming them', () => {
    assert.throws(() => recoveredVm(source('ghost-1', 'prod-db'), [], runbook), /VM ghost-1 is not in runbook demo-recovery/);
    assert.throws(() => recoveredVm(source('app-1', 'prod-web'), [], runbook), /app-1: network "prod-web" has no mapping/);
  });
});

/** The same domain's runbook with a failback section: rebuilt VMs go to cluster-a1 on ds-a, dr-db and dr-replication map back. */
const withFailback = validateRunbook(`apiVersion: dr.example.io/v1alpha1
kind: Runbook
metadata: { name: demo-recovery }
spec:
  protectedDomain: demo
  sites: { primary: primary, recovery: recovery }
  placement: { datacenter: dc-b, cluster: cluster-b1, datastore: ds-b }
  networkMapping:
    - { source: prod-db, target: dr-db }
    - { source: prod-app, target: dr-app }
  vms:
    - { name: db-1 }
    - { name: report-1, startupAction: poweredOff }
  rocva: { networks: { externalReplication: dr-replication, internal: dr-rocva-internal, management: dr-management } }
  powerOn:
    groups:
      - { name: all, vms: [{ name: db-1 }] }
  failback:
    placement: { datacenter: dc-a, cluster: cluster-a1, datastore: ds-a }
    networkMapping:
      - { source: dr-db, target: prod-db-2 }
      - { source: dr-replication, target: a-replication }
`).runbook!;

/** db-1 as it ran at the recovery site (the recovery point's configuration): mapped, re-IPed, tagged by the recovery. */
const atRecovery = {
  name: 'db-1',
  cpus: 12,
  memoryMiB: 16384,
  nics: [{ network: 'dr-db', ip: { address: '10.20.1.10', prefix: 24, dns: [] } }, { network: 'dr-app' }],
  metadata: { protectedDomain: 'demo', recoveredBy: 'demo-recovery' },
};
/** db-1 as the domain left the primary. */
const left = {
  nics: [{ network: 'prod-db', ip: { address: '10.10.1.10', prefix: 24, dns: ['10.10.0.53'] } }, { network: 'prod-app' }],
  placement: { datacenter: 'dc-a', cluster: 'cluster-a9', resourcePool: 'prod', datastore: 'ds-a-old' },
};

describe('rebuilt VM: a VM missing at the primary, from its last configuration with the recovery site undone', () => {
  it('keeps what it last ran with, maps networks back by the failback section, else as it left, with the addresses it had at the primary', () => {
    const { spec, leavePoweredOff } = rebuiltVm(atRecovery, left, ['db-1-disk-0'], withFailback);
    assert.equal(leavePoweredOff, false);
    assert.deepEqual(spec, {
      name: 'db-1',
      kind: 'vm',
      cpus: 12,
      memoryMiB: 16384,
      placement: { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' },
      nics: [{ network: 'prod-db-2', ip: { address: '10.10.1.10', prefix: 24, dns: ['10.10.0.53'] } }, { network: 'prod-app' }],
      diskIds: ['db-1-disk-0'],
      metadata: { protectedDomain: 'demo', rebuiltBy: 'demo-recovery' },
    });
    assert.equal(rebuiltVm({ ...atRecovery, name: 'report-1' }, left, [], withFailback).leavePoweredOff, true);
  });

  it('without a failback section it goes where and on what it was when the domain left', () => {
    const { spec } = rebuiltVm(atRecovery, left, ['db-1-disk-0'], runbook);
    assert.deepEqual(spec.placement, left.placement);
    assert.deepEqual(spec.nics, left.nics);
  });

  it('refuses, naming what to add, when nothing says where it goes or which network a NIC is on', () => {
    assert.throws(() => rebuiltVm(atRecovery, { nics: left.nics }, [], runbook), /db-1 must be rebuilt at primary, and neither spec.failback.placement of runbook demo-recovery nor the domain's departure from there says where/);
    assert.throws(() => rebuiltVm(atRecovery, { nics: [left.nics[0]] }, [], withFailback), /db-1: network "dr-app" has no way back to the primary: map it in spec.failback.networkMapping/);
  });
});

describe('RocVA networks at the primary', () => {
  it('are the runbook\'s RocVA networks mapped back; an unmapped one is the network the domain uses there', () => {
    assert.deepEqual(rocvaNetworksAtPrimary(withFailback, 'prod-db'), { externalReplication: 'a-replication', internal: 'prod-db', management: 'prod-db' });
    assert.deepEqual(rocvaNetworksAtPrimary(runbook, 'prod-app'), { externalReplication: 'prod-app', internal: 'prod-app', management: 'prod-app' });
  });
});

describe('restored VM: a VM reverted in place to the configuration a point records', () => {
  it('restores a VM in place: the point\'s CPUs, memory and NICs on its own disks and place; NICs recorded at the other site are not applied', () => {
    const here = { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' };
    const now: Vm = { name: 'report-1', kind: 'vm', cpus: 8, memoryMiB: 16384, placement: here, nics: [{ network: 'prod-app', ip: { address: '10.10.2.30', prefix: 24, dns: [] } }], diskIds: ['report-1-disk-0'], metadata: { protectedDomain: 'demo' }, powerState: 'poweredOff' };
    const atPoint = { ...source('report-1', 'prod-db'), placement: here };
    const { spec, leavePoweredOff } = restoredVm([now])(atPoint, ['ignored'], runbook);
    assert.deepEqual([spec.cpus, spec.memoryMiB, spec.nics, spec.placement, spec.diskIds, spec.metadata], [4, 8192, atPoint.nics, here, ['report-1-disk-0'], now.metadata]);
    assert.equal(leavePoweredOff, true, 'the runbook\'s startup action applies');

    const elsewhere = restoredVm([now])({ ...atPoint, placement: { datacenter: 'dc-b', cluster: 'cluster-b1', datastore: 'ds-b' } }, [], runbook).spec;
    assert.deepEqual([elsewhere.cpus, elsewhere.nics, elsewhere.placement], [4, now.nics, here], 'recorded at the other site: its networks are not this site\'s');
    assert.throws(() => restoredVm([])({ ...atPoint, placement: undefined }, [], runbook), /not registered/);
  });
});
