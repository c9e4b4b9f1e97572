import { allHandlersFinished, condition, continueAsNew, workflowInfo } from '@temporalio/workflow';
import { acceptCompletion } from './completion-acceptance';
import { failure } from '../common/failures';
import { completeContinuousFailoverUpdate, type CompletionRequest, type ContinuousFailoverInput } from './continuous-failover-messages';
import { towardsRecoverySite, type Operation, type OperationMeasures } from './operation';
import type { OperationReport } from './operation-messages';
import { completeFollowing } from './phases/completion';
import { withRunbook } from './phases/runbook';
import { setDomainMode } from './phases/domain-mode';
import { followLog, newFollowing, prepareFollowedVms, undoCaughtUpMode, undoFollowedVms, undoFollowerLease, type Following, type FollowerStopped } from './phases/follow';
import { checkOwnership } from './phases/ownership';
import { powerOnByPlan } from './phases/power-on';
import { resumeProtection } from './phases/protection-resume';
import { deployRocva, registerInPlaceOfRepresentations, removeRocva, resolveRecoveryPoint, undoRocva, type RebuildTarget, rocvaName } from './phases/rebuild';
import { recoveredVm, RecoveredVmError, runbookVm } from './recovered-vm';
import type { Runbook } from '../runbooks/schema';

const FOLLOWING_MODE = 'Continuous Rehydration in Progress';

/**
 * Continuous failover: the domain's VMs keep running at the primary while the recovery site holds
 * a copy that follows the replication log (a RocVA, representation VMs and target disks, matched
 * to VMs and disks added or removed at the primary). Completing it (planned or forced) moves
 * ownership, applies the last of the log and brings the VMs up by the runbook: near-zero RTO.
 * Cancelling it removes everything it created at the recovery site; protection is never touched.
 */
export async function continuousFailover(input: ContinuousFailoverInput): Promise<OperationReport> {
  const { domain, carried } = input;
  let following: Following | undefined;
  let started: Operation | undefined = undefined;
  const completion = acceptCompletion(completeContinuousFailoverUpdate, domain, () => started, 'continuous failover', (request, op) => {
    // A VM the completion's runbook cannot place is refused here, while the copy keeps following.
    const completionRunbook = request.runbook?.runbook ?? op.runbook;
    const unplaced = unplacedVm(following, completionRunbook);
    return unplaced && `VM ${unplaced} was added to ${domain} but is not in runbook ${completionRunbook.metadata.name}: add it to the runbook, then complete`;
  });
  const op = towardsRecoverySite('continuous-failover', await withRunbook(input), carried ? { resumed: carried.progress } : {});
  following = carried ? resume(op, carried) : undefined;
  started = op;
  return op.run(async () => {
    const followed = following ?? (await deploy(op));
    following = followed;
    const runsBefore = followed.status.followerRuns;
    const runIsLong = () => workflowInfo().continueAsNewSuggested || followed.status.followerRuns - runsBefore >= (input.followerRunsPerExecution ?? 500);
    const stopped = await followLog(op, followed, { stop: () => completion() !== undefined, runIsLong, caughtUpMode: FOLLOWING_MODE, modeBefore: 'Protected', runningAt: op.from });
    const request = completion();
    if (!request) {
      await condition(allHandlersFinished);
      followed.status.generation++;
      return continueAsNew<typeof continuousFailover>({
        ...input,
        carried: { progress: op.snapshot(), rocva: followed.rocva, vms: followed.vms, ...(followed.cursor ? { cursor: followed.cursor } : {}), status: followed.status },
      });
    }
    return complete(op, followed, stopped, request);
  });
}

/** First run: the latest consistent point tells which VMs and disks; RocVA and representation VMs are put in place. */
async function deploy(op: Operation): Promise<Following> {
  await checkOwnership(op, true);
  const { point } = await resolveRecoveryPoint(op);
  undoFollowerLease(op);
  const rocva = await deployRocva(op, rocvaName(op, workflowInfo().runId));
  const following = newFollowing(rocva, point.vms, point.disks, 'Protected');
  await prepareFollowedVms(op, following);
  op.following(following.status);
  return following;
}

/** A run continued as new: the same operation, with the undo of what earlier runs created pushed again. */
function resume(op: Operation, carried: NonNullable<ContinuousFailoverInput['carried']>): Following {
  const following: Following = { rocva: carried.rocva, vms: carried.vms, status: carried.status, ...(carried.cursor ? { cursor: carried.cursor } : {}) };
  undoFollowerLease(op);
  undoRocva(op, carried.rocva);
  undoFollowedVms(op, following);
  if (carried.status.recoverableSince !== undefined) undoCaughtUpMode(op, following, 'Protected', op.from);
  op.following(following.status);
  return following;
}

/**
 * Completion, as its own stage: ownership moves (planned: shutdown in reverse power-on order,
 * drain and handover; forced: takeover fencing the primary), the follower applies the rest of the
 * log, and the remaining phases of a failover bring the VMs up at the recovery site.
 */
async function complete(op: Operation, following: Following, stopped: FollowerStopped, request: CompletionRequest): Promise<OperationMeasures> {
  const { tail, dataFrom } = await completeFollowing(op, following, stopped, request, () => rebuildTargets(op, following));
  const targets = rebuildTargets(op, following);
  await registerInPlaceOfRepresentations(op, targets);
  await resumeProtection(op, targets);
  await powerOnByPlan(op);
  const rtoMs = op.sinceDeclared();
  const rpoMs = request.type === 'planned' ? 0 : Math.max(0, request.declaredAt - dataFrom);
  await removeRocva(op, following.rocva);
  await setDomainMode(
    op,
    'Running in Failover',
    targets.map((t) => t.name),
  );
  return { rtoMs, rpoMs, tail: { segments: tail.segmentsApplied, bytesRead: tail.bytesRead, bytesWritten: tail.bytesWritten } };
}

/** The followed VMs as the completion's runbook registers them. */
function rebuildTargets(op: Operation, following: Following): RebuildTarget[] {
  return following.vms.map((vm) => {
    try {
      return { name: vm.meta.name, disks: vm.disks, recovered: recoveredVm(vm.meta, vm.disks.map((d) => d.diskId), op.runbook) };
    } catch (error) {
      if (error instanceof RecoveredVmError) throw failure('RunbookMismatch', `${error.message}: add it to the runbook and complete again`);
      throw error;
    }
  });
}

/** A followed VM the runbook does not list (added at the primary after the runbook was written). */
function unplacedVm(following: Following | undefined, runbook: Runbook): string | undefined {
  return following?.vms.find((vm) => !runbookVm(runbook, vm.meta.name))?.meta.name;
}
