import { failure } from '../../common/failures';
import { patched, workflowInfo } from '@temporalio/workflow';
import type { LogPosition } from '../../datapath/records';
import type { Placement, RocvaSpec } from '../../sites/provider';
import type { Operation, OperationMeasures } from '../operation';
import { originalVm, rebuildPlacement, rebuiltVm, rocvaNetworksAtPrimary, type LeftVm } from '../recovered-vm';
import { forEachBatch, forEachVm } from '../vm-fan-out';
import type { RecoveryPoint } from '../../activities/handover';
import { powerOnByPlan } from './power-on';
import { resumeProtection } from './protection-resume';
import { undoPowerOn } from './shutdown';
import { byRunbook, prepareTargetDisks, registerInPlaceOfRepresentations, targetVmOf, type FoundPerVm, type RebuildTarget } from './rebuild';
import { activitiesAt, batchActivitiesAt, longActivitiesAt } from './site-activities';
import { someNames } from '../listing';

/** The domain's VMs at the site a failback returns to: those still there as they are, and those it must rebuild. */
export interface OriginalVms {
  /** Every VM of the domain. */
  vms: string[];
  /** No longer registered at the site (deleted while the domain ran in failover): rebuilt there. */
  missing: string[];
  /** Left inactive by a resolved split-brain. */
  inactive: string[];
  /** Where each VM still there (and so its disks) stands: a full rehydration rewrites the disks there. */
  placements: Record<string, Placement>;
  /** A network the VMs still there use, for a RocVA network the runbook does not map back. */
  network?: string;
  /** How the domain left the site, per VM (networks, addresses, placement): what a missing VM is rebuilt with. */
  left: Record<string, LeftVm>;
}

/**
 * The original VMs still registered at the site the domain returns to come back as they are; a
 * missing one is rebuilt there. Asked before ownership moves, together with how the domain left
 * the site, so that a VM that cannot be placed there changes nothing.
 */
export async function findOriginalVms(op: Operation, vms: string[]): Promise<OriginalVms> {
  return op.step(`find the original VMs at ${op.to}`, async () => {
    const found = await activitiesAt(op.to).findExisting.executeWithOptions({ summary: `${op.domain}'s original VMs at ${op.to}` }, [{ vms, diskIds: [] }]);
    const asked = new Set(vms);
    const originals = found.vms.filter((v) => asked.has(v.name));
    // Failback rewrites their disks: a copy that runs is a split-brain the watch has not recorded yet.
    const running = originals.filter((v) => v.poweredOn && !v.inactive).map((v) => v.name);
    if (running.length > 0) {
      throw failure('OriginalVmRunning', `${someNames(running)} run at ${op.to} while ${op.domain} runs in failover at ${op.from}: a split-brain; resolve it first (POST /domains/${op.domain}/resolve-conflict), then fail back`);
    }
    const there = new Set(originals.map((v) => v.name));
    const missing = vms.filter((vm) => !there.has(vm));
    let left: OriginalVms['left'] = {};
    if (missing.length > 0) {
      const departure = await activitiesAt(op.to).readDeparture.executeWithOptions({ summary: `how ${op.domain} left ${op.to}, to rebuild ${someNames(missing)} there` }, [{ domain: op.domain }]);
      left = Object.fromEntries((departure?.vms ?? []).map((vm) => [vm.name, { nics: vm.nics, ...(vm.placement ? { placement: vm.placement } : {}) }]));
      for (const vm of missing) byRunbook(() => rebuildPlacement(vm, left[vm], op.runbook));
    }
    const network = originals.find((v) => v.networks.length > 0)?.networks[0];
    return {
      vms,
      missing,
      inactive: originals.filter((v) => v.inactive).map((v) => v.name),
      placements: Object.fromEntries(originals.map((v) => [v.name, v.placement])),
      ...(network ? { network } : {}),
      left,
    };
  });
}

/**
 * The configuration each VM returns with (for `resolveRecoveryPoint`): a VM still there keeps its
 * own and its place; a missing one is rebuilt from the point's configuration with the failback
 * section (or how the domain left) applied.
 */
export function returningVm(originals: OriginalVms): typeof originalVm {
  const missing = new Set(originals.missing);
  const known = new Set(originals.vms);
  return (source, diskIds, runbook) => {
    // A VM added while the domain ran in failover was never at the site: it is rebuilt there too.
    if (missing.has(source.name) || !known.has(source.name)) return rebuiltVm(source, originals.left[source.name], diskIds, runbook);
    const vm = originalVm(source, diskIds, runbook);
    return { ...vm, spec: { ...vm.spec, placement: originals.placements[source.name] ?? vm.spec.placement } };
  };
}

/**
 * The missing VMs get new target disks behind representation VMs where they are rebuilt (undone
 * if the operation aborts: only what it created goes). Returns the VMs whose disks had to be
 * created (a delta cannot apply to those) and what the site held of each before.
 */
export async function prepareRebuiltVms(op: Operation, rebuilding: RebuildTarget[]): Promise<{ onNewDisks: string[]; found: FoundPerVm }> {
  if (rebuilding.length === 0) return { onNewDisks: [], found: {} };
  const found = await prepareTargetDisks(op, rebuilding.map(targetVmOf), `create representation VMs for the VMs rebuilt at ${op.to}`);
  return { onNewDisks: rebuilding.filter((t) => t.disks.some((d) => !found[t.name]?.diskIds.includes(d.diskId))).map((t) => t.name), found };
}

/**
 * Where a full rehydration's RocVA goes: beside the first original VM still there (else the first
 * rebuilt one), on the runbook's RocVA networks mapped back to the site (`rocvaNetworksAtPrimary`).
 */
export function rocvaAtOriginalSite(op: Operation, originals: OriginalVms, targets: RebuildTarget[]): Pick<RocvaSpec, 'placement' | 'networks'> {
  const missing = new Set(originals.missing);
  const beside = targets.find((t) => !missing.has(t.name)) ?? targets[0];
  const network = originals.network ?? beside.recovered.spec.nics[0]?.network ?? '';
  return { placement: beside.recovered.spec.placement, networks: rocvaNetworksAtPrimary(op.runbook, network) };
}

/**
 * The original disks stop journaling while failback (or a restore in place: `which`) rewrites
 * them: those writes are not the domain's to replicate. Protection resuming at the site switches
 * journaling on again.
 */
export async function stopJournaling(op: Operation, diskIds: string[], which = 'the original disks'): Promise<void> {
  await op.step(`stop journaling ${which} at ${op.to}`, () =>
    activitiesAt(op.to).stopJournaling.executeWithOptions({ summary: `${diskIds.length} disk(s) of ${op.domain} at ${op.to} stop journaling` }, [{ diskIds }]),
  );
}

/** Do the original disks still hold the position they were left at (handed over or fenced)? */
export async function checkOriginalDisks(op: Operation) {
  return op.step('check the original disks for a delta', () =>
    longActivitiesAt(op.to, '6 hours').checkDeltaBase.executeWithOptions({ summary: `do ${op.domain}'s disks at ${op.to} hold the position they were left at?` }, [{ domain: op.domain }]),
  );
}

/** Applies only the log written since the domain left, onto the original disks. */
export async function rehydrateDelta(op: Operation, base: { from: LogPosition; journalCursor: number }, vms: string[]): Promise<NonNullable<OperationMeasures['rehydration']>> {
  const result = await op.step('rehydrate the changes since the failover (delta)', () =>
    longActivitiesAt(op.to, '6 hours').rehydrateDelta.executeWithOptions({ summary: `apply ${op.domain}'s log since epoch ${base.from.epoch} segment ${base.from.segment} at ${op.to}` }, [
      { domain: op.domain, from: base.from, journalCursor: base.journalCursor },
    ]),
  );
  op.rehydrated(result.bytesWritten);
  for (const vm of vms) op.vm(vm, 'rehydrated');
  return { kind: 'delta', bytesWritten: result.bytesWritten };
}

/** A resolved split-brain marked the original VMs inactive; they are the domain's active copies again. */
export async function reactivate(op: Operation, inactive: string[]): Promise<void> {
  if (inactive.length === 0) return;
  await op.step(`reactivate the original VMs at ${op.to}`, () =>
    activitiesAt(op.to).setVmsActive.executeWithOptions({ summary: `reactivate ${someNames(inactive)} at ${op.to}` }, [{ vms: inactive, active: true, by: workflowInfo().workflowId }]),
  );
}

/**
 * Planned failback, once the domain runs protected at the primary again: the recovery site's
 * copies of the domain (VMs and disks) go, by batch activities of VMS_PER_BATCH. Past the goal:
 * what the failback did before is not undone any more, since its undo would return the domain to
 * these copies.
 */
export async function removeFromSiteLeft(op: Operation, vms: Array<{ name: string; diskIds: string[] }>): Promise<void> {
  if (!patched('removal-from-site-left-in-batches')) return removeOneByOne(op, vms);
  await op.stepPastGoal(`remove ${op.domain} from ${op.from}`, () =>
    forEachBatch(vms, (batch, range) =>
      batchActivitiesAt(op.from).removeRecoveredVmsOfBatch.executeWithOptions({ summary: `remove VMs ${range} and their disks from ${op.from}` }, [{ vms: batch.map((vm) => ({ vm: vm.name, diskIds: vm.diskIds })) }]),
    ),
  );
}

/** As failbacks recorded before the batches ran it: an activity per VM in the operation's history. */
async function removeOneByOne(op: Operation, vms: Array<{ name: string; diskIds: string[] }>): Promise<void> {
  await op.stepPastGoal(`remove ${op.domain} from ${op.from}`, () =>
    forEachVm(vms, async (vm) => {
      await activitiesAt(op.from).removeRecoveredVm.executeWithOptions({ summary: `remove ${vm.name} and its disks from ${op.from}` }, [{ vm: vm.name, diskIds: vm.diskIds }]);
    }),
  );
}

/**
 * The domain comes back up at the site it returns to, its disks holding the recovered data: rebuilt
 * VMs take their representation VMs' place, protection resumes there as the owner (recording,
 * rebuilt to a log position, that its epoch starts from there), VMs a resolved split-brain left
 * inactive are active again, and the runbook's plan powers them on. Undo of the power-on: the
 * original VMs are shut down again, as they were.
 */
export async function comeBackUp(op: Operation, originals: Pick<OriginalVms, 'vms' | 'inactive'>, targets: RebuildTarget[], rebuilt: RebuildTarget[], point?: Pick<RecoveryPoint, 'upTo'>): Promise<void> {
  if (rebuilt.length > 0) await registerInPlaceOfRepresentations(op, rebuilt);
  await resumeProtection(op, targets, point);
  await reactivate(op, originals.inactive);
  undoPowerOn(op, originals.vms);
  await powerOnByPlan(op);
}
