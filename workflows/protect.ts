import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  log,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  patched,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { DatapathActivities, Membership } from '../activities/datapath';
import type { DomainStatusActivities } from '../activities/domain-status';
import type { DiskSyncState } from '../datapath/disk-sync';
import type { EveryDiskLoggedRequest } from '../datapath/membership';
import type { DomainDisk, RestorePoint, RestorePointSummary, VmMetadata } from '../datapath/records';
import { workflowNow } from './clock';
import { siteTaskQueue } from './task-queues';
import { whyNoRestorePoint } from './restore-point-refusal';
import { CANNOT_HEAL, failure } from '../common/failures';

export interface ProtectInput {
  domain: string;
  /** The protected site: the replicator runs on its task queue and drains its journal. */
  site: string;
  /**
   * VMs to protect. Following membership, the domain's VMs are those tagged `protectedDomain:
   * <domain>` at the site plus those listed here without a tag; see datapath/membership.ts.
   */
  vms: string[];
  protectionWindowMs: number;
  restorePointIntervalMs: number;
  /** Length of one replicator activity run; the status refreshes after each. */
  replicatorRunMs?: number;
  /** When replication counts as behind and bitmap mode takes over; defaults 100 000 writes, 5 minutes. */
  throttle?: { maxBacklogEntries?: number; maxLagMs?: number };
  /** Garbage collection (compaction into a base, deletion of what nothing needs) after every this many replicator runs; default 30. */
  gcEveryRuns?: number;
  /** How long protection waits before trying again while the object store refuses the site worker's credentials; default 30 s. */
  accessRetryMs?: number;
  /**
   * In log mode the domain's VMs at the site are looked at after every this many replicator runs;
   * default 3: every 30 s at the default run length. A look lists the site, and every protected
   * domain looks: after every run, 100 domains made 10 listings a second of steady load.
   */
  membershipEveryRuns?: number;
  /** Replicator runs per workflow execution before continue-as-new (history stays bounded). */
  runsPerExecution?: number;
  /**
   * Copy the current contents of every protected disk into a base of the current epoch before
   * restore points are made (background replication). Default: true for a new protection (no
   * `carried`), false when continuing as new.
   */
  initialSync?: boolean;
  /**
   * Protection resumed by a new owner that has already claimed `epoch` (a failover): no claim;
   * drain the site's journal from `cursor`, re-record the manifest for `site`, then the initial
   * sync makes the recovered disks the base of the new epoch. The recovered disks must already be
   * protected (journaled) at `site` and belong to the `vms` there: the manifest lists only those,
   * and `cursor` must be at or after the journal position of the rehydration's last write.
   */
  start?: { epoch: number; cursor: number };
  /** Carried across continue-as-new. */
  carried?: {
    epoch: number;
    cursor: number;
    lastRestorePoint?: { id: string; timestamp: number };
    base?: string;
    runsSinceGc?: number;
    /** Runs before `membership`: the members whole. */
    members?: VmMetadata[];
    membership?: Membership;
    durableAsOf?: number;
    bytesReplicated?: number;
    /** The last garbage collection, which the status shows across runs (it runs every few replicator runs). */
    lastGc?: ProtectStatus['lastGc'];
  };
}

/**
 * `log`: every write is logged. `initial-sync`: the disks are being copied into a base. `bitmap`:
 * replication fell behind its throttle; the journal is drained into dirty regions instead. `resync`:
 * the dirty regions are read back into the log and the log catches up. Restore points are made
 * only in `log`.
 */
export type ProtectMode = 'log' | 'initial-sync' | 'bitmap' | 'resync';

export interface ProtectStatus {
  domain: string;
  site: string;
  epoch: number;
  cursor: number;
  lagMs: number;
  /** Every write journaled before this time is in the log, as of the last replicator run (see `ReplicationProgress.durableAsOf`). */
  durableAsOf?: number;
  /** The RPO target of the domain's latest runbook, as protection last read it (at each execution's start and garbage collection). */
  rpoTargetSeconds?: number;
  backlogEntries: number;
  /** Bytes of the domain's writes journaled and not yet in the log, as of the last replicator run. */
  lagBytes?: number;
  /** Bytes of writes protection has put in the log, across continue-as-new (this protection only: a new epoch starts again from zero). */
  bytesReplicated?: number;
  segmentsWritten: number;
  mode: ProtectMode;
  /** The latest mode changes, oldest first (at most 20). */
  modeChanges: Array<{ mode: ProtectMode; at: number; cursor: number }>;
  /** The newest base this protection committed (initial sync). */
  base?: string;
  initialSync?: { bytesRead: number; chunksStored: number; durationMs: number };
  lastGc?: { at: number; compactedInto?: string; oldestNeededBase?: string; deleted: { points: number; segments: number; bases: number; leases: number }; skipped?: string };
  lastRestorePoint?: { id: string; timestamp: number };
  /** The domain's VMs as protection last saw them at the site. */
  vms: string[];
  /** New disks being copied into the log while the others keep being logged write by write; no restore point until it is finished. */
  diskSync?: { disks: string[]; copiedDisks: number; startSegment?: number };
  /**
   * Why protection is not making progress: the object store refuses the site worker's credentials
   * (the message names the bucket and key). It tries again at `retryAt`; gone once a try succeeds.
   */
  failing?: ProtectionFailing;
  stopping: boolean;
}

export const PROTECTION_FAILURES = ['ObjectStoreAccessDenied'] as const;

export interface ProtectionFailing {
  reason: (typeof PROTECTION_FAILURES)[number];
  message: string;
  /** When the first of the failed tries in a row failed. */
  since: number;
  retryAt: number;
}

/** Seconds since every write was known durable (an upper bound of the RPO), or undefined before the first replicator run says. */
export function rpoBound(status: Pick<ProtectStatus, 'durableAsOf'>, now: number): number | undefined {
  return status.durableAsOf === undefined ? undefined : Math.max(0, Math.round((now - status.durableAsOf) / 100) / 10);
}

export const protectStatusQuery = defineQuery<ProtectStatus>('protectStatus');
/** An on-demand restore point at the current end of the log, with the operator's label if given; returns the point's summary. */
export const restorePointNowUpdate = defineUpdate<RestorePointSummary, [{ label?: string } | undefined]>('restorePointNow');
/**
 * Answers once every disk of the manifest is in the log with every write (no initial sync, bitmap
 * episode or disk sync under way): a planned handover seals the log only then, as a log sealed
 * inside one has no restorable end. Answers at once when nothing is under way; `lookFirst`: after a
 * look at the members that began once it was asked (the handover found a disk at the site that the
 * manifest does not list).
 */
export const everyDiskLoggedUpdate = defineUpdate<void, [EveryDiskLoggedRequest?]>('everyDiskLogged');
/** Ends protection after the current replicator run, or once a running initial sync is committed (planned failover drains first, then stops it). */
export const stopProtectionSignal = defineSignal('stopProtection');

/**
 * Protection of one domain: claims it for the protected site (or takes over an epoch a failover
 * claimed), snapshots its manifest, copies the disks into a base (initial sync) while a
 * replicator activity on the site's queue logs every write, and records restore points on a
 * policy and on demand once the base exists, continuing as new to keep history bounded.
 */
export async function protect(input: ProtectInput): Promise<ProtectStatus> {
  const taskQueue = siteTaskQueue(input.site);
  const acts = proxyActivities<DatapathActivities>({ taskQueue, startToCloseTimeout: '1 minute', retry: { maximumInterval: '10 seconds' } });
  // Members joining switch each disk to journaling: thousands at a domain's first manifest.
  const membershipActs = proxyActivities<DatapathActivities>({ taskQueue, startToCloseTimeout: '30 minutes', heartbeatTimeout: '30 seconds', retry: { maximumInterval: '10 seconds' } });
  const runMs = input.replicatorRunMs ?? 10_000;
  const { replicateJournal } = proxyActivities<DatapathActivities>({
    taskQueue,
    startToCloseTimeout: runMs + 60_000,
    heartbeatTimeout: '5 seconds',
    retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds', nonRetryableErrorTypes: CANNOT_HEAL },
  });

  const { initialSync } = proxyActivities<DatapathActivities>({
    taskQueue,
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds', nonRetryableErrorTypes: CANNOT_HEAL },
  });

  const { collectGarbage } = proxyActivities<DatapathActivities>({
    taskQueue,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '10 seconds',
    // The next interval runs it again anyway; each of its steps is safe to repeat.
    retry: { maximumAttempts: 2 },
  });

  const wantSync = input.initialSync ?? !input.carried;
  const status: ProtectStatus = {
    domain: input.domain,
    site: input.site,
    epoch: input.carried?.epoch ?? input.start?.epoch ?? 0,
    cursor: input.carried?.cursor ?? input.start?.cursor ?? 0,
    lagMs: 0,
    ...(input.carried?.durableAsOf !== undefined ? { durableAsOf: input.carried.durableAsOf } : {}),
    ...(input.carried?.bytesReplicated !== undefined ? { bytesReplicated: input.carried.bytesReplicated } : {}),
    ...(input.carried?.lastGc ? { lastGc: input.carried.lastGc } : {}),
    backlogEntries: 0,
    segmentsWritten: 0,
    mode: wantSync ? 'initial-sync' : 'log',
    modeChanges: [],
    base: input.carried?.base,
    lastRestorePoint: input.carried?.lastRestorePoint,
    vms: input.carried?.membership?.names ?? input.carried?.members?.map((vm) => vm.name) ?? input.vms,
    stopping: false,
  };
  if (wantSync) status.modeChanges.push({ mode: 'initial-sync', at: workflowNow(), cursor: status.cursor });
  setHandler(protectStatusQuery, () => status);
  setHandler(stopProtectionSignal, () => {
    status.stopping = true;
  });

  // Protections started before membership was followed keep their fixed VM list when replayed.
  const followsMembership = patched('protection-follows-membership');
  let members: VmMetadata[] | undefined = input.carried?.members;
  let membership: Membership | undefined = input.carried?.membership;
  /** Disks that joined and wait for their disk sync; the running one, as far as the replicator got. */
  let syncQueue: DomainDisk[] = [];
  let diskSync: DiskSyncState | undefined;
  /** Looks at the members, numbered: one `asked` by a handover comes after the next replicator run, and the handover waits for it to be `done`. */
  const membershipLooks = { started: 0, done: 0, asked: false };
  const memberNames = () => membership?.names ?? members?.map((vm) => vm.name) ?? input.vms;
  const memberDisks = () => membership?.diskIds ?? members?.flatMap((vm) => vm.diskIds);
  /** `first`: no members are known yet. Otherwise as this run knows them, or (neither) as the manifest lists them. */
  const refreshMembership = async (first?: 'first') => {
    const known = first ? { known: [] } : membership ? { knownDigest: membership.digest } : members ? { known: members } : {};
    const change = await membershipActs.refreshMembership.executeWithOptions({ summary: `membership of ${input.domain} at ${input.site}` }, [
      { domain: input.domain, site: input.site, vms: input.vms, protectionWindowMs: input.protectionWindowMs, ...known },
    ]);
    if (!change) return undefined;
    // A change recorded before `membership` carried the members whole.
    const whole = (change as { vms?: VmMetadata[] }).vms;
    membership = whole ? undefined : change.membership;
    members = whole;
    status.vms = memberNames();
    const removed = new Set(change.removed);
    syncQueue = syncQueue.filter((d) => !removed.has(d.diskId));
    return change;
  };
  const recordManifest = async () => {
    // Every disk of a new manifest is copied by the initial sync; none waits for a disk sync.
    if (followsMembership) await refreshMembership('first');
    else await acts.recordManifest({ domain: input.domain, site: input.site, vms: input.vms, protectionWindowMs: input.protectionWindowMs });
  };
  // Continuing as new (`carried`), the first execution has claimed and recorded the manifest.
  if (input.start && !input.carried) {
    await recordManifest();
  } else if (!input.carried) {
    const claim = await acts.claimDomain.executeWithOptions({ summary: `claim ${input.domain} for ${input.site}` }, [{ domain: input.domain, site: input.site, takeover: false }]);
    if (!claim.won) throw failure('DomainOwnedElsewhere', `domain ${input.domain} is owned by site ${claim.ownerSite} (epoch ${claim.epoch})`);
    status.epoch = claim.epoch;
    await recordManifest();
  } else if (followsMembership && !members && !membership) {
    // Continued from an execution that did not follow membership: compared with what its manifest
    // lists. While nothing changed, the members are the manifest's: `input.vms`, as it recorded them.
    syncQueue = (await refreshMembership())?.added ?? [];
  }

  const makePoint = async (reason: RestorePoint['reason'], label?: string): Promise<RestorePointSummary> => {
    const point = await acts.createRestorePoint.executeWithOptions({ summary: `${reason} restore point${label !== undefined ? ` "${label}"` : ''}` }, [
      { domain: input.domain, reason, ...(label !== undefined ? { label } : {}) },
    ]);
    status.lastRestorePoint = { id: point.id, timestamp: point.timestamp };
    return point;
  };
  // Restore points outside log mode are refused twice: here (none is asked for in another mode) and
  // by the store (a point needs the end of the log to be plannable: no unfinished sync or resync).
  // Updates accepted before labels existed carry no argument.
  setHandler(restorePointNowUpdate, (request) => makePoint('on-demand', request?.label), {
    validator: (_request: { label?: string } | undefined) => {
      const refusal = whyNoRestorePoint(status);
      if (refusal) throw new Error(`protection of ${input.domain} at ${input.site} (epoch ${status.epoch}) ${refusal}`);
    },
  });

  const setMode = (mode: ProtectMode) => {
    status.mode = mode;
    status.modeChanges = [...status.modeChanges, { mode, at: workflowNow(), cursor: status.cursor }].slice(-20);
    describe();
  };

  let runs = 0;
  const gcEvery = input.gcEveryRuns ?? 30;
  // Counted across continue-as-new, so that short executions still collect.
  let lastGcRun = -(input.carried?.runsSinceGc ?? 0);
  // A sync or resync needs the replicator to log the writes made while it reads the disks, so
  // neither a stop nor continue-as-new ends the execution before log mode is back: an unfinished
  // one leaves no restorable target after its start, so a planned handover must wait for it.
  // A disk sync too: its disks are in the manifest but not yet in the log.
  // Nor while a handover waits for a look at the members it asked for, which the next execution would not know of.
  const executionDone = () =>
    status.mode === 'log' && !diskSync && syncQueue.length === 0 && (status.stopping || (!membershipLooks.asked && (runs >= (input.runsPerExecution ?? 200) || workflowInfo().continueAsNewSuggested)));
  function describe() {
    const rpo = rpoBound(status, workflowNow());
    const target = status.rpoTargetSeconds;
    const rpoLine =
      rpo === undefined
        ? ''
        : target !== undefined && rpo > target
          ? `\n\n**RPO target breached**: writes are durable only up to ${rpo} s ago, past the target of ${target} s (spec.protection.rpoTarget)`
          : `\n\nRPO at most ${rpo} s${target !== undefined ? ` (target ${target} s)` : ''}`;
    const failingLine = status.failing
      ? `\n\n**Failing since ${new Date(status.failing.since).toISOString()}** (${status.failing.reason}): ${status.failing.message}. Trying again at ${new Date(status.failing.retryAt).toISOString()}`
      : '';
    setCurrentDetails(`${status.mode} mode: replicating ${input.domain} from ${input.site} (epoch ${status.epoch}, cursor ${status.cursor}, lag ${status.lagMs} ms)${rpoLine}${failingLine}`);
  }
  // Revoked credentials are fixed by a person, not by the activity's retries: protection shows why
  // it is stuck and tries the same step again every `accessRetryMs`, resuming by itself once they
  // are valid. Each step so retried is an activity that is safe to run again from its input.
  const waitsOutRefusals = patched('protection-waits-out-refused-credentials');
  const accessRetryMs = input.accessRetryMs ?? 30_000;
  const admitted = async <T>(step: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const result = await step();
        if (status.failing) {
          log.info('the object store admits the site worker again', { domain: input.domain, failingSince: status.failing.since });
          delete status.failing;
          describe();
        }
        return result;
      } catch (error) {
        const refusal = error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === 'ObjectStoreAccessDenied' ? error.cause : undefined;
        if (!waitsOutRefusals || !refusal) throw error;
        const now = workflowNow();
        status.failing = { reason: 'ObjectStoreAccessDenied', message: refusal.message, since: status.failing?.since ?? now, retryAt: now + accessRetryMs };
        log.warn('the object store refuses the site worker\'s credentials; trying again later', { domain: input.domain, error: refusal.message, retryInMs: accessRetryMs });
        describe();
        await sleep(accessRetryMs);
      }
    }
  };
  const showsRpo = patched('protection-shows-rpo');
  const readRpoTarget = async () => {
    const target = await acts.readRpoTarget.executeWithOptions({ summary: `RPO target of ${input.domain}` }, [{ domain: input.domain }]);
    if (target === null) delete status.rpoTargetSeconds;
    else status.rpoTargetSeconds = target;
  };
  if (showsRpo) await readRpoTarget();
  const throttle = { maxBacklogEntries: input.throttle?.maxBacklogEntries ?? 100_000, maxLagMs: input.throttle?.maxLagMs ?? 300_000 };
  const { trackDirtyRegions, resyncDirtyRegions, finishResync } = proxyActivities<DatapathActivities>({
    taskQueue,
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds', nonRetryableErrorTypes: CANNOT_HEAL },
  });
  let resyncToFinish: Parameters<DatapathActivities['finishResync']>[0] | undefined;
  setHandler(everyDiskLoggedUpdate, async (request) => {
    if (request?.lookFirst && followsMembership) {
      const asked = membershipLooks.started;
      membershipLooks.asked = true;
      await condition(() => membershipLooks.done > asked || status.stopping);
    }
    await condition(() => status.mode === 'log' && !diskSync && syncQueue.length === 0 && resyncToFinish === undefined);
  });
  // Bitmap mode from where the log ends, then the resync segment; log mode resumes after it while
  // the resync loop waits for the log to make it exact.
  const bitmapEpisode = async () => {
    const bitmap = { domain: input.domain, site: input.site, epoch: status.epoch, cursor: status.cursor, vms: memberNames() };
    setMode('bitmap');
    const tracked = await admitted(() => trackDirtyRegions.executeWithOptions({ summary: `bitmap mode from cursor ${bitmap.cursor}` }, [bitmap]));
    setMode('resync');
    const written = await admitted(() => resyncDirtyRegions.executeWithOptions({ summary: `resync ${tracked.dirtyRegions} dirty regions up to ${tracked.drainedTo}` }, [bitmap]));
    status.cursor = written.cursor;
    resyncToFinish = { ...bitmap, written };
  };
  const resyncLoop = async () => {
    for (;;) {
      await condition(() => resyncToFinish !== undefined || executionDone());
      if (!resyncToFinish) return;
      const finishing = resyncToFinish;
      await admitted(() => finishResync.executeWithOptions({ summary: `resync from cursor ${finishing.cursor} becomes exact` }, [finishing]));
      resyncToFinish = undefined;
      setMode('log');
    }
  };

  const syncRun = async () => {
    if (!wantSync) return;
    describe();
    const startedAt = workflowNow();
    const syncInput = { domain: input.domain, site: input.site, epoch: status.epoch, cursor: status.cursor, vms: memberNames() };
    const result = await admitted(() => initialSync.executeWithOptions({ summary: `initial sync of epoch ${status.epoch} at cursor ${syncInput.cursor}` }, [syncInput]));
    status.base = result.baseId;
    status.initialSync = { bytesRead: result.bytesRead, chunksStored: result.chunksStored, durationMs: workflowNow() - startedAt };
    setMode('log');
    // A new protection makes the domain Protected once it can be recovered (its base exists). One
    // resumed by an operation (`start`) leaves the mode to that operation.
    if (!input.start && patched('protection-records-protected-mode')) {
      await proxyActivities<DomainStatusActivities>({ taskQueue, startToCloseTimeout: '1 minute', retry: { maximumInterval: '10 seconds' } }).setDomainStatus.executeWithOptions(
        { summary: `${input.domain}: Protected at ${input.site}` },
        [{ domain: input.domain, mode: 'Protected', runningAt: input.site, vms: memberNames().map((name) => ({ name, protection: 'Recoverable' as const })), setBy: workflowInfo().workflowId }],
      );
    }
  };

  const showDiskSync = () => {
    status.diskSync = diskSync && { disks: diskSync.disks.map((d) => d.diskId), copiedDisks: diskSync.disk, ...(diskSync.startSegment !== undefined ? { startSegment: diskSync.startSegment } : {}) };
  };
  // Between replicator runs, so that no run logs a disk the manifest has just dropped, and a new
  // disk is in the manifest before the run that logs it. Only in log mode: an initial sync copies
  // the disks its manifest listed, a bitmap episode the regions of its own.
  const followMembership = async (look: boolean) => {
    if (look && status.mode === 'log') {
      const number = ++membershipLooks.started;
      membershipLooks.asked = false;
      // A change of members writes the manifest: refused credentials are waited out there too.
      const refresh = () => refreshMembership();
      const change = patched('protection-membership-waits-out-refusals') ? await admitted(refresh) : await refresh();
      syncQueue = [...syncQueue, ...(change?.added ?? [])];
      membershipLooks.done = number;
    }
    if (!diskSync && syncQueue.length > 0) {
      diskSync = { disks: syncQueue, disk: 0, offset: 0 };
      syncQueue = [];
      showDiskSync();
    }
  };

  const replicatorLoop = async () => {
    const membershipEvery = patched('membership-every-few-runs') ? Math.max(1, input.membershipEveryRuns ?? 3) : 1;
    while (!executionDone()) {
      describe();
      const replicateInput = {
        domain: input.domain,
        site: input.site,
        epoch: status.epoch,
        cursor: status.cursor,
        vms: memberNames(),
        runForMs: runMs,
        ...(status.mode === 'log' ? { throttle } : {}),
        ...(memberDisks() ? { disks: memberDisks() } : {}),
        ...(diskSync ? { diskSync } : {}),
        ...(status.durableAsOf !== undefined ? { durableAsOf: status.durableAsOf } : {}),
      };
      const progress = await admitted(() => replicateJournal.executeWithOptions({ summary: `replicate from cursor ${replicateInput.cursor}` }, [replicateInput]));
      runs++;
      status.cursor = progress.cursor;
      status.lagMs = progress.lagMs;
      if (progress.durableAsOf !== undefined) status.durableAsOf = progress.durableAsOf;
      if (progress.lagBytes !== undefined) status.lagBytes = progress.lagBytes;
      if (progress.bytesReplicated !== undefined) status.bytesReplicated = (status.bytesReplicated ?? 0) + progress.bytesReplicated;
      status.backlogEntries = progress.backlogEntries;
      status.segmentsWritten += progress.segmentsWritten;
      if (progress.diskSync) {
        diskSync = progress.diskSync.consistentFrom ? undefined : progress.diskSync;
        showDiskSync();
      }
      if (progress.throttled) await bitmapEpisode();
      // A stopping protection takes on no new members: the operation that stops it may be removing
      // the domain's VMs here, and a member list recorded for a site the domain left would fail.
      if (followsMembership && !(status.stopping && patched('stopping-protection-leaves-membership'))) await followMembership(runs % membershipEvery === 0 || membershipLooks.asked);
    }
  };
  const gcLoop = async () => {
    while (!executionDone()) {
      await condition(() => executionDone() || (runs - lastGcRun >= gcEvery && status.mode === 'log'));
      if (executionDone()) return;
      try {
        const result = await collectGarbage.executeWithOptions({ summary: `garbage collection after ${runs} replicator runs` }, [{ domain: input.domain }]);
        status.lastGc = { at: workflowNow(), ...result };
        if (showsRpo) await readRpoTarget();
      } catch (error) {
        if (!(error instanceof ActivityFailure)) throw error;
        log.warn('garbage collection failed', { domain: input.domain, error: error.cause?.message ?? error.message });
      }
      lastGcRun = runs;
    }
  };
  const policyLoop = async () => {
    let nextPointAt = (status.lastRestorePoint?.timestamp ?? workflowNow()) + input.restorePointIntervalMs;
    while (!(await condition(executionDone, Math.max(1, nextPointAt - workflowNow())))) {
      if (!whyNoRestorePoint(status)) {
        try {
          await makePoint('policy');
        } catch (error) {
          // A missed policy point must not end protection; the next interval tries again.
          if (!(error instanceof ActivityFailure)) throw error;
          log.warn('policy restore point failed', { domain: input.domain, error: error.cause?.message ?? error.message });
        }
      }
      nextPointAt = workflowNow() + input.restorePointIntervalMs;
    }
  };
  // A replicator run that does not come back (the object store stalls) leaves the status as it
  // was; the details are brought up to date while it is overdue, so the Web UI shows the RPO rising.
  const rpoWatch = async () => {
    if (!showsRpo) return;
    while (!executionDone()) {
      const runsBefore = runs;
      const moved = () => runs !== runsBefore || executionDone();
      if (await condition(moved, runMs + 15_000)) continue;
      do describe();
      while (!(await condition(moved, 15_000)));
    }
  };
  await Promise.all([syncRun(), replicatorLoop(), resyncLoop(), policyLoop(), gcLoop(), rpoWatch()]);
  await condition(allHandlersFinished);
  if (status.stopping) return status;
  return continueAsNew<typeof protect>({
    ...input,
    initialSync: undefined,
    start: undefined,
    carried: {
      epoch: status.epoch,
      cursor: status.cursor,
      lastRestorePoint: status.lastRestorePoint,
      base: status.base,
      runsSinceGc: runs - lastGcRun,
      ...(membership ? { membership } : members ? { members } : {}),
      ...(status.durableAsOf !== undefined ? { durableAsOf: status.durableAsOf } : {}),
      ...(status.bytesReplicated !== undefined ? { bytesReplicated: status.bytesReplicated } : {}),
      ...(status.lastGc ? { lastGc: status.lastGc } : {}),
    },
  });
}
