import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTECTED_DOMAIN_TAG } from '../../common/vm-tags';
import { disksNotLogged } from '../../datapath/membership';
import type { Vm } from '../../sites/provider';

const placement = { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' };
const vm = (name: string, diskIds: string[], metadata: Record<string, string> = {}, kind: Vm['kind'] = 'vm'): Vm => ({ name, kind, cpus: 1, memoryMiB: 512, placement, nics: [], diskIds, metadata, powerState: 'poweredOff' });

describe('what a planned handover finds at the site that protection does not log', () => {
  const logged = { vms: ['db-1', 'app-1'], diskIds: ['db-1-disk-0', 'app-1-disk-0'] };

  it('names a disk attached to a member, and the disks of a VM tagged into the domain since', () => {
    const site = [vm('db-1', ['db-1-disk-0', 'db-1-disk-1'], { [PROTECTED_DOMAIN_TAG]: 'shop' }), vm('app-1', ['app-1-disk-0']), vm('web-1', ['web-1-disk-0'], { [PROTECTED_DOMAIN_TAG]: 'shop' })];
    assert.deepEqual(disksNotLogged('shop', logged, site), ['db-1-disk-1', 'web-1-disk-0']);
  });

  it('names nothing when every member disk is logged, and ignores other domains, appliances and detached disks', () => {
    const site = [
      vm('db-1', ['db-1-disk-0'], { [PROTECTED_DOMAIN_TAG]: 'shop' }),
      vm('app-1', []),
      vm('crm-1', ['crm-1-disk-0'], { [PROTECTED_DOMAIN_TAG]: 'crm' }),
      vm('app-1-copy', ['x-disk'], { [PROTECTED_DOMAIN_TAG]: 'shop' }, 'representation'),
      vm('rocva-shop', ['rocva-disk'], { [PROTECTED_DOMAIN_TAG]: 'shop' }, 'rocva'),
    ];
    assert.deepEqual(disksNotLogged('shop', logged, site), []);
  });
});
