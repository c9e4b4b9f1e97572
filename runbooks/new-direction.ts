/**
 * The runbook of a domain after a permanent failover: its recovery site becomes its primary (the
 * VMs run there as the failover placed them), and the new recovery site is the old primary, or none.
 * Pure: the API works it out and validates it before anything changes.
 */
import { stringify } from 'yaml';
import type { Runbook, RunbookVm } from './schema';

export class NewDirectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NewDirectionError';
  }
}

/** The per-VM settings that place a VM at the recovery site (datastore, network, re-IP, a drill's test address): they do not apply to another site. */
function withoutPlacementAtRecovery(vm: RunbookVm): RunbookVm {
  const { datastore: _datastore, network: _network, reIp: _reIp, testIp: _testIp, ...rest } = vm;
  return rest;
}

/**
 * With no new recovery site the domain is protected to the storage site only: the recovery
 * sections go, and `spec.powerOn` (the plan it ran by at the recovery site) is its plan at the new
 * primary. With the old primary as the new recovery site, the failback section (which describes
 * that site) becomes the recovery side: its placement, its network mapping, the RocVA's networks
 * mapped back by it, its power-on plan; and the old recovery side becomes the failback section
 * (the old primary-to-recovery mapping is that section's mapping as it is: from the old primary's
 * networks to the new primary's).
 * Another site has no section in the runbook to derive from: the operator names a runbook for it.
 * Either way the drill sections (test networks, the VMs' test addresses, checks, post-cleanup
 * steps), which described drills at the old recovery site, are dropped: drills at the new recovery
 * site need a version that names its own test networks there.
 */
/** `by`: who asked and when, for the new version's description. */
export function runbookAfterPermanentFailover(old: Runbook, newRecoverySite: string | undefined, by: string): Runbook {
  const { spec } = old;
  const oldPrimary = spec.sites.primary;
  const newPrimary = spec.sites.recovery;
  if (newPrimary === undefined || !spec.placement || !spec.rocva) throw new NewDirectionError(`runbook ${old.metadata.name} names no recovery site: there is nothing to fail over to permanently`);
  const metadata = {
    ...old.metadata,
    description: `After a permanent failover ${by}: ${newPrimary} is the primary (retired: ${oldPrimary}), ${newRecoverySite ?? 'no recovery site (protected to the storage site only)'}.${old.metadata.description ? ` ${old.metadata.description}` : ''}`.slice(0, 4000),
  };
  // Drills ran at the old recovery site, on its test networks: the new direction starts without them.
  const { placement: _placement, rocva: _rocva, testNetworkMapping: _testNetworks, checks: _checks, postCleanup: _postCleanup, failback, networkMapping, ...common } = spec;
  const vms = spec.vms.map(withoutPlacementAtRecovery);
  if (newRecoverySite === undefined) {
    return { ...old, metadata, spec: { ...common, sites: { primary: newPrimary }, networkMapping: [], vms, checks: [], postCleanup: [] } };
  }
  if (newRecoverySite !== oldPrimary) {
    throw new NewDirectionError(`runbook ${old.metadata.name} describes no placement at ${newRecoverySite}: name a runbook for the new direction (primary ${newPrimary}, recovery ${newRecoverySite}) in "newRunbook"`);
  }
  if (!failback?.placement) {
    throw new NewDirectionError(`runbook ${old.metadata.name} has no spec.failback.placement: nothing says where ${oldPrimary} would recover the domain; add it, or name a runbook for the new direction in "newRunbook"`);
  }
  const back = new Map(failback.networkMapping.map((m) => [m.source, m.target]));
  const unmapped = Object.values(spec.rocva.networks).filter((network) => !back.has(network));
  if (unmapped.length > 0) {
    throw new NewDirectionError(`the RocVA networks ${unmapped.join(', ')} of runbook ${old.metadata.name} have no mapping to ${oldPrimary} in spec.failback.networkMapping: the RocVA there would have no networks; map them, or name a runbook for the new direction in "newRunbook"`);
  }
  const { externalReplication, internal, management } = spec.rocva.networks;
  const rocvaAtOldPrimary = { externalReplication: back.get(externalReplication)!, internal: back.get(internal)!, management: back.get(management)! };
  return {
    ...old,
    metadata,
    spec: {
      ...common,
      sites: { primary: newPrimary, recovery: oldPrimary },
      placement: failback.placement,
      networkMapping: failback.networkMapping,
      vms,
      checks: [],
      postCleanup: [],
      rocva: { networks: rocvaAtOldPrimary },
      powerOn: failback.powerOn ?? spec.powerOn,
      failback: { placement: spec.placement, networkMapping: mappingBackTo(networkMapping, rocvaAtOldPrimary, spec.rocva.networks), powerOn: spec.powerOn },
    },
  };
}

/**
 * The new failback section's mapping (a network at the new recovery site, the old primary, to one at
 * the new primary): the old primary-to-recovery mapping as it is, plus each RocVA network at the old
 * primary back to the one it had at the new primary, unless that network is mapped already.
 */
function mappingBackTo(mapping: Runbook['spec']['networkMapping'], rocvaAtOldPrimary: Record<string, string>, rocvaAtNewPrimary: Record<string, string>): Runbook['spec']['networkMapping'] {
  const mapped = [...mapping];
  for (const [role, network] of Object.entries(rocvaAtOldPrimary)) {
    if (!mapped.some((m) => m.source === network)) mapped.push({ source: network, target: rocvaAtNewPrimary[role] });
  }
  return mapped;
}

/** A runbook as the YAML text a version is stored as. */
export function runbookText(runbook: Runbook): string {
  return stringify(runbook, { lineWidth: 0 });
}
