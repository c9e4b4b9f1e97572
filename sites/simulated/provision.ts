import type { SiteDefinition } from '../config';
import { diskIdOf } from '../config';
import type { SimulatedSite } from './site';
import { forEachLimited } from '../../common/parallel';

const VMS_PROVISIONED_AT_ONCE = 200;

/**
 * Creates the protected domains a site definition lists (protected disks, registered and
 * powered-on VMs). Idempotent: a restarted site finds them and changes nothing.
 */
export async function provisionProtectedDomains(site: SimulatedSite, definition: SiteDefinition): Promise<void> {
  for (const domain of definition.protectedDomains) {
    // Many VMs at a time: the site writes its whole state once per turn of its event loop, so one
    // VM at a time rewrote it three times per VM (a generated domain of 10,000 VMs did not start).
    await forEachLimited(domain.vms, VMS_PROVISIONED_AT_ONCE, async (vm) => {
      const diskIds = vm.diskMiB.map((_, i) => diskIdOf(vm.name, i));
      for (const [i, mib] of vm.diskMiB.entries()) {
        await site.createDisk({ id: diskIds[i], datastore: domain.placement.datastore, sizeBytes: mib * 1024 * 1024, protected: true });
      }
      const registered = await Promise.resolve(vm.name)
        .then((name) => site.getVm(name))
        .then(
          () => true,
          () => false,
        );
      if (registered) return;
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
    });
  }
}
