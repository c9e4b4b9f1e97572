import { ApplicationFailure } from '@temporalio/activity';
import type { Nic, Placement, RegisterVmSpec, RocvaSpec, ShutdownOutcome, SiteProvider, Vm } from '../sites/provider';
import { SiteError } from '../sites/provider';
import { isDrillResourceName, representationVmName, type DrillResource } from '../common/resource-names';
import { atSite } from './site-failures';
import { failure } from '../common/failures';
import { isInactive } from '../datapath/conflict';
import { drillRemovalBatchActivities, rebuildBatchActivities } from './vm-batches';

/**
 * The VM, or undefined when the site says it does not exist. Only the site's `VmNotFound` means
 * absent: any other error (the site down, a refused token) is no answer, and goes through
 * `atSite` so that it keeps its type and retryability instead of passing for "no VM".
 */
async function vmIfPresent(provider: SiteProvider, name: string): Promise<Vm | undefined> {
  return atSite(() =>
    provider.getVm(name).catch((error: unknown) => {
      if (error instanceof SiteError && error.code === 'VmNotFound') return undefined;
      throw error;
    }),
  );
}

/** Whether the site holds the disk; as `vmIfPresent`, only the site's `DiskNotFound` means no. */
export async function diskIfPresent(provider: SiteProvider, id: string): Promise<boolean> {
  return atSite(() =>
    provider.getDisk(id).then(
      () => true,
      (error: unknown) => {
        if (error instanceof SiteError && error.code === 'DiskNotFound') return false;
        throw error;
      },
    ),
  );
}

/** What a site held of an operation's names before the operation created anything there. */
export interface ExistingAtSite {
  /** Each with where it stands and the networks it is on, so that an appliance can be placed beside it, and whether it runs. */
  vms: Array<{ name: string; inactive: boolean; poweredOn: boolean; placement: Placement; networks: string[] }>;
  diskIds: string[];
}

export interface PrepareTargetDisksInput {
  vm: string;
  placement: Placement;
  /** The source VM's disks, in order: each target disk keeps its id, which rehydration writes to. */
  disks: Array<{ diskId: string; sizeBytes: number }>;
}

/** The names a site holds: every VM (appliances and representation VMs included) and every disk. */
export interface InventoryNames {
  vms: string[];
  disks: string[];
}

export interface RecoverySiteDependencies {
  provider: SiteProvider;
}

/**
 * What an operation does at the site where a domain is rebuilt: the RocVA, the representation VMs
 * that hold target disks while they are rehydrated, the recovered VMs themselves, and the undo of
 * each for compensation. Every step is idempotent by name.
 */
export function createRecoverySiteActivities({ provider }: RecoverySiteDependencies) {
  const activities = {
    /**
     * What the site holds already of these VMs (and their representation VMs) and disks, asked before
     * an operation creates anything: its undo removes only what was not there. A found VM says
     * whether a resolved split-brain left it inactive.
     */
    findExisting: async ({ vms, diskIds }: { vms: string[]; diskIds: string[] }): Promise<ExistingAtSite> => {
      // Two listings, not a request per name: a 1,000-VM domain asked 3,000 times, one after another (6.4 s).
      const [listedVms, listedDisks] = await Promise.all([atSite(() => provider.listVms()), atSite(() => provider.listDisks())]);
      const vmsByName = new Map(listedVms.map((vm) => [vm.name, vm]));
      const diskIdsListed = new Set(listedDisks.map((d) => d.id));
      const found: ExistingAtSite = { vms: [], diskIds: diskIds.filter((id) => diskIdsListed.has(id)) };
      for (const name of vms.flatMap((vm) => [vm, representationVmName(vm)])) {
        const vm = vmsByName.get(name);
        if (vm) found.vms.push({ name, inactive: isInactive(vm), poweredOn: vm.powerState === 'poweredOn', placement: vm.placement, networks: vm.nics.map((n) => n.network) });
      }
      return found;
    },

    deployRocva: async (spec: RocvaSpec): Promise<{ name: string }> => {
      await atSite(() => provider.deployRocva(spec));
      return { name: spec.name };
    },

    destroyRocva: async ({ name }: { name: string }): Promise<void> => {
      await atSite(() => provider.destroyRocva(name));
    },

    /**
     * Creates the VM's target disks (not journaled: nothing replicates from them yet) behind a
     * representation VM. Again for a VM that has one: disks added since are created and attached.
     */
    prepareTargetDisks: async ({ vm, placement, disks }: PrepareTargetDisksInput): Promise<{ diskIds: string[] }> => {
      const diskIds = disks.map((d) => d.diskId);
      for (const { diskId, sizeBytes } of disks) {
        await atSite(() => provider.createDisk({ id: diskId, datastore: placement.datastore, sizeBytes, protected: false }));
      }
      const name = representationVmName(vm);
      // Registering is idempotent by name and answers the VM the site holds: one round trip per VM
      // where asking first made two (each a site round trip on the RTO's path).
      const held = await atSite(() => provider.registerVm({ name, kind: 'representation', cpus: 1, memoryMiB: 512, placement, nics: [], diskIds, metadata: { representing: vm } }));
      if (held.diskIds.join() !== diskIds.join()) await atSite(() => provider.reconfigureVm(name, { diskIds }));
      return { diskIds };
    },

    /** A disk detached from a VM at the primary: detached from its representation VM and deleted. */
    removeTargetDisk: async ({ vm, diskId }: { vm: string; diskId: string }): Promise<void> => {
      const holder = await vmIfPresent(provider, representationVmName(vm));
      if (holder?.diskIds.includes(diskId)) await atSite(() => provider.reconfigureVm(holder.name, { diskIds: holder.diskIds.filter((id) => id !== diskId) }));
      await atSite(() => provider.deleteDisk(diskId));
    },

    removeRepresentationVm: async ({ vm }: { vm: string }): Promise<void> => {
      await atSite(() => provider.unregisterVm(representationVmName(vm)));
    },

    /** Registers the recovered VM, or brings an earlier attempt's registration to the same configuration. */
    registerRecoveredVm: ({ spec }: { spec: RegisterVmSpec }): Promise<void> => registerRecovered(provider, spec),

    /**
     * The representation VM gives way to the recovered VM holding the same disks: one call per VM
     * where a completion would otherwise make two (a continuous failover's completion is on the
     * RTO's critical path). Safe to repeat: a retry finds the representation VM gone, the VM there.
     */
    registerInPlaceOfRepresentation: async ({ spec }: { spec: RegisterVmSpec }): Promise<void> => {
      await atSite(() => provider.unregisterVm(representationVmName(spec.name)));
      await registerRecovered(provider, spec);
    },

    /**
     * Compensation and cleanup: the VM, its representation VM and the listed disks go away (also
     * disks that rehydration created before any VM held them), except what `found` says was there
     * before the operation: that is never the operation's to remove. Disks go by the list only, so
     * a disk attached to the VM but not listed stays.
     */
    removeRecoveredVm: async ({ vm, diskIds = [], found }: { vm: string; diskIds?: string[]; found?: ExistingAtSite }): Promise<void> => {
      const kept = new Set([...(found?.vms.map((v) => v.name) ?? []), ...(found?.diskIds ?? [])]);
      const disks = new Set(diskIds);
      for (const name of [vm, representationVmName(vm)].filter((n) => !kept.has(n))) {
        const existing = await vmIfPresent(provider, name);
        if (!existing) continue;
        // The disks a removed VM held go with it, unless they were there before the operation.
        for (const id of existing.diskIds) disks.add(id);
        await atSite(() => provider.powerOff(name));
        await atSite(() => provider.unregisterVm(name));
      }
      for (const id of [...disks].filter((d) => !kept.has(d))) await atSite(() => provider.deleteDisk(id));
    },

    /** Every name the site holds, for a drill's before-and-after comparison. */
    inventoryNames: async (): Promise<InventoryNames> => {
      const [vms, disks] = await Promise.all([atSite(() => provider.listVms()), atSite(() => provider.listDisks())]);
      return { vms: vms.map((v) => v.name).sort(), disks: disks.map((d) => d.id).sort() };
    },

    /**
     * One resource a drill created, removed: a VM (or appliance) powered off and unregistered, a
     * disk deleted. Idempotent: what is gone already answers `removed: false` (a killed worker's
     * retry, or a compensation that came first). Refuses any name without a drill prefix, so that a
     * wrong record can never remove production.
     */
    removeDrillResource: async ({ kind, name }: DrillResource): Promise<{ removed: boolean }> => {
      if (!isDrillResourceName(name)) throw failure('NotADrillResource', `${kind} "${name}" at site ${provider.site} is not named like a drill resource (drill-<id>-...): not removed`);
      if (kind === 'disk') {
        if (!(await diskIfPresent(provider, name))) return { removed: false };
        await atSite(() => provider.deleteDisk(name));
        return { removed: true };
      }
      if (!(await vmIfPresent(provider, name))) return { removed: false };
      if (kind === 'rocva') {
        await atSite(() => provider.destroyRocva(name));
      } else {
        await atSite(() => provider.powerOff(name));
        await atSite(() => provider.unregisterVm(name));
      }
      return { removed: true };
    },
  };
  return { ...activities, ...rebuildBatchActivities(activities), ...drillRemovalBatchActivities(activities) };
}

async function registerRecovered(provider: SiteProvider, spec: RegisterVmSpec): Promise<void> {
  // Idempotent by name: the site answers the VM it holds, or refuses a name held by another kind (NameConflict).
  const existing = await atSite(() => provider.registerVm(spec));
  const drifted = existing.cpus !== spec.cpus || existing.memoryMiB !== spec.memoryMiB || existing.storagePolicy !== spec.storagePolicy || !sameNics(existing.nics, spec.nics);
  if (drifted && existing.powerState === 'poweredOff') {
    await atSite(() => provider.reconfigureVm(spec.name, { cpus: spec.cpus, memoryMiB: spec.memoryMiB, nics: spec.nics, ...(spec.storagePolicy ? { storagePolicy: spec.storagePolicy } : {}) }));
  }
}

/**
 * Whether two NIC lists configure the same networks and addresses. By value, not by their JSON:
 * the site answers an address's fields in its own order (a runbook's re-IP lists them in
 * another), and comparing the text reconfigured every re-addressed VM at every registration.
 */
function sameNics(held: Nic[], wanted: Nic[]): boolean {
  const text = (nic: Nic) => JSON.stringify([nic.network, nic.ip?.address, nic.ip?.prefix, nic.ip?.gateway, nic.ip?.dns ?? []]);
  return held.length === wanted.length && held.every((nic, i) => text(nic) === text(wanted[i]));
}

export type RecoverySiteActivities = ReturnType<typeof createRecoverySiteActivities>;

export interface ShutdownForHandoverInput {
  vm: string;
  timeoutMs: number;
  /** What the runbook's `primaryShutdown.onTimeout` wants when the guest does not stop in time. */
  onTimeout: 'powerOff' | 'abort';
}

/** At the primary site of a planned failover: stop a VM so that its last writes are in the journal. */
export function createPrimarySiteActivities({ provider }: RecoverySiteDependencies) {
  return {
    /** Which of `vms` run at the site now: before a shutdown, what its undo powers on again. */
    runningAmong: async ({ vms }: { vms: string[] }): Promise<string[]> => {
      const wanted = new Set(vms);
      const running = new Set((await atSite(() => provider.listVms())).filter((vm) => wanted.has(vm.name) && vm.powerState === 'poweredOn').map((vm) => vm.name));
      return vms.filter((vm) => running.has(vm));
    },
    shutdownForHandover: async ({ vm, timeoutMs, onTimeout }: ShutdownForHandoverInput): Promise<{ outcome: ShutdownOutcome | 'poweredOff' }> => {
      try {
        return { outcome: await atSite(() => provider.shutdownGuest(vm, timeoutMs)) };
      } catch (error) {
        if (!(error instanceof ApplicationFailure) || error.type !== 'GuestShutdownTimeout') throw error;
        if (onTimeout !== 'powerOff') throw failure('GuestShutdownTimeout', error.message);
        await atSite(() => provider.powerOff(vm));
        return { outcome: 'poweredOff' };
      }
    },
  };
}

export type PrimarySiteActivities = ReturnType<typeof createPrimarySiteActivities>;
