import { allHandlersFinished, condition, continueAsNew, workflowInfo } from '@temporalio/workflow';
import { acceptCompletion } from './completion-acceptance';
import { completeContinuousFailbackUpdate, type ContinuousFailbackCarried, type ContinuousFailbackInput } from './continuous-failback-messages';
import type { CompletionRequest } from './continuous-failover-messages';
import { towardsPrimarySite, type Operation, type OperationMeasures } from './operation';
import type { OperationReport } from './operation-messages';
import { rebuildPlacement } from './recovered-vm';
import { completeFollowing } from './phases/completion';
import { withRunbook } from './phases/runbook';
import { setDomainMode } from './phases/domain-mode';
import { followLog, newFollowing, undoCaughtUpMode, undoFollowedVms, undoFollowerLease, type Following, type FollowerStopped, type PlaceTarget } from './phases/follow';
import { checkOriginalDisks, comeBackUp, findOriginalVms, prepareRebuiltVms, removeFromSiteLeft, returningVm, rocvaAtOriginalSite, stopJournaling, type OriginalVms } from './phases/originals';
import { checkOwnership } from './phases/ownership';
import { byRunbook, deployRocva, removeRocva, resolveRecoveryPoint, undoRocva, type RebuildTarget, rocvaName } from './phases/rebuild';

const FOLLOWING_MODE = 'Continuous Failback in Progress';

/**
 * Continuous failback: while the domain runs in failover at the recovery site, its original disks
 * at the primary follow the recovery site's log in the background (a RocVA there applies it; the
 * original VMs stay powered off), starting from where they were left when a delta check finds them
 * intact, else from the base. A VM no longer at the primary is rebuilt there on new disks, as a
 * failback would. Completing it (`POST /domains/{d}/failback`, planned or forced) moves ownership
 * back, applies only the tail and brings the originals up by the runbook: a failback in seconds.
 * Cancelling it removes what it created at the primary (the RocVA, rebuilt VMs and their disks)
 * and leaves the domain Running in Failover; the original VMs and disks stay.
 */
export async function continuousFailback(input: ContinuousFailbackInput): Promise<OperationReport> {
  const { carried } = input;
  let started: Operation | undefined = undefined;
  const completion = acceptCompletion(completeContinuousFailbackUpdate, input.domain, () => started, 'continuous failback');
  const op = towardsPrimarySite('continuous-failback', await withRunbook(input), carried ? { resumed: carried.progress } : {});
  let state: { following: Following; originals: OriginalVms } | undefined = carried ? resume(op, carried) : undefined;
  started = op;
  return op.run(async () => {
    const { following, originals } = state ?? (await deploy(op));
    state = { following, originals };
    const runsBefore = following.status.followerRuns;
    const runIsLong = () => workflowInfo().continueAsNewSuggested || following.status.followerRuns - runsBefore >= (input.followerRunsPerExecution ?? 500);
    const stopped = await followLog(op, following, { stop: () => completion() !== undefined, runIsLong, caughtUpMode: FOLLOWING_MODE, modeBefore: 'Running in Failover', runningAt: op.from, place: rebuiltPlacement(op, originals) });
    const request = completion();
    if (!request) {
      await condition(allHandlersFinished);
      following.status.generation++;
      return continueAsNew<typeof continuousFailback>({ ...input, carried: carry(op, following, originals) });
    }
    return complete(op, following, stopped, originals, request);
  });
}

/**
 * First run: the original VMs at the primary are found (none may run there), the VMs missing
 * there get representation VMs and new disks, the original disks stop journaling and are checked
 * for a delta, and the RocVA is deployed beside them.
 */
async function deploy(op: Operation): Promise<{ following: Following; originals: OriginalVms }> {
  const owned = await checkOwnership(op, true);
  const originals = await findOriginalVms(op, owned.vms);
  const { point, targets } = await resolveRecoveryPoint(op, undefined, returningVm(originals));
  undoFollowerLease(op);
  const missing = new Set(originals.missing);
  const { onNewDisks, found } = await prepareRebuiltVms(
    op,
    targets.filter((t) => missing.has(t.name)),
  );
  await stopJournaling(
    op,
    point.disks.map((d) => d.diskId),
  );
  // A delta applies to the whole domain's disks as they were left: new ones are not.
  const base = onNewDisks.length > 0 ? undefined : await checkOriginalDisks(op);
  const rocva = await deployRocva(op, rocvaName(op, workflowInfo().runId), rocvaAtOriginalSite(op, originals, targets));
  const following = newFollowing(rocva, point.vms, point.disks, 'Running in Failover');
  // An original VM and its disks were there before: nothing of them is ever removed.
  const inactive = new Set(originals.inactive);
  following.vms = following.vms.map((vm) => ({
    ...vm,
    found: found[vm.meta.name] ?? { vms: [{ name: vm.meta.name, inactive: inactive.has(vm.meta.name), poweredOn: false, placement: originals.placements[vm.meta.name], networks: [] }], diskIds: vm.disks.map((d) => d.diskId) },
  }));
  following.start = base?.usable ? { departure: { from: base.from, journalCursor: base.journalCursor } } : { targetMayHoldData: true };
  op.following(following.status);
  return { following, originals };
}

function carry(op: Operation, following: Following, originals: OriginalVms): ContinuousFailbackCarried {
  const { rocva, vms, cursor, start, status } = following;
  return { progress: op.snapshot(), rocva, vms, ...(cursor ? { cursor } : {}), ...(start ? { start } : {}), status, originals };
}

/** A run continued as new: the same operation, with the undo of what earlier runs created pushed again. */
function resume(op: Operation, carried: ContinuousFailbackCarried): { following: Following; originals: OriginalVms } {
  const { rocva, vms, cursor, start, status, originals } = carried;
  const following: Following = { rocva, vms, status, ...(cursor ? { cursor } : {}), ...(start ? { start } : {}) };
  undoFollowerLease(op);
  undoRocva(op, rocva);
  undoFollowedVms(op, following);
  if (status.recoverableSince !== undefined) undoCaughtUpMode(op, following, 'Running in Failover', op.from);
  op.following(status);
  return { following, originals };
}

/** A VM added while the domain ran in failover is rebuilt at the primary as the failback section places it. */
function rebuiltPlacement(op: Operation, originals: OriginalVms): PlaceTarget {
  return (vm) => byRunbook(() => rebuildPlacement(vm.name, originals.left[vm.name], op.runbook));
}

/**
 * Completion, as its own stage: ownership moves back (planned: the recovery site shuts down in
 * reverse power-on order, drains and hands over; forced: the primary claims the domain, fencing
 * it), the follower applies the tail, and the domain comes up at the primary as a failback brings it.
 */
async function complete(op: Operation, following: Following, stopped: FollowerStopped, originals: OriginalVms, request: CompletionRequest): Promise<OperationMeasures> {
  const { tail, dataFrom } = await completeFollowing(op, following, stopped, request, () => returningTargets(op, following, originals), rebuiltPlacement(op, originals));
  const targets = returningTargets(op, following, originals);
  const vms = targets.map((t) => t.name);
  const missing = new Set(originals.missing);
  const stillThere = new Set(originals.vms.filter((vm) => !missing.has(vm)));
  await comeBackUp(
    op,
    { vms, inactive: originals.inactive },
    targets,
    targets.filter((t) => !stillThere.has(t.name)),
  );
  const rtoMs = op.sinceDeclared();
  const rpoMs = request.type === 'planned' ? 0 : Math.max(0, request.declaredAt - dataFrom);
  await removeRocva(op, following.rocva);
  await setDomainMode(op, 'Protected', vms);
  // A lost recovery site is not contacted: what it holds of the domain is removed when it returns.
  if (request.type === 'planned') await removeFromSiteLeft(op, targets.map((t) => ({ name: t.name, diskIds: t.disks.map((d) => d.diskId) })));
  return { rtoMs, rpoMs, tail: { segments: tail.segmentsApplied, bytesRead: tail.bytesRead, bytesWritten: tail.bytesWritten } };
}

/** The followed VMs as they come back at the primary: originals as they are, the others rebuilt. */
function returningTargets(op: Operation, following: Following, originals: OriginalVms): RebuildTarget[] {
  const configure = returningVm(originals);
  return following.vms.map((vm) => ({
    name: vm.meta.name,
    disks: vm.disks,
    recovered: byRunbook(() =>
      configure(
        vm.meta,
        vm.disks.map((d) => d.diskId),
        op.runbook,
      ),
    ),
  }));
}
