import { createHash } from 'node:crypto';
import type { Vm } from '../sites/provider';
import { PROTECTED_DOMAIN_TAG } from '../common/vm-tags';
import type { VmMetadata } from './records';

/**
 * The domain's VMs at its protected site: the workload VMs tagged for it, and those of the
 * protection's own list that carry no tag at all (a VM tagged for another domain is that
 * domain's). A VM unregistered or re-tagged elsewhere leaves; its disks are its `diskIds`.
 */
export function domainMembers(domain: string, listed: string[], vms: Vm[]): Vm[] {
  const names = new Set(listed);
  return vms.filter((vm) => {
    if (vm.kind !== 'vm') return false;
    const tag = vm.metadata[PROTECTED_DOMAIN_TAG];
    return tag === domain || (tag === undefined && names.has(vm.name));
  });
}

/** What a protection logs, as its manifest lists it: the members' names and their disks. */
export interface LoggedMembers {
  vms: string[];
  diskIds: string[];
}

/** What a planned handover asks of the protection before it seals the log. */
export interface EveryDiskLoggedRequest {
  /** Look at the domain's members first: the site holds a disk the protection has not logged (attached since its last look). */
  lookFirst?: boolean;
}

/** The disks of the domain's members at the site (`vms`: its listing) that the protection does not log. */
export function disksNotLogged(domain: string, logged: LoggedMembers, vms: Vm[]): string[] {
  const known = new Set(logged.diskIds);
  return domainMembers(domain, logged.vms, vms)
    .flatMap((vm) => vm.diskIds)
    .filter((id) => !known.has(id));
}

/** The configuration a manifest and a restore point record of a VM, with where it stands. */
export function vmMetadata(vms: Vm[]): VmMetadata[] {
  return vms.map((vm) => ({ name: vm.name, cpus: vm.cpus, memoryMiB: vm.memoryMiB, diskIds: vm.diskIds, nics: vm.nics, metadata: vm.metadata, placement: vm.placement }));
}

/** JSON with object keys sorted, so that the same configuration compares equal however it was parsed. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

const byName = (list: VmMetadata[]) => canonical([...list].sort((x, y) => x.name.localeCompare(y.name)));

/** Whether two member lists hold the same VMs with the same configuration (disks, CPUs, memory, NICs, metadata). */
export function sameMembers(a: VmMetadata[], b: VmMetadata[]): boolean {
  return byName(a) === byName(b);
}

/** Equal for two member lists exactly when `sameMembers` says they are the same. */
export function membersDigest(members: VmMetadata[]): string {
  return createHash('sha256').update(byName(members)).digest('hex');
}
