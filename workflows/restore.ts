import { failure } from '../common/failures';
import { atOwningSite } from './operation';
import type { OperationReport } from './operation-messages';
import { checkOwnedHere, chooseVms, findVmsAsTheyAre, keepStateAsRestorePoint, planOfRestored, putBackTo, takeNewEpoch, type PutBack } from './phases/in-place';
import { withRunbook } from './phases/runbook';
import { stopJournaling } from './phases/originals';
import { powerOnByPlan } from './phases/power-on';
import { resumeProtection } from './phases/protection-resume';
import { registerVms, rehydrate, resolveRecoveryPoint } from './phases/rebuild';
import { shutDownInReverseOrder, undoPowerOn } from './phases/shutdown';
import { restoredVm } from './recovered-vm';
import type { RestoreInput, RestoreReport } from './restore-messages';

/**
 * A restore in place: the domain (or the VMs asked for) reverted to a restore point or an instant
 * of its protection window at the site that owns it, which stays the owner. The state being
 * replaced is kept as a restore point first (restoring to it undoes the restore); the VMs shut
 * down; a new ownership epoch at the same site supersedes the log after the point; their disks are
 * rehydrated in place and the VMs reconfigured as the point records them; protection resumes in
 * the new epoch with an initial sync of every disk of the domain (the VMs not restored keep running
 * and keep their data: their disks as they are become the new epoch's base with the restored
 * ones); the runbook's plan powers the restored VMs on. An abort puts the VMs back to the saved
 * point if their disks had been rewritten, and protects the domain again.
 */
export async function restore(request: RestoreInput): Promise<OperationReport> {
  const input = await withRunbook(request);
  const { domain } = input;
  const op = atOwningSite('restore', input, input.site, { memo: { pointInTime: input.pointInTime, vms: input.vms ?? 'all' } });
  return op.run(async () => {
    if (input.confirm !== domain) throw failure('ConfirmationRequired', `a restore of ${domain} rewrites its VMs' disks and must be confirmed by repeating the domain name`);
    const owned = await checkOwnedHere(op);
    const current = await findVmsAsTheyAre(op, owned.vms);
    const { point, targets } = await resolveRecoveryPoint(op, input.pointInTime, restoredVm(current));
    const restoring = chooseVms(op, targets, current, input.vms);
    const names = restoring.map((t) => t.name);
    const restoredNames = new Set(names);

    const saved = await keepStateAsRestorePoint(op, owned.epoch);
    const back: PutBack = { saved, ...putBackTo(op, saved, point, restoring, current), vms: owned.vms, rewritten: false };
    await shutDownInReverseOrder(op, names);
    const epoch = await takeNewEpoch(op, owned, back);
    back.rewritten = true;
    await stopJournaling(op, restoring.flatMap((t) => t.disks.map((d) => d.diskId)), 'the disks being restored');
    await rehydrate(op, point, restoring, 'in place');
    await registerVms(op, restoring);
    // Every disk was rebuilt to the point only when the whole domain was: then the new epoch starts from it.
    const wholeDomain = owned.vms.every((vm) => restoredNames.has(vm));
    await resumeProtection(op, restoring, wholeDomain ? point : undefined, owned.vms);
    undoPowerOn(op, names);
    op.usePowerOnPlan(planOfRestored(op.planInput, names));
    await powerOnByPlan(op);
    const rtoMs = op.sinceDeclared();
    const rpoMs = Math.max(0, input.declaredAt - point.dataFrom);

    const inPoint = new Set(targets.map((t) => t.name));
    const report: RestoreReport = {
      site: op.to,
      savedPoint: { id: saved.id, timestamp: saved.timestamp },
      epochs: { before: owned.epoch, after: epoch },
      vms: owned.vms.map((vm) =>
        restoredNames.has(vm)
          ? { vm, restored: true as const, ...(op.vmState(vm) ? { state: op.vmState(vm) } : {}) }
          : { vm, restored: false as const, why: inPoint.has(vm) ? 'not asked for: kept running, untouched' : 'not in the point: kept as it is' },
      ),
    };
    return { rtoMs, rpoMs, restore: report };
  });
}
