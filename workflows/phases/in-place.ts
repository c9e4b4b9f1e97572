import { workflowInfo } from '@temporalio/workflow';
import type { RecoveryPoint } from '../../activities/handover';
import { failure } from '../../common/failures';
import type { RestorePoint } from '../../datapath/records';
import type { Vm } from '../../sites/provider';
import type { Operation } from '../operation';
import { restorePointNowUpdate } from '../protect';
import { protectionWorkflowId } from '../workflow-ids';
import type { PowerOnPlanInput } from '../power-on-plan';
import { restoredVm } from '../recovered-vm';
import { stopJournaling } from './originals';
import { endProtection } from './protection';
import { protectFromNow } from './protection-resume';
import { byRunbook, disksPerVm, registerVms, rehydrate, type RebuildTarget } from './rebuild';
import { activitiesAt, SITE_RETRY } from './site-activities';
import type { OwnedDomain } from './ownership';
import { someNames } from '../listing';

/**
 * The phases of an operation that stays at the site owning the domain (a restore in place): the
 * domain must be owned there, its VMs are found as they are, the state about to be replaced is
 * kept as a restore point, and a new ownership epoch at the same site supersedes the log written
 * after the point.
 */

/** Reads who owns the domain from the storage site: the operation's site must. */
export async function checkOwnedHere(op: Operation): Promise<OwnedDomain> {
  const owned = await op.step('check ownership', () =>
    activitiesAt(op.to).describeDomain.executeWithOptions({ summary: `read ${op.domain}'s ownership from the storage site` }, [{ domain: op.domain }]),
  );
  if (owned.ownerSite !== op.to) throw failure('NotOwner', `a restore in place runs at the site that owns ${op.domain}, and ${owned.ownerSite ?? 'nobody'} owns it (epoch ${owned.epoch}), not ${op.to}`);
  for (const vm of owned.vms) op.vm(vm, 'protected');
  return owned;
}

/** The domain's VMs as the site has them registered now, which the restore reconfigures from the point's records. */
export async function findVmsAsTheyAre(op: Operation, vms: string[]): Promise<Vm[]> {
  return op.step(`find the VMs at ${op.to}`, () => activitiesAt(op.to).vmsAsTheyAre.executeWithOptions({ summary: `${op.domain}'s VMs at ${op.to} as they are` }, [{ vms }]));
}

/**
 * The point's VMs to restore: those asked for (else all of the point's), each of which must be in
 * the point and registered at the site. Refused before anything changes.
 */
export function chooseVms(op: Operation, targets: RebuildTarget[], current: Vm[], asked?: string[]): RebuildTarget[] {
  const names = asked ?? targets.map((t) => t.name);
  const inPoint = new Set(targets.map((t) => t.name));
  const notInPoint = names.filter((vm) => !inPoint.has(vm));
  if (notInPoint.length > 0) throw failure('UnknownVm', `${someNames(notInPoint)} not in the point ${op.domain} is restored to`);
  const here = new Set(current.map((c) => c.name));
  const notHere = names.filter((vm) => !here.has(vm));
  if (notHere.length > 0) throw failure('UnknownVm', `${someNames(notHere)} not registered at ${op.to}: a restore reverts VMs in place`);
  const chosen = new Set(names);
  return targets.filter((t) => chosen.has(t.name));
}

/**
 * The state about to be replaced, kept as a restore point by the running protection (so that
 * restoring to it undoes the restore). Protection refuses while not every write is logged (an
 * initial sync, bitmap mode): asked again for a few minutes, then the restore aborts unchanged.
 */
export async function keepStateAsRestorePoint(op: Operation, epoch: number): Promise<RestorePoint> {
  const retry = { ...SITE_RETRY, maximumInterval: '10 seconds', maximumAttempts: 20 };
  return op.step('keep the state being replaced as a restore point', () =>
    activitiesAt(op.to, { retry }).keepStateAsRestorePoint.executeWithOptions({ summary: `restore point of ${op.domain} before the restore` }, [
      { protection: { workflowId: protectionWorkflowId(op.domain, op.to, epoch), update: restorePointNowUpdate.name }, updateId: `${workflowInfo().workflowId}/before-restore`, label: `before ${workflowInfo().workflowId}` },
    ]),
  );
}

/** What the undo of a new epoch needs to put the domain back: the saved point, and whether the disks were rewritten yet. */
export interface PutBack {
  saved: RestorePoint;
  point: RecoveryPoint;
  /** The restored VMs, configured from the saved point. */
  targets: RebuildTarget[];
  /** Every VM of the domain: protection covers them all. */
  vms: string[];
  rewritten: boolean;
}

/**
 * A new ownership epoch at the same site: the log after the point is superseded (it stays readable
 * up to where the old epoch was sealed, so earlier points and the saved one remain restorable), and
 * the old epoch's protection is cancelled. Undo (pushed once the epoch is taken): the domain is
 * protected again in yet another epoch, over its disks as they are, after the restored VMs' disks
 * and configuration were put back to the saved point if the restore had begun to rewrite them.
 */
export async function takeNewEpoch(op: Operation, owned: OwnedDomain, back: PutBack): Promise<number> {
  const { epoch } = await op.step(`take a new ownership epoch at ${op.to}`, () =>
    activitiesAt(op.to).claimNextEpoch.executeWithOptions({ summary: `epoch ${owned.epoch + 1} of ${op.domain} for ${op.to}` }, [{ domain: op.domain, fromEpoch: owned.epoch }]),
  );
  op.epoch = epoch;
  op.undo.push(`${op.domain} protected again at ${op.to} in a new epoch (its restored VMs put back to restore point ${back.saved.id} first if their disks had been rewritten)`, async () => {
    const diskIds = back.targets.flatMap((t) => t.disks.map((d) => d.diskId));
    const again = await activitiesAt(op.to).claimNextEpoch.executeWithOptions({ summary: `epoch ${epoch + 1} of ${op.domain} for ${op.to}` }, [{ domain: op.domain, fromEpoch: epoch }]);
    op.epoch = again.epoch;
    if (back.rewritten) {
      await stopJournaling(op, diskIds, 'the disks being put back');
      await rehydrate(op, back.point, back.targets, 'in place');
      await registerVms(op, back.targets);
    }
    await protectFromNow(op, again.epoch, diskIds, back.vms);
  });
  await endProtection(op.domain, op.to, owned.epoch, 'cancel');
  return epoch;
}

/** The saved point as a recovery point, and the restored VMs configured from it: what the undo puts back. */
export function putBackTo(op: Operation, saved: RestorePoint, point: RecoveryPoint, restoring: RebuildTarget[], current: Vm[]): Pick<PutBack, 'point' | 'targets'> {
  const disks = saved.disks ?? point.disks;
  const savedPoint: RecoveryPoint = { ...point, upTo: { kind: 'position', position: saved.position }, dataFrom: saved.timestamp, description: `restore point ${saved.id}`, disks, vms: saved.vms };
  const savedVms = new Map(saved.vms.map((vm) => [vm.name, vm]));
  const disksOf = disksPerVm(disks);
  const configure = restoredVm(current);
  const targets = restoring.flatMap((t) => {
    const meta = savedVms.get(t.name);
    const vmDisks = disksOf.get(t.name) ?? [];
    return meta ? [{ name: t.name, disks: vmDisks, recovered: byRunbook(() => configure(meta, vmDisks.map((d) => d.diskId), op.runbook)) }] : [];
  });
  return { point: savedPoint, targets };
}

/** The runbook's plan over the restored VMs only: every group keeps its place in the order; a group with none of them runs none of its steps. */
export function planOfRestored(plan: PowerOnPlanInput, restored: string[]): PowerOnPlanInput {
  const restoredNames = new Set(restored);
  const groups = plan.powerOn.groups.map((g) => {
    const vms = g.vms.filter((v) => restoredNames.has(v.name));
    return vms.length > 0 ? { ...g, vms } : { ...g, vms, before: [], after: [] };
  });
  return { ...plan, powerOn: { ...plan.powerOn, groups } };
}
