import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRunbook } from '../../runbooks/validate';
import { recoveredVm } from '../../workflows/recovered-vm';

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
