import { ActivityCancellationType, CancellationScope, condition, patched, workflowInfo } from '@temporalio/workflow';
import type { DomainMode } from '../../common/domain-modes';
import type { FollowCursor, FollowResult } from '../../datapath/follower';
import type { DomainDisk, LogPosition, VmMetadata } from '../../datapath/records';
import { workflowNow } from '../clock';
import type { Operation } from '../operation';
import type { FollowingStatus } from '../operation-messages';
import { placementFor } from '../recovered-vm';
import { forEachVm } from '../vm-fan-out';
import { setDomainMode } from './domain-mode';
import type { ExistingAtSite } from '../../activities/recovery-site';
import type { Placement } from '../../sites/provider';
import { disksPerVm, prepareTargetDisks, undoTarget, type FoundPerVm, type TargetVm } from './rebuild';
import { someNames } from '../listing';
import { activitiesAt } from './site-activities';

/** A VM whose target disks follow the log: its configuration as the manifest last showed it. */
export interface FollowedVm {
  meta: VmMetadata;
  disks: DomainDisk[];
  /** What the site held of this VM before the operation first prepared it: every undo of it, also after continue-as-new, leaves that. */
  found?: ExistingAtSite;
}

/** What following carries from run to run (and across continue-as-new). */
export interface Following {
  /** The appliance that holds the target disks while they follow. */
  rocva: { name: string };
  vms: FollowedVm[];
  cursor?: FollowCursor;
  /** What the target disks hold before the follower's first cursor; absent: zeros (new disks). */
  start?: FollowStart;
  status: FollowingStatus;
}

/**
 * Disks that already hold the domain (a continuous failback's original disks): at the departure
 * position a delta check found (only the log after it is applied), or older data that a start
 * from the base overwrites, zeros included.
 */
export type FollowStart = { departure: { from: LogPosition; journalCursor: number } } | { targetMayHoldData: true };

/** How long one follower activity runs before the workflow sees its progress. */
export const FOLLOWER_RUN_MS = 5_000;

/**
 * The follower: one activity at the site the domain moves to, applying each new segment of the
 * log to the target disks. Short heartbeat timeout: a completion cancels the running follower,
 * and the cancellation reaches it with its next heartbeat. `awaitsCancel`: a cancelled run is
 * known to have ended (it writes the target disks no more) only when its activity has.
 */
const follower = (site: string, runForMs: number, awaitsCancel = false) =>
  activitiesAt(site, {
    startToCloseTimeout: runForMs + 60_000,
    heartbeatTimeout: '3 seconds',
    ...(awaitsCancel ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
  });

/** Where a VM's target disks go at the site: by default the runbook's recovery placement. */
export type PlaceTarget = (vm: VmMetadata) => Placement;
const byRecoveryPlacement = (op: Operation): PlaceTarget => (vm) => placementFor(vm.name, op.runbook);

const targetVm = (vm: FollowedVm, place: PlaceTarget): TargetVm => ({ name: vm.meta.name, disks: vm.disks, placement: place(vm.meta) });

export function newFollowing(rocva: { name: string }, vms: VmMetadata[], disks: DomainDisk[], mode: DomainMode): Following {
  const disksOf = disksPerVm(disks);
  const followed = vms.map((meta) => ({ meta, disks: disksOf.get(meta.name) ?? [] }));
  return {
    rocva,
    vms: followed,
    status: {
      mode,
      vms: followed.length,
      disks: disks.length,
      lag: { ms: 0, bytes: 0, segments: 0 },
      followerRuns: 0,
      segmentsApplied: 0,
      bytesWritten: 0,
      bytesRead: { base: 0, log: 0 },
      generation: 0,
    },
  };
}

/** Representation VMs holding target disks for every followed VM. */
export async function prepareFollowedVms(op: Operation, following: Following): Promise<void> {
  const found = await prepareTargetDisks(
    op,
    following.vms.map((vm) => targetVm(vm, byRecoveryPlacement(op))),
  );
  following.vms = following.vms.map((vm) => withFound(vm, found[vm.meta.name]));
}

const withFound = (vm: FollowedVm, found: ExistingAtSite | undefined): FollowedVm => (found ? { ...vm, found } : vm);

/** A run continued as new pushes the undo of every target VM it carries again; a VM the site held whole before (an original VM) has none. */
export function undoFollowedVms(op: Operation, following: Following): void {
  for (const vm of following.vms) if (!heldBefore(vm)) undoTarget(op, { name: vm.meta.name, disks: vm.disks }, vm.found);
}

const heldBefore = (vm: FollowedVm) => Boolean(vm.found?.vms.some((v) => v.name === vm.meta.name) && vm.disks.every((d) => vm.found?.diskIds.includes(d.diskId)));

/** Undo: the follower's reader lease goes, so garbage collection need not wait for it to expire. */
export function undoFollowerLease(op: Operation): void {
  op.undo.push(`follower's lease on the log released`, async () => {
    await activitiesAt(op.to).releaseFollowerLease.executeWithOptions({ summary: `release the follower's lease on ${op.domain}'s log` }, [{ domain: op.domain }]);
  });
}

export interface FollowOptions {
  /** Ends following: the running follower is cancelled, and `FollowerStopped.lastRun` ends with it. */
  stop: () => boolean;
  /** Ends this run of following so the workflow can continue as new. */
  runIsLong: () => boolean;
  /** Recorded once the target disks first catch up with the log. */
  caughtUpMode: DomainMode;
  /** The mode the operation started from, which the undo of the caught-up mode records again. */
  modeBefore: DomainMode;
  /** Where the domain's VMs run meanwhile. */
  runningAt: string;
  /** Where the target disks of a VM added meanwhile go; default: the runbook's recovery placement. */
  place?: PlaceTarget;
}

/**
 * The follower run that `stop` cancelled, still ending at its site while the completion moves
 * ownership: `applyTail` waits for it, so that no two followers write the target disks at once (a
 * cancelled run stuck on a slow store would otherwise write an older segment over the tail's).
 * Its result when it finished its run instead (a later cursor), else undefined.
 */
export interface FollowerStopped {
  lastRun: Promise<FollowResult | undefined>;
}

/**
 * Follows the log until `stop` or `runIsLong`: follower runs one after another, the target
 * matched to the domain whenever VMs or disks were added or removed at the site it runs at, the
 * domain's mode recorded at the first catch-up (undo: back to Protected).
 */
export async function followLog(op: Operation, following: Following, options: FollowOptions): Promise<FollowerStopped> {
  while (!options.stop() && !options.runIsLong()) {
    const run = await followerRun(op, following, options.stop);
    if ('stopped' in run) return { lastRun: run.stopped };
    const result = run.result;
    await takeRun(op, following, result, options.place ?? byRecoveryPlacement(op));
    if (following.status.recoverableSince === undefined && result.caughtUp) {
      await setDomainMode(
        op,
        options.caughtUpMode,
        following.vms.map((vm) => vm.meta.name),
        options.runningAt,
      );
      undoCaughtUpMode(op, following, options.modeBefore, options.runningAt);
      following.status.recoverableSince = workflowNow();
      op.following(following.status);
    }
  }
  return { lastRun: Promise.resolve(undefined) };
}

/** The undo of the caught-up mode; a run continued as new pushes it again when it carries that mode. */
export function undoCaughtUpMode(op: Operation, following: Following, modeBefore: DomainMode, runningAt: string): void {
  op.undo.push(`${op.domain} ${modeBefore} again at ${runningAt}`, async () => {
    await activitiesAt(op.to).setDomainStatus.executeWithOptions({ summary: `${op.domain}: ${modeBefore} at ${runningAt}` }, [
      { domain: op.domain, mode: modeBefore, runningAt, vms: following.vms.map((vm) => ({ name: vm.meta.name, protection: 'Recoverable' as const })), setBy: workflowInfo().workflowId },
    ]);
  });
}

/** One follower run: its result, or, once `stop` cancelled it, how it ends. */
async function followerRun(op: Operation, following: Following, stop: () => boolean): Promise<{ result: FollowResult } | { stopped: Promise<FollowResult | undefined> }> {
  const scope = new CancellationScope();
  const run = scope.run(() =>
    follower(op.to, FOLLOWER_RUN_MS, patched('completion-awaits-stopped-follower')).followLog.executeWithOptions({ summary: followSummary(following) }, [
      { domain: op.domain, targetSite: op.to, disks: following.vms.flatMap((vm) => vm.disks), ...startOf(following), runForMs: FOLLOWER_RUN_MS },
    ]),
  );
  const ended = run.catch((error: unknown) => {
    // Once stopped, the tail applies what this run would have: only that it has ended matters.
    if (stop() && !CancellationScope.current().consideredCancelled) return undefined;
    throw error;
  });
  // Never settles when the operation itself is cancelled (then the run's own cancellation ends it),
  // nor once the run has ended by itself: its watch is cancelled, or every run would leave one.
  const watch = new CancellationScope();
  const stopped = new Promise<'stopped'>((resolve) => {
    void watch.run(() => condition(stop)).then(
      () => {
        scope.cancel();
        resolve('stopped');
      },
      () => undefined,
    );
  });
  // A stop while the run is under way is seen before its end: the completion goes on as it ends.
  const first = await Promise.race([ended.then((result) => ({ result })), stopped]);
  if (first === 'stopped') return { stopped: ended };
  watch.cancel();
  if (first.result === undefined) return { stopped: Promise.resolve(undefined) };
  return { result: first.result };
}

/** Where the follower resumes: its cursor, else what the target disks held when following began. */
const startOf = (following: Following) => (following.cursor ? { cursor: following.cursor } : (following.start ?? {}));

function followSummary(following: Following): string {
  const at = following.cursor?.applied ?? (following.start && 'departure' in following.start ? following.start.departure.from : undefined);
  if (at) return `follow the log after epoch ${at.epoch} segment ${at.segment}`;
  return following.start ? 'overwrite the disks with the latest consistent point, then follow the log' : 'rehydrate to the latest consistent point, then follow the log';
}

function recordRun(op: Operation, following: Following, result: FollowResult): void {
  const s = following.status;
  if (result.cursor) following.cursor = result.cursor;
  s.followerRuns++;
  s.segmentsApplied += result.segmentsApplied;
  s.bytesWritten += result.bytesWritten;
  s.bytesRead = { base: s.bytesRead.base + result.bytesRead.base, log: s.bytesRead.log + result.bytesRead.log };
  s.lag = result.lag;
  if (result.appliedUpTo) s.appliedUpTo = result.appliedUpTo;
  if (result.heldAt) s.heldAt = result.heldAt;
  else delete s.heldAt;
  op.rehydrated(s.bytesWritten);
  op.following(s);
}

/** A follower run's progress recorded, and the target matched to the domain when its VMs or disks changed. */
async function takeRun(op: Operation, following: Following, result: FollowResult, place: PlaceTarget): Promise<void> {
  recordRun(op, following, result);
  if (result.membershipChanged) await matchTargets(op, following, result.membershipChanged, place);
}

/**
 * VMs and disks were added or removed where the domain runs: new VMs get representation VMs and
 * target disks, VMs with new disks get them created and attached, removed disks and VMs go.
 */
async function matchTargets(op: Operation, following: Following, manifest: { vms: VmMetadata[]; disks: DomainDisk[] }, place: PlaceTarget): Promise<void> {
  const before = new Map(following.vms.map((vm) => [vm.meta.name, vm]));
  const disksOf = disksPerVm(manifest.disks);
  const after = manifest.vms.map((meta) => ({ meta, disks: disksOf.get(meta.name) ?? [] }));
  const names = new Set(after.map((vm) => vm.meta.name));
  const changed = after.filter((vm) => {
    const old = before.get(vm.meta.name);
    return !old || old.disks.map((d) => d.diskId).join() !== vm.disks.map((d) => d.diskId).join();
  });
  const removed = following.vms.filter((vm) => !names.has(vm.meta.name));
  const words = [...changed.map((vm) => (before.has(vm.meta.name) ? `~${vm.meta.name}` : `+${vm.meta.name}`)), ...removed.map((vm) => `-${vm.meta.name}`)];
  let found: FoundPerVm = {};
  if (changed.length > 0) {
    found = await prepareTargetDisks(
      op,
      changed.map((vm) => targetVm(vm, place)),
      `match the recovery site to the domain (${someNames(words)})`,
    );
    const detached = changed.flatMap((vm) => {
      const old = before.get(vm.meta.name);
      // A disk the site held before this operation is not the operation's to remove.
      return (old?.disks ?? []).filter((d) => !vm.disks.some((n) => n.diskId === d.diskId) && !old?.found?.diskIds.includes(d.diskId));
    });
    if (detached.length > 0) {
      await op.step(`remove ${detached.length} detached target disk(s)`, () =>
        forEachVm(detached, async (d) => {
          await activitiesAt(op.to).removeTargetDisk.executeWithOptions({ summary: `remove target disk ${d.diskId} of ${d.vm}` }, [{ vm: d.vm, diskId: d.diskId }]);
        }),
      );
    }
  }
  if (removed.length > 0) {
    await op.step(`remove ${removed.length} VM(s) no longer in the domain`, () =>
      forEachVm(removed, async (vm) => {
        await activitiesAt(op.to).removeRecoveredVm.executeWithOptions({ summary: `remove ${vm.meta.name} from ${op.to}` }, [{ vm: vm.meta.name, diskIds: vm.disks.map((d) => d.diskId), ...(vm.found ? { found: vm.found } : {}) }]);
        op.vm(vm.meta.name, 'removed');
      }),
    );
  }
  // A VM prepared before keeps what was found then: a second look would take this operation's own disks for the site's.
  following.vms = after.map((vm) => {
    const old = before.get(vm.meta.name);
    return withFound(vm, old ? old.found : found[vm.meta.name]);
  });
  following.status.vms = after.length;
  following.status.disks = manifest.disks.length;
  op.following(following.status);
}

/**
 * Completion: the follower applies what is left of the log, which ownership has sealed (a planned
 * handover after its last segment, a forced takeover after the last segment the site could read),
 * once the run that following stopped has ended (resuming from its cursor when it finished its
 * run). VMs or disks that changed just before are matched first. Only the tail is read.
 */
export async function applyTail(op: Operation, following: Following, stopped: FollowerStopped, place: PlaceTarget = byRecoveryPlacement(op)): Promise<FollowResult> {
  const lastRun = await stopped.lastRun;
  if (lastRun) await takeRun(op, following, lastRun, place);
  for (;;) {
    const tail = await op.step('apply the rest of the log', () =>
      follower(op.to, 30 * 60_000).followLog.executeWithOptions({ summary: `apply the log tail after ${followSummary(following)}` }, [
        { domain: op.domain, targetSite: op.to, disks: following.vms.flatMap((vm) => vm.disks), ...startOf(following), runForMs: 30 * 60_000, untilEnd: true },
      ]),
    );
    await takeRun(op, following, tail, place);
    if (!tail.membershipChanged) return tail;
  }
}
