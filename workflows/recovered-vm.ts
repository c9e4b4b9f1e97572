import type { VmMetadata } from '../datapath/records';
import { drillResourceName } from '../common/resource-names';
import { PROTECTED_DOMAIN_TAG } from '../common/vm-tags';
import type { Runbook, RunbookVm } from '../runbooks/schema';
import type { IpSettings, Nic, Placement, RegisterVmSpec, RocvaSpec, Vm } from '../sites/provider';

/**
 * The VM as it must be registered at the recovery site: the source VM's configuration (from the
 * restore point's metadata snapshot) with the runbook's placement, network mapping, re-IP and
 * per-VM overrides applied. Pure, so the workflow computes it and its history shows the result.
 */
export interface RecoveredVm {
  spec: RegisterVmSpec;
  /** Runbook `startupAction`: poweredOff VMs are registered and reconfigured but never started. */
  leavePoweredOff: boolean;
}

export class RecoveredVmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecoveredVmError';
  }
}

/** Each runbook's VMs by name, built once per runbook: every operation looks up each of up to 20,000 VMs in it. */
const runbookVmsByName = new WeakMap<Runbook['spec']['vms'], Map<string, RunbookVm>>();

/** The runbook's entry for a VM (the first, as validation refuses a name twice). */
export function runbookVm(runbook: Runbook, name: string): RunbookVm | undefined {
  let byName = runbookVmsByName.get(runbook.spec.vms);
  if (!byName) {
    byName = new Map();
    for (const vm of runbook.spec.vms) if (!byName.has(vm.name)) byName.set(vm.name, vm);
    runbookVmsByName.set(runbook.spec.vms, byName);
  }
  return byName.get(name);
}

export function recoveredVm(source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'storagePolicy' | 'metadata'>, diskIds: string[], runbook: Runbook): RecoveredVm {
  const { spec } = runbook;
  const override = runbookVm(runbook, source.name);
  if (!override) throw new RecoveredVmError(`VM ${source.name} is not in runbook ${runbook.metadata.name}`);
  const mapped = new Map(spec.networkMapping.map((m) => [m.source, m.target]));
  const nics: Nic[] = source.nics.map((nic, i) => {
    const network = i === 0 && override.network ? override.network : mapped.get(nic.network);
    if (!network) throw new RecoveredVmError(`${source.name}: network "${nic.network}" has no mapping to the recovery site in runbook ${runbook.metadata.name}`);
    const ip = i === 0 && override.reIp ? ipSettingsOf(override.reIp) : nic.ip;
    return { network, ...(ip ? { ip } : {}) };
  });
  const storagePolicy = override.storagePolicy ?? source.storagePolicy;
  return {
    spec: {
      name: source.name,
      kind: 'vm',
      cpus: override.cpus ?? source.cpus,
      memoryMiB: override.memoryMiB ?? source.memoryMiB,
      placement: placementFor(source.name, runbook),
      ...(storagePolicy ? { storagePolicy } : {}),
      nics,
      diskIds,
      metadata: { ...source.metadata, recoveredBy: runbook.metadata.name },
    },
    leavePoweredOff: override.startupAction === 'poweredOff',
  };
}

const ipSettingsOf = (ip: NonNullable<RunbookVm['reIp']>): IpSettings => ({ address: ip.address, prefix: ip.prefix, dns: ip.dns, ...(ip.gateway ? { gateway: ip.gateway } : {}) });

/**
 * A drill's copy of a VM: configured as a failover would register it, then renamed `drill-<id>-<vm>`
 * on disks `drill-<id>-<disk id>`, every NIC moved to the test network the runbook maps its
 * recovery network to (one without is refused: it would reach production), and the first NIC given
 * the VM's `testIp` when the runbook has one.
 */
export function drillVm(id: string) {
  return (source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'storagePolicy' | 'metadata'>, diskIds: string[], runbook: Runbook): RecoveredVm => {
    const recovered = recoveredVm(source, diskIds, runbook);
    const testNetworks = new Map((runbook.spec.testNetworkMapping ?? []).map((m) => [m.source, m.target]));
    const testIp = runbookVm(runbook, source.name)?.testIp;
    const nics: Nic[] = recovered.spec.nics.map((nic, i) => {
      const network = testNetworks.get(nic.network);
      if (!network) throw new RecoveredVmError(`${source.name}: recovery network "${nic.network}" has no test network in spec.testNetworkMapping of runbook ${runbook.metadata.name}; a drill never attaches a VM to production`);
      const ip = i === 0 && testIp ? ipSettingsOf(testIp) : nic.ip;
      return { network, ...(ip ? { ip } : {}) };
    });
    // Without the domain's tag: a drill copy is no member of the domain for protection, the
    // split-brain watch or a removal at the site; `drillOf` says whose copy it is.
    const { [PROTECTED_DOMAIN_TAG]: domain, ...metadata } = recovered.spec.metadata ?? {};
    const spec = { ...recovered.spec, name: drillResourceName(id, source.name), nics, diskIds: diskIds.map((d) => drillResourceName(id, d)), metadata: { ...metadata, drill: id, ...(domain ? { drillOf: domain } : {}) } };
    return { ...recovered, spec };
  };
}

/**
 * A VM failback returns to: its configuration as recorded, without the runbook's mapping to the
 * recovery site (the original VM at the primary is kept as it is; this is what its disks are
 * rehydrated for). Only the runbook's datastore and startup action apply.
 */
export function originalVm(source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'storagePolicy' | 'metadata'>, diskIds: string[], runbook: Runbook): RecoveredVm {
  const override = runbookVm(runbook, source.name);
  return {
    spec: { name: source.name, kind: 'vm', cpus: source.cpus, memoryMiB: source.memoryMiB, placement: placementFor(source.name, runbook), ...(source.storagePolicy ? { storagePolicy: source.storagePolicy } : {}), nics: source.nics, diskIds, metadata: source.metadata },
    leavePoweredOff: override?.startupAction === 'poweredOff',
  };
}

/** What recovering at the runbook's recovery site needs: the site, where VMs go there, the RocVA's networks there. */
export interface RecoverySide {
  site: string;
  placement: Placement;
  rocva: NonNullable<Runbook['spec']['rocva']>;
}

/**
 * The runbook's recovery site with its sections (validation requires them together). A runbook
 * without one (a permanent failover named none) recovers nowhere: the operations that would are
 * refused by the API before they start, and this says why if one gets this far.
 */
export function recoverySide(runbook: Runbook): RecoverySide {
  const { sites, placement, rocva } = runbook.spec;
  if (sites.recovery === undefined || !placement || !rocva) {
    throw new RecoveredVmError(`runbook ${runbook.metadata.name} names no recovery site for ${runbook.spec.protectedDomain}: it is protected to the storage site only`);
  }
  return { site: sites.recovery, placement, rocva };
}

/** Where the runbook places a VM at the recovery site: its placement, with the VM's datastore override. A VM it does not list gets the default. */
export function placementFor(vm: string, runbook: Runbook): Placement {
  const { placement } = recoverySide(runbook);
  const override = runbookVm(runbook, vm);
  return {
    datacenter: placement.datacenter,
    cluster: placement.cluster,
    ...(placement.resourcePool ? { resourcePool: placement.resourcePool } : {}),
    datastore: override?.datastore ?? placement.datastore,
  };
}

/** How the domain left the primary: each VM's networks, addresses and placement there, from its departure record. */
export type LeftVm = Pick<VmMetadata, 'nics' | 'placement'>;

/**
 * A VM failback rebuilds at the primary because it is no longer registered there: the
 * configuration the recovery point records for it (as it last ran, at the recovery site) with the
 * recovery site's side undone. Each network is mapped back by `spec.failback.networkMapping`, else
 * it is the one the NIC had at the primary when the domain left (`left`); addresses are those it
 * had there (the recovery site's re-IP is not the primary's). Placed by `rebuildPlacement`.
 */
export function rebuiltVm(source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'storagePolicy' | 'metadata'>, left: LeftVm | undefined, diskIds: string[], runbook: Runbook): RecoveredVm {
  const mapped = mappingBack(runbook);
  const nics: Nic[] = source.nics.map((nic, i) => {
    const network = mapped.get(nic.network) ?? left?.nics[i]?.network;
    if (!network) throw new RecoveredVmError(`${source.name}: network "${nic.network}" has no way back to the primary: map it in spec.failback.networkMapping of runbook ${runbook.metadata.name}`);
    const ip = left?.nics[i]?.ip ?? nic.ip;
    return { network, ...(ip ? { ip } : {}) };
  });
  const { recoveredBy: _recoveredBy, ...metadata } = source.metadata;
  return {
    spec: registrationOf(source, {
      placement: rebuildPlacement(source.name, left, runbook),
      ...(source.storagePolicy ? { storagePolicy: source.storagePolicy } : {}),
      nics,
      diskIds,
      metadata: { ...metadata, rebuiltBy: runbook.metadata.name },
    }),
    leavePoweredOff: runbookVm(runbook, source.name)?.startupAction === 'poweredOff',
  };
}

/** Where a VM is rebuilt at the primary: `spec.failback.placement`, else where it stood when the domain left. */
export function rebuildPlacement(vm: string, left: LeftVm | undefined, runbook: Runbook): Placement {
  const placement = runbook.spec.failback?.placement ?? left?.placement;
  if (!placement) throw new RecoveredVmError(`${vm} must be rebuilt at ${runbook.spec.sites.primary}, and neither spec.failback.placement of runbook ${runbook.metadata.name} nor the domain's departure from there says where`);
  return placement;
}

/**
 * The networks of a RocVA at the primary: the runbook's RocVA networks (the recovery site's)
 * mapped back by `spec.failback.networkMapping`; one left unmapped is `domainNetwork`, a network
 * the domain's VMs use at the primary, which the site surely has.
 */
export function rocvaNetworksAtPrimary(runbook: Runbook, domainNetwork: string): RocvaSpec['networks'] {
  const mapped = mappingBack(runbook);
  const { externalReplication, internal, management } = recoverySide(runbook).rocva.networks;
  const back = (network: string) => mapped.get(network) ?? domainNetwork;
  return { externalReplication: back(externalReplication), internal: back(internal), management: back(management) };
}

const mappingBack = (runbook: Runbook) => new Map((runbook.spec.failback?.networkMapping ?? []).map((m) => [m.source, m.target]));

/**
 * A VM restored in place at the site that owns the domain: the configuration the restore point
 * records for it (CPUs, memory, storage policy, and its networks and addresses when the point was
 * recorded where it stands now), on the disks and at the place it has (`current`). A point recorded
 * while the domain ran at the other site names that site's networks: the VM keeps its own. The
 * runbook's startup action applies.
 */
export function restoredVm(current: Vm[]) {
  const currentByName = new Map(current.map((vm) => [vm.name, vm]));
  return (source: Pick<VmMetadata, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'metadata' | 'placement'> & Pick<Vm, 'storagePolicy'>, diskIds: string[], runbook: Runbook): RecoveredVm => {
    const now = currentByName.get(source.name);
    const placement = now?.placement ?? source.placement;
    if (!placement) throw new RecoveredVmError(`${source.name} is not registered at the site that owns ${runbook.spec.protectedDomain}, and the point records no placement for it`);
    const recordedElsewhere = source.placement !== undefined && now !== undefined && source.placement.datacenter !== now.placement.datacenter;
    const storagePolicy = source.storagePolicy ?? now?.storagePolicy;
    return {
      spec: registrationOf(source, {
        placement,
        ...(storagePolicy ? { storagePolicy } : {}),
        nics: recordedElsewhere && now ? now.nics : source.nics,
        diskIds: now?.diskIds ?? diskIds,
        metadata: now?.metadata ?? source.metadata,
      }),
      leavePoweredOff: runbookVm(runbook, source.name)?.startupAction === 'poweredOff',
    };
  };
}

/** A VM's registration: its recorded name, CPUs and memory, and the rest as the operation places and connects it. */
function registrationOf(source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB'>, rest: Omit<RegisterVmSpec, 'name' | 'kind' | 'cpus' | 'memoryMiB'>): RegisterVmSpec {
  return { name: source.name, kind: 'vm', cpus: source.cpus, memoryMiB: source.memoryMiB, ...rest };
}
