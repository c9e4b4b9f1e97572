import { workflowInfo } from '@temporalio/workflow';
import type { LogPosition } from '../../datapath/records';
import { failure } from '../../common/failures';
import type { Placement, RocvaSpec } from '../../sites/provider';
import type { Operation, OperationMeasures } from '../operation';
import { forEachVm } from '../vm-fan-out';
import { activitiesAt, longActivitiesAt } from './site-activities';

/** The domain's original VMs at the site a failback returns to, and those a resolved split-brain left inactive. */
export interface OriginalVms {
  vms: string[];
  inactive: string[];
  /**
   * Where a RocVA goes at that site: beside the first original VM, on its network (the runbook
   * describes only the recovery site's placement and networks).
   */
  rocvaSite: Pick<RocvaSpec, 'placement' | 'networks'>;
  /** Where each original VM (and so its disks) stands: a full rehydration rewrites the disks there. */
  placements: Record<string, Placement>;
}

/**
 * The original VMs must still be registered at the site the domain returns to: failback brings
 * them back as they are. Checked before ownership moves, so that a missing one changes nothing.
 */
export async function findOriginalVms(op: Operation, vms: string[]): Promise<OriginalVms> {
  const found = await op.step(`find the original VMs at ${op.to}`, () =>
    activitiesAt(op.to).findExisting.executeWithOptions({ summary: `${op.domain}'s original VMs at ${op.to}` }, [{ vms, diskIds: [] }]),
  );
  const missing = vms.filter((vm) => !found.vms.some((v) => v.name === vm));
  if (missing.length > 0) throw failure('OriginalVmMissing', `${missing.join(', ')} of ${op.domain} are no longer registered at ${op.to}: failback brings the original VMs back and cannot rebuild them there`);
  const first = found.vms.find((v) => vms.includes(v.name))!;
  const network = first.networks[0] ?? '';
  return {
    vms,
    inactive: found.vms.filter((v) => v.inactive && vms.includes(v.name)).map((v) => v.name),
    rocvaSite: { placement: first.placement, networks: { externalReplication: network, internal: network, management: network } },
    placements: Object.fromEntries(found.vms.filter((v) => vms.includes(v.name)).map((v) => [v.name, v.placement])),
  };
}

/**
 * The original disks stop journaling while failback rewrites them: those writes are not the
 * domain's to replicate. Protection resuming at the primary switches journaling on again.
 */
export async function stopJournaling(op: Operation, diskIds: string[]): Promise<void> {
  await op.step(`stop journaling the original disks at ${op.to}`, () =>
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
    activitiesAt(op.to).setVmsActive.executeWithOptions({ summary: `reactivate ${inactive.join(', ')} at ${op.to}` }, [{ vms: inactive, active: true, by: workflowInfo().workflowId }]),
  );
}

/**
 * Planned failback, once the domain runs protected at the primary again: the recovery site's
 * copies of the domain (VMs and disks) go. Past the goal: what the failback did before is not
 * undone any more, since its undo would return the domain to these copies.
 */
export async function removeFromSiteLeft(op: Operation, vms: Array<{ name: string; diskIds: string[] }>): Promise<void> {
  await op.stepPastGoal(`remove ${op.domain} from ${op.from}`, () =>
    forEachVm(vms, async (vm) => {
      await activitiesAt(op.from).removeRecoveredVm.executeWithOptions({ summary: `remove ${vm.name} and its disks from ${op.from}` }, [{ vm: vm.name, diskIds: vm.diskIds }]);
    }),
  );
}
