import type { SiteDefinition } from '../config';
import { diskIdOf } from '../config';
import type { SimulatedSite } from './site';

/**
 * Creates the protected domains a site definition lists (protected disks, registered and
 * powered-on VMs). Idempotent: a restarted site finds them and changes nothing.
 */
export async function provisionProtectedDomains(site: SimulatedSite, definition: SiteDefinition): Promise<void> {
  for (const domain of definition.protectedDomains) {
    for (const vm of domain.vms) {
      const diskIds = vm.diskMiB.map((_, i) => diskIdOf(vm.name, i));
      for (const [i, mib] of vm.diskMiB.entries()) {
        await site.createDisk({ id: diskIds[i], datastore: domain.placement.datastore, sizeBytes: mib * 1024 * 1024, protected: true });
      }
      const existing = (await site.listVms()).find((v) => v.name === vm.name);
      if (existing) continue;
      await site.registerVm({
        name: vm.name,
        cpus: vm.cpus,
        memoryMiB: vm.memoryMiB,
        placement: domain.placement,
        nics: [{ network: vm.network, ip: { address: vm.address, prefix: 24, dns: [] } }],
        diskIds,
        metadata: { protectedDomain: domain.name, ...(vm.services?.length ? { guestServices: vm.services.join(',') } : {}) },
      });
      await site.powerOn(vm.name);
    }
  }
}
