import { z } from 'zod';
import type { Vm } from '../sites/provider';
import { DomainKeys } from './keys';
import type { ObjectStore } from './object-store';
import { parseRecord, RECORD_FORMAT_VERSION } from './records';

/**
 * A split-brain conflict: after a forced failover the fenced old primary came back with the
 * domain's VMs running, so two sites run active copies of them. The returning site's detector
 * records it in the storage site (`domains/<d>/conflict.json`), where the API and every site read
 * it; resolving it (deactivating the stale VMs) deletes it. Kept apart from `status.json`, which
 * operations overwrite when they set the mode, so that no operation clears a conflict by accident.
 */
export const conflictSchema = z.object({
  formatVersion: z.literal(RECORD_FORMAT_VERSION),
  domain: z.string(),
  /** The site that runs the stale copies: it does not own the domain. */
  site: z.string(),
  /** The stale VMs found running there. */
  vms: z.array(z.string()),
  /** Who owns the domain (and at which epoch) while they run. */
  owner: z.object({ site: z.string(), epoch: z.number().int().positive() }),
  /** Epoch ms of the first detection. */
  since: z.number().int(),
  detectedAt: z.number().int(),
});
export type ConflictRecord = z.infer<typeof conflictSchema>;

/** The VM metadata key that marks a VM deactivated after a split-brain: it must not run again until reactivated. */
export const DR_STATE = 'drState';
export const INACTIVE = 'inactive';
/** The VM metadata key a recovered VM carries (the runbook it was recovered by): an operation made it, it is no original. */
export const RECOVERED_BY = 'recoveredBy';

export function conflictKey(prefix: string, domain: string): string {
  return `${new DomainKeys(prefix, domain).root}conflict.json`;
}

export async function readConflict(store: ObjectStore, domain: string): Promise<ConflictRecord | undefined> {
  const key = conflictKey(store.prefix, domain);
  const body = await store.get(key);
  return body ? parseRecord(conflictSchema, key, body) : undefined;
}

export async function writeConflict(store: ObjectStore, record: ConflictRecord): Promise<void> {
  await store.put(conflictKey(store.prefix, record.domain), JSON.stringify(record), 'application/json');
}

export async function clearConflict(store: ObjectStore, domain: string): Promise<void> {
  await store.delete([conflictKey(store.prefix, domain)]);
}

export function isInactive(vm: Pick<Vm, 'metadata'>): boolean {
  return vm.metadata[DR_STATE] === INACTIVE;
}

/**
 * The domain VMs a site holds that are not deactivated, by domain: workload VMs (not RocVAs or
 * representation VMs) tagged `protectedDomain`. With `running`, only those powered on: a stale
 * copy that runs is a split-brain; one that is off is still deactivated when it is resolved.
 */
export function activeDomainVms(vms: Vm[], options: { running?: boolean; domain?: string } = {}): Map<string, string[]> {
  const byDomain = new Map<string, string[]>();
  for (const vm of vms) {
    const domain = vm.metadata.protectedDomain;
    if (vm.kind !== 'vm' || !domain || isInactive(vm)) continue;
    if (options.running && vm.powerState !== 'poweredOn') continue;
    if (options.domain !== undefined && domain !== options.domain) continue;
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), vm.name]);
  }
  for (const names of byDomain.values()) names.sort();
  return byDomain;
}

/**
 * The record to keep after a detection pass finds `vms` of `domain` running at `site` while
 * `owner` owns it: a first detection starts the conflict, a later one keeps its `since`; nothing
 * to write (undefined) when the stored record says the same.
 */
export function nextConflict(
  existing: ConflictRecord | undefined,
  found: { domain: string; site: string; vms: string[]; owner: ConflictRecord['owner'] },
  now: number,
): ConflictRecord | undefined {
  const same = existing?.site === found.site && existing.owner.epoch === found.owner.epoch;
  if (same && existing.vms.join(',') === found.vms.join(',')) return undefined;
  return { formatVersion: RECORD_FORMAT_VERSION, ...found, since: same ? existing.since : now, detectedAt: now };
}
