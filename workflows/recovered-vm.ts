import type { Runbook } from '../runbooks/schema';
import type { Nic, Placement, RegisterVmSpec, Vm } from '../sites/provider';

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

export function recoveredVm(source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'storagePolicy' | 'metadata'>, diskIds: string[], runbook: Runbook): RecoveredVm {
  const { spec } = runbook;
  const override = spec.vms.find((v) => v.name === source.name);
  if (!override) throw new RecoveredVmError(`VM ${source.name} is not in runbook ${runbook.metadata.name}`);
  const mapped = new Map(spec.networkMapping.map((m) => [m.source, m.target]));
  const nics: Nic[] = source.nics.map((nic, i) => {
    const network = i === 0 && override.network ? override.network : mapped.get(nic.network);
    if (!network) throw new RecoveredVmError(`${source.name}: network "${nic.network}" has no mapping to the recovery site in runbook ${runbook.metadata.name}`);
    const ip = i === 0 && override.reIp ? { address: override.reIp.address, prefix: override.reIp.prefix, dns: override.reIp.dns, ...(override.reIp.gateway ? { gateway: override.reIp.gateway } : {}) } : nic.ip;
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

/**
 * A VM failback returns to: its configuration as recorded, without the runbook's mapping to the
 * recovery site (the original VM at the primary is kept as it is; this is what its disks are
 * rehydrated for). Only the runbook's datastore and startup action apply.
 */
export function originalVm(source: Pick<Vm, 'name' | 'cpus' | 'memoryMiB' | 'nics' | 'storagePolicy' | 'metadata'>, diskIds: string[], runbook: Runbook): RecoveredVm {
  const override = runbook.spec.vms.find((v) => v.name === source.name);
  return {
    spec: { name: source.name, kind: 'vm', cpus: source.cpus, memoryMiB: source.memoryMiB, placement: placementFor(source.name, runbook), ...(source.storagePolicy ? { storagePolicy: source.storagePolicy } : {}), nics: source.nics, diskIds, metadata: source.metadata },
    leavePoweredOff: override?.startupAction === 'poweredOff',
  };
}

/** Where the runbook places a VM at the recovery site: its placement, with the VM's datastore override. A VM it does not list gets the default. */
export function placementFor(vm: string, runbook: Runbook): Placement {
  const { placement } = runbook.spec;
  const override = runbook.spec.vms.find((v) => v.name === vm);
  return {
    datacenter: placement.datacenter,
    cluster: placement.cluster,
    ...(placement.resourcePool ? { resourcePool: placement.resourcePool } : {}),
    datastore: override?.datastore ?? placement.datastore,
  };
}
