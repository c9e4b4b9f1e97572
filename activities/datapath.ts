import { Context } from '@temporalio/activity';
import { SiteError, type SiteProvider } from '../sites/provider';
import { commitBase, consistentPosition, copyDisksIntoBase, ensureSyncIntent, readBase, type BaseCopyProgress } from '../datapath/base-image';
import { deltaCursor } from '../datapath/delta-rehydrate';
import { follow, laterCursor, type FollowCursor, type FollowResult } from '../datapath/follower';
import { collectGarbage, type GcResult } from '../datapath/gc';
import { DomainKeys } from '../datapath/keys';
import { ReaderLease } from '../datapath/lease';
import { ObjectStoreAccessDeniedError, type ObjectStore } from '../datapath/object-store';
import { Ownership, StaleEpochError } from '../datapath/ownership';
import { dirtyRegionsSchema, manifestSchema, parseRecord, RECORD_FORMAT_VERSION, membersSchema, type RestorePointSummary, type DomainDisk, type LogPosition, type Manifest, type RehydrationTarget, type RestorePoint, type VmMetadata } from '../datapath/records';
import { rehydrate, type RehydrationProgress, type RehydrationResult } from '../datapath/rehydrate';
import { TargetNotRestorableError } from '../datapath/log-chain';
import { JournalGapError, replicate, type ReplicationProgress, type Throttle } from '../datapath/replicator';
import { finishResync, trackDirtyRegions, writeResyncSegment, type ResyncWritten } from '../datapath/bitmap';
import { createRestorePoint, pointAtTarget, recordTested } from '../datapath/restore-points';
import { latestRetention, latestRpoTargetSeconds } from '../runbooks/domain-retention';
import { RunbookStore } from '../runbooks/store';
import { DiskSync, type DiskSyncState } from '../datapath/disk-sync';
import { domainMembers, membersDigest, sameMembers, vmMetadata } from '../datapath/membership';
import { CorruptSegmentError } from '../datapath/segment-codec';
import { SegmentWriter, type SegmentWriterOptions } from '../datapath/segment-writer';
import { canHeal, failure, isFailureType } from '../common/failures';
import { forEachLimited, limited } from '../common/parallel';
import { fencedTarget } from './write-fence';

export interface DatapathDependencies {
  store: ObjectStore;
  /** The provider of a named site; a site worker knows only its own. */
  site: (name: string) => SiteProvider;
  /** Where garbage collection reads the retention policy; default: the runbooks next to the domains. */
  runbooks?: RunbookStore;
  segmentWriting?: SegmentWriterOptions;
  /** How many rehydrations this worker runs at once; more wait for their turn (`DR_REHYDRATIONS_AT_ONCE`). */
  rehydrationsAtOnce?: number;
}

/** Rehydrations one worker runs at once unless the operator says otherwise: four of a 512 MiB domain in one process peaked at 570 MiB of RSS. */
export const DEFAULT_REHYDRATIONS_AT_ONCE = 4;

export interface ReplicateInput {
  domain: string;
  site: string;
  epoch: number;
  cursor: number;
  vms: string[];
  /** The activity returns after this long so that the workflow sees fresh lag and cursor. */
  runForMs: number;
  maxEntries?: number;
  maxBytes?: number;
  trimJournal?: boolean;
  /** Stop and report `throttled` when replication falls this far behind (bitmap mode takes over). */
  throttle?: Throttle;
  /** Log only writes to these disks (the manifest's); without it every write of `vms`. */
  disks?: string[];
  /** New disks to copy into the log, as far as the last run got. */
  diskSync?: DiskSyncState;
  /** What the last run knew durable (`ReplicationProgress.durableAsOf`). */
  durableAsOf?: number;
}

export interface MembershipInput {
  domain: string;
  site: string;
  /** The protection's input list: those of them that carry no `protectedDomain` tag are members too. */
  vms: string[];
  /** The members as protection knows them, given whole (none yet: `[]`; runs from before `knownDigest`)... */
  known?: VmMetadata[];
  /** ...or by the digest a change returned, read from the store. Neither: as the manifest lists them. */
  knownDigest?: string;
  protectionWindowMs: number;
}

/**
 * The members as the protection workflow holds them: the names and disks its activities need, and
 * the digest naming the stored list of their whole configuration. Whole, the configuration of
 * 10,000 VMs is over the 2 MB a payload may be.
 */
export interface Membership {
  digest: string;
  names: string[];
  diskIds: string[];
}

export interface MembershipChange {
  /** The members now; their configuration is stored under `members/<digest>.json` and in the manifest. */
  membership: Membership;
  /** Disks that joined: protected (journaled) now, listed in the manifest, not yet in the log. */
  added: DomainDisk[];
  /** Disks that left: gone from the manifest, no longer journaled where they still exist unattached. */
  removed: string[];
}

export interface BitmapInput {
  domain: string;
  site: string;
  epoch: number;
  /** Where the log ends: the resync segment starts here. */
  cursor: number;
  vms: string[];
  trimJournal?: boolean;
}

export interface InitialSyncInput {
  domain: string;
  /** The owner site whose disks are copied (the replicator drains its journal meanwhile). */
  site: string;
  epoch: number;
  /** A journal cursor the log of `epoch` is complete after; the base is positioned there. */
  cursor: number;
  vms: string[];
}

export interface InitialSyncResult {
  baseId: string;
  bytesRead: number;
  chunksStored: number;
  consistentFrom: LogPosition | null;
}

/** Heartbeat of an initial sync: the copy's position, then the journal mark it waits for. */
interface InitialSyncHeartbeat {
  copy: BaseCopyProgress;
  journalMark?: number;
  markedAt?: number;
}

export interface RehydrateInput {
  domain: string;
  targetSite: string;
  /** Where missing target disks are created; `diskDatastores` overrides it per protected disk id. */
  datastore: string;
  diskDatastores?: Record<string, string>;
  upTo: RehydrationTarget;
  /** Target disk ids are this prefix + the protected disk id (for a drill next to a live copy). */
  diskIdPrefix?: string;
  /** The target disks may exist with other data (failback onto the original disks): rehydration zeroes what the source does not write. */
  targetMayHoldData?: boolean;
  /** Only these protected disks are rebuilt (a restore of chosen VMs); absent: every disk of the domain. */
  onlyDisks?: string[];
  /** The operation created the target disk of each disk in `diskDatastores` already (behind its representation VM): only the domain's other disks are created. */
  targetDisksPrepared?: boolean;
}

export interface FollowLogInput {
  domain: string;
  targetSite: string;
  /** The domain disks the target holds (created, zeros, before the first run). */
  disks: DomainDisk[];
  /** Where the previous run stopped; absent: start from the latest restorable point's base. */
  cursor?: FollowCursor;
  /** The activity returns after this long so that the workflow sees fresh lag and cursor. */
  runForMs: number;
  /** Apply what the chain holds now and return (completion, once the chain is sealed). */
  untilEnd?: boolean;
  /** Target disk ids are this prefix + the protected disk id. */
  diskIdPrefix?: string;
  /** Without a cursor: the target disks hold this departure position (a delta check said so), and only the log after it is applied. */
  departure?: { from: LogPosition; journalCursor: number };
  /** Without a cursor or departure: the target disks hold older data, and a start from the base zeroes what the base does not hold. */
  targetMayHoldData?: boolean;
}

/** The restore point a drill tagged as tested, or why it tagged none. */
export type TestedPoint = { point: string; at: number; outcome: 'passed' | 'failed' } | { point: null; why: string };

/** Disks switched to journaling at once when members join: a 10,000-VM domain's first manifest switches 10,000. */
const JOURNAL_SWITCHES_IN_FLIGHT = 16;

/** Well inside the rehydration's heartbeat timeout (10 s), whatever a segment or base chunk takes. */
const REHYDRATION_HEARTBEAT_MS = 2_000;

/** Well inside the follower's heartbeat timeout (3 s, workflows/phases/follow.ts). */
const FOLLOWER_HEARTBEAT_MS = 1_000;

/** Failures that retrying cannot fix become non-retryable with a stable type. */
export function classify(error: unknown): unknown {
  if (error instanceof StaleEpochError) return failure('StaleEpoch', error.message);
  if (error instanceof CorruptSegmentError) return failure('CorruptSegment', error.message);
  if (error instanceof TargetNotRestorableError) return failure('TargetNotRestorable', error.message);
  if (error instanceof JournalGapError) return failure('JournalGap', error.message);
  if (error instanceof ObjectStoreAccessDeniedError) return failure('ObjectStoreAccessDenied', error.message, [{ bucket: error.bucket, key: error.key }]);
  // A site's refusal that retrying cannot change (a name taken, an unknown placement) ends the attempt.
  if (error instanceof SiteError && isFailureType(error.code) && !canHeal(error.code)) return failure(error.code, error.message);
  return error;
}

export function createDatapathActivities({ store, site, runbooks = new RunbookStore(store.s3, store.settings), segmentWriting = {}, rehydrationsAtOnce = DEFAULT_REHYDRATIONS_AT_ONCE }: DatapathDependencies) {
  const readManifest = async (domain: string): Promise<Manifest> => {
    const key = new DomainKeys(store.prefix, domain).manifest();
    const body = await store.get(key);
    if (!body) throw failure('NoManifest', `domain ${domain} has no manifest at ${key}`);
    return parseRecord(manifestSchema, key, body);
  };

  const readMembers = async (keys: DomainKeys, digest: string): Promise<VmMetadata[]> => {
    const key = keys.members(digest);
    const body = await store.get(key);
    if (!body) throw new Error(`${key} is missing: the members this protection knows were not stored`);
    return parseRecord(membersSchema, key, body);
  };

  const readManifestIfAny = async (domain: string): Promise<Manifest | undefined> => {
    const key = new DomainKeys(store.prefix, domain).manifest();
    const body = await store.get(key);
    return body ? parseRecord(manifestSchema, key, body) : undefined;
  };

  // Each rehydration holds its reads in flight and two segments (about 100 MiB of a large domain);
  // the worker's memory is bounded by how many run at once, not by how many failovers start.
  const rehydrationSlot = limited(rehydrationsAtOnce);
  const rehydrateNow = async (input: RehydrateInput): Promise<RehydrationResult> => {
    const context = Context.current();
    const manifest = await readManifest(input.domain);
    const only = input.onlyDisks;
    let latest = context.info.heartbeatDetails as RehydrationProgress | undefined;
    const ownership = new Ownership(store, input.domain);
    const lease = new ReaderLease(store, ownership, `${context.info.workflowExecution?.workflowId ?? context.info.base64TaskToken}/${context.info.activityId}`);
    // Also while the base is read, which reports no progress: an attempt that stops heartbeating
    // is given up and retried, and learns so only at its next heartbeat (the abort of `signal`).
    const heartbeating = setInterval(() => context.heartbeat(latest), REHYDRATION_HEARTBEAT_MS);
    try {
      // Before planning: garbage collection must not delete what the plan is about to choose.
      await lease.hold(latest?.base);
      const result = await rehydrate({
        store,
        ownership,
        target: fencedTarget(site(input.targetSite), context),
        disks: only ? manifest.disks.filter((d) => only.includes(d.diskId)) : manifest.disks,
        datastore: input.datastore,
        ...(input.diskDatastores ? { diskDatastores: input.diskDatastores } : {}),
        ...(input.targetDisksPrepared ? { preparedDisks: new Set(Object.keys(input.diskDatastores ?? {})) } : {}),
        upTo: input.upTo,
        targetDiskId: (diskId) => `${input.diskIdPrefix ?? ''}${diskId}`,
        targetMayHoldData: input.targetMayHoldData ?? false,
        resumeAfter: latest,
        signal: context.cancellationSignal,
        onPlanned: (base) => lease.hold(base),
        onProgress: async (progress) => {
          latest = progress;
          context.heartbeat(progress);
          await lease.refresh();
        },
      });
      // Released only on success: a failed attempt's retry needs the same objects; else the lease expires.
      await lease.release();
      context.log.info('rehydration finished', { domain: input.domain, segments: result.segmentsApplied, bytes: result.bytesWritten });
      return result;
    } catch (error) {
      if (context.cancellationSignal.aborted) await context.cancelled;
      throw classify(error);
    } finally {
      clearInterval(heartbeating);
    }
  };

  return {
    /**
     * Claims the domain for `site`. Without `takeover` it only claims a domain nobody owns (or
     * that `site` already owns, so a retry after a won claim is a success); with it, it fences the
     * current owner by creating the next epoch.
     */
    async claimDomain(input: { domain: string; site: string; takeover: boolean }): Promise<{ won: boolean; epoch: number; ownerSite: string }> {
      const ownership = new Ownership(store, input.domain);
      const current = await ownership.inspect();
      if (current.owner?.site === input.site) return { won: true, epoch: current.epoch, ownerSite: input.site };
      if (current.owner && !input.takeover) return { won: false, epoch: current.epoch, ownerSite: current.owner.site };
      const result = await ownership.claim(input.site, { fromEpoch: current.epoch });
      return { won: result.won, epoch: result.epoch, ownerSite: result.owner.site };
    },

    /** Snapshots the protected VMs and disks of the domain (VMs named `vms`) into manifest.json. */
    async recordManifest(input: { domain: string; site: string; vms: string[]; protectionWindowMs: number }): Promise<Manifest> {
      const provider = site(input.site);
      const vms = (await provider.listVms()).filter((vm) => input.vms.includes(vm.name));
      const disks = await Promise.all(vms.flatMap((vm) => vm.diskIds.map(async (id) => ({ vm: vm.name, disk: await provider.getDisk(id) }))));
      const manifest: Manifest = {
        formatVersion: RECORD_FORMAT_VERSION,
        domain: input.domain,
        protectedSite: input.site,
        disks: disks.filter((d) => d.disk.protected).map((d) => ({ vm: d.vm, diskId: d.disk.id, sizeBytes: d.disk.sizeBytes })),
        vms: vmMetadata(vms),
        protectionWindowMs: input.protectionWindowMs,
        updatedAt: Date.now(),
      };
      await store.put(new DomainKeys(store.prefix, input.domain).manifest(), JSON.stringify(manifest), 'application/json');
      return manifest;
    },

    /**
     * Looks at the domain's VMs at its site (one listing) and, when the members, their disks or
     * their configuration changed since `known`, records the manifest again, then starts
     * journaling the disks that joined and stops journaling those that left (where they still
     * exist, attached to no VM). The manifest comes first: it lists a new disk before the log can
     * hold a write to it. Null when nothing changed. A retry repeats it all harmlessly.
     */
    async refreshMembership(input: MembershipInput): Promise<MembershipChange | null> {
      const provider = site(input.site);
      const keys = new DomainKeys(store.prefix, input.domain);
      const all = await provider.listVms();
      const members = vmMetadata(domainMembers(input.domain, input.vms, all));
      const digest = membersDigest(members);
      if (input.knownDigest === digest) return null;
      const recorded = input.known || input.knownDigest ? undefined : await readManifestIfAny(input.domain);
      const known = input.known ?? (input.knownDigest ? await readMembers(keys, input.knownDigest) : recorded?.vms) ?? [];
      if (sameMembers(known, members)) return null;
      const manifest = recorded ?? (await readManifestIfAny(input.domain));
      const knownDisks = new Set(known.flatMap((vm) => vm.diskIds));
      const recordedSizes = new Map(manifest?.disks.map((d) => [d.diskId, d.sizeBytes]));
      // One listing for the sizes and journaling state of every disk: 10,000 members are 10,000 disks.
      const listed = new Map((await provider.listDisks()).map((d) => [d.id, d]));
      const disks: DomainDisk[] = [];
      for (const vm of members) {
        for (const diskId of vm.diskIds) disks.push({ vm: vm.name, diskId, sizeBytes: recordedSizes.get(diskId) ?? listed.get(diskId)?.sizeBytes ?? (await provider.getDisk(diskId)).sizeBytes });
      }
      const next: Manifest = {
        formatVersion: RECORD_FORMAT_VERSION,
        domain: input.domain,
        protectedSite: input.site,
        disks,
        vms: members,
        protectionWindowMs: input.protectionWindowMs,
        updatedAt: Date.now(),
      };
      // Before the manifest: once a later refresh names this digest, its list must be there to compare with.
      await store.put(keys.members(digest), JSON.stringify(members), 'application/json');
      await store.put(keys.manifest(), JSON.stringify(next), 'application/json');
      const added = disks.filter((d) => !knownDisks.has(d.diskId));
      // A retried attempt skips the disks an earlier one already switched on.
      const toJournal = added.filter((d) => !listed.get(d.diskId)?.protected);
      let journaled = 0;
      await forEachLimited(toJournal, JOURNAL_SWITCHES_IN_FLIGHT, async (disk) => {
        await provider.setDiskProtection(disk.diskId, true);
        Context.current().heartbeat({ journaled: ++journaled, of: toJournal.length });
      });
      const memberDisks = new Set(disks.map((d) => d.diskId));
      const attached = new Set(all.flatMap((vm) => vm.diskIds));
      const removed = [...knownDisks].filter((id) => !memberDisks.has(id));
      for (const diskId of removed) {
        // A disk that left with its VM for another domain stays journaled for that domain.
        if (attached.has(diskId)) continue;
        try {
          await provider.setDiskProtection(diskId, false);
        } catch (error) {
          if (!(error instanceof SiteError && error.code === 'DiskNotFound')) throw error;
        }
      }
      // Only the known list can still be asked for (a retry of this change); older ones cannot.
      const stale = (await store.list(keys.membersPrefix())).keys.filter((key) => key !== keys.members(digest) && (!input.knownDigest || key !== keys.members(input.knownDigest)));
      if (stale.length > 0) await store.delete(stale);
      return { membership: { digest, names: members.map((vm) => vm.name), diskIds: members.flatMap((vm) => vm.diskIds) }, added, removed };
    },

    /**
     * Drains the site's journal into the log for `runForMs`. The cursor is heartbeated after each
     * acknowledged segment; a retry resumes from the later of the input and the last heartbeat.
     */
    async replicateJournal(input: ReplicateInput): Promise<ReplicationProgress> {
      const context = Context.current();
      const heartbeat = context.info.heartbeatDetails as ReplicationProgress | undefined;
      const resumed = heartbeat !== undefined && heartbeat.cursor > input.cursor;
      const cursor = resumed ? heartbeat.cursor : input.cursor;
      // The disk sync as of that cursor: the heartbeat carries both from the same segment.
      const syncState = resumed ? heartbeat.diskSync : input.diskSync;
      const ownership = new Ownership(store, input.domain);
      const diskSync = syncState ? new DiskSync(store, ownership, input.epoch, site(input.site), syncState, 1024 * 1024, Date.now) : undefined;
      const stopAt = Date.now() + input.runForMs;
      const durableAsOf = Math.max(input.durableAsOf ?? 0, heartbeat?.durableAsOf ?? 0) || undefined;
      try {
        const progress = await replicate({
          source: site(input.site),
          writer: new SegmentWriter(store, ownership, input.epoch, input.site, segmentWriting),
          vms: input.vms,
          cursor,
          maxEntries: input.maxEntries ?? 2_000,
          maxBytes: input.maxBytes ?? 8 * 1024 * 1024,
          idlePollMs: 100,
          idleWaitMs: 1_000,
          trimJournal: input.trimJournal ?? true,
          ...(input.throttle ? { throttle: input.throttle } : {}),
          ...(input.disks ? { disks: input.disks } : {}),
          ...(diskSync ? { diskSync } : {}),
          ...(durableAsOf !== undefined ? { durableAsOf } : {}),
          ...(resumed && heartbeat.bytesReplicated !== undefined ? { bytesReplicated: heartbeat.bytesReplicated } : {}),
          onSegment: (p) => context.heartbeat(p),
          shouldStop: (p) => {
            // Also while idle: the heartbeat timeout must only catch a dead worker, and the API
            // reads how far writes are durable from the heartbeat before the run ends.
            context.heartbeat({ ...p });
            return Date.now() >= stopAt || context.cancellationSignal.aborted;
          },
        });
        context.log.info('replication run finished', { domain: input.domain, ...progress });
        return progress;
      } catch (error) {
        throw classify(error);
      }
    },

    /** The RPO target of the domain's latest runbook (`spec.protection.rpoTarget`), in seconds; null without one. */
    async readRpoTarget(input: { domain: string }): Promise<number | null> {
      return (await latestRpoTargetSeconds(runbooks, input.domain)) ?? null;
    },

    /**
     * Garbage collection: compacts the log older than the domain's protection window into a new
     * base and deletes what no remaining restore point, running rehydration or the end of the log
     * needs. Each step is safe to die after; the next run finishes the job.
     */
    async collectGarbage(input: { domain: string }): Promise<GcResult> {
      const context = Context.current();
      const manifest = await readManifest(input.domain);
      const retention = await latestRetention(runbooks, input.domain);
      try {
        const result = await collectGarbage({
          store,
          ownership: new Ownership(store, input.domain),
          disks: manifest.disks,
          windowMs: manifest.protectionWindowMs,
          ...(retention.policy ? { retention: retention.policy } : {}),
          now: Date.now(),
          onStep: (step) => context.heartbeat(step),
          onProgress: () => context.heartbeat(),
        });
        context.log.info('garbage collection finished', { domain: input.domain, retention: retention.source, ...result });
        return result;
      } catch (error) {
        throw classify(error);
      }
    },

    /**
     * Bitmap mode: drains the journal into dirty regions (stored before each trim) until it is
     * nearly empty. Resumes from the stored regions after a kill.
     */
    async trackDirtyRegions(input: BitmapInput): Promise<{ drainedTo: number; dirtyRegions: number }> {
      const context = Context.current();
      try {
        const regions = await trackDirtyRegions({
          store,
          ownership: new Ownership(store, input.domain),
          source: site(input.site),
          epoch: input.epoch,
          cursor: input.cursor,
          vms: input.vms,
          maxEntries: 10_000,
          caughtUpWithin: 100,
          trimJournal: input.trimJournal ?? true,
          now: Date.now,
          onProgress: (r) => context.heartbeat(r.drainedTo),
          shouldStop: () => context.cancellationSignal.aborted,
        });
        return { drainedTo: regions.drainedTo, dirtyRegions: Object.values(regions.regions).reduce((sum, list) => sum + list.length, 0) };
      } catch (error) {
        throw classify(error);
      }
    },

    /** The resync: the dirty regions' current contents from the disks into one segment where the log ended. */
    async resyncDirtyRegions(input: BitmapInput): Promise<ResyncWritten> {
      const ownership = new Ownership(store, input.domain);
      const key = ownership.keys.dirtyRegions(input.epoch, input.cursor);
      try {
        const body = await store.get(key);
        if (!body) throw failure('NoDirtyRegions', `no dirty regions at ${key}`);
        const manifest = await readManifest(input.domain);
        return await writeResyncSegment({
          writer: new SegmentWriter(store, ownership, input.epoch, input.site, segmentWriting),
          source: site(input.site),
          regions: parseRecord(dirtyRegionsSchema, key, body),
          disks: manifest.disks,
          now: Date.now,
        });
      } catch (error) {
        throw classify(error);
      }
    },

    /** Waits until the log after a resync covers its journal mark, then records that targets are exact again from there. */
    async finishResync(input: BitmapInput & { written: ResyncWritten }): Promise<{ consistentFrom?: LogPosition }> {
      const context = Context.current();
      const ownership = new Ownership(store, input.domain);
      try {
        for (;;) {
          const done = await finishResync(store, ownership, site(input.site), {
            epoch: input.epoch,
            segment: input.cursor,
            entries: input.written.entries,
            cursor: input.written.cursor,
            vms: input.vms,
            journalMark: input.written.journalMark,
            markedAt: input.written.markedAt,
          });
          if (done) return { consistentFrom: done.consistentFrom };
          context.heartbeat();
          await context.sleep(200);
        }
      } catch (error) {
        throw classify(error);
      }
    },

    async createRestorePoint(input: { domain: string; reason: RestorePoint['reason']; label?: string }): Promise<RestorePointSummary> {
      const manifest = await readManifest(input.domain);
      try {
        const { vms: _vms, disks: _disks, ...summary } = await createRestorePoint(store, new Ownership(store, input.domain), {
          reason: input.reason,
          ...(input.label !== undefined ? { label: input.label } : {}),
          vms: manifest.vms,
          disks: manifest.disks,
          now: Date.now(),
        });
        return summary;
      } catch (error) {
        throw classify(error);
      }
    },

    /**
     * A drill's result, recorded next to the restore point it rebuilt the domain to (never in the
     * point record itself). Once per drill: a retry finds the record its first attempt wrote.
     */
    async recordPointTested(input: { domain: string; upTo: RehydrationTarget; drill: string; workflowId: string; outcome: 'passed' | 'failed' }): Promise<TestedPoint> {
      const ownership = new Ownership(store, input.domain);
      try {
        const point = await pointAtTarget(store, ownership, input.upTo);
        if (!point) return { point: null, why: 'no restore point is at the position the drill rebuilt (an instant or the end of the log between points, or a point collected since)' };
        const tested = await recordTested(store, ownership, point.id, { drill: input.drill, workflowId: input.workflowId, at: Date.now(), outcome: input.outcome });
        return { point: point.id, at: tested.at, outcome: tested.outcome };
      } catch (error) {
        throw classify(error);
      }
    },

    /**
     * Background replication: copies every protected disk of the domain into the base of
     * (epoch, cursor) while the replicator keeps logging the writes after `cursor`, then waits
     * until the log holds every write made during the copy and commits the base. Resumes from
     * its heartbeat; chunks and the base record are create-if-absent, so repeating it is harmless.
     */
    async initialSync(input: InitialSyncInput): Promise<InitialSyncResult> {
      const context = Context.current();
      const ownership = new Ownership(store, input.domain);
      const provider = site(input.site);
      try {
        const state = await ownership.inspect();
        if (state.epoch !== input.epoch || state.owner?.site !== input.site) throw new StaleEpochError(input.domain, input.epoch, state.epoch);
        const intent = await ensureSyncIntent(store, ownership, { epoch: input.epoch, cursor: input.cursor, site: input.site, now: Date.now() });
        const baseId = ownership.keys.baseId(intent.epoch, intent.cursor);
        const committed = await readBase(store, ownership, baseId);
        if (committed) return { baseId, bytesRead: 0, chunksStored: 0, consistentFrom: committed.consistentFrom };
        const manifest = await readManifest(input.domain);
        let latest = context.info.heartbeatDetails as InitialSyncHeartbeat | undefined;
        const copy = await copyDisksIntoBase({
          store,
          ownership,
          baseId,
          disks: manifest.disks,
          source: provider,
          resumeFrom: latest?.copy,
          onProgress: (progress) => {
            latest = { copy: progress };
            context.heartbeat(latest);
          },
          shouldStop: () => context.cancellationSignal.aborted,
        });
        if (context.cancellationSignal.aborted) await context.cancelled;
        // Read after the last chunk: every write the chunks can hold has a sequence up to the mark
        // and was acknowledged before `markedAt`.
        const journalMark = latest?.journalMark ?? (await provider.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 })).lastSequence;
        const markedAt = latest?.markedAt ?? Date.now();
        latest = { copy, journalMark, markedAt };
        let consistentFrom: LogPosition | null | undefined;
        while ((consistentFrom = await consistentPosition(store, ownership, provider, { epoch: intent.epoch, cursor: intent.cursor, vms: input.vms, journalMark })) === undefined) {
          context.heartbeat(latest);
          await context.sleep(200);
        }
        await commitBase(store, ownership, { epoch: intent.epoch, cursor: intent.cursor, kind: 'initial-sync', disks: manifest.disks, consistentFrom, timestamp: markedAt, createdAt: Date.now() });
        context.log.info('initial sync committed', { domain: input.domain, baseId, bytesRead: copy.bytesRead, chunksStored: copy.chunksStored });
        return { baseId, bytesRead: copy.bytesRead, chunksStored: copy.chunksStored, consistentFrom };
      } catch (error) {
        throw classify(error);
      }
    },

    /**
     * Rebuilds the domain's disks at the target site. Progress is heartbeated after every segment,
     * so a retried attempt skips the writes already done. At most `rehydrationsAtOnce` run in this
     * worker; one waiting for its turn heartbeats and stops waiting when cancelled.
     */
    async rehydrateDomain(input: RehydrateInput): Promise<RehydrationResult> {
      const context = Context.current();
      const waiting = setInterval(() => context.heartbeat(context.info.heartbeatDetails), REHYDRATION_HEARTBEAT_MS);
      try {
        return await rehydrationSlot(
          () => {
            clearInterval(waiting);
            return rehydrateNow(input);
          },
          { signal: context.cancellationSignal, onWait: () => void context.log.info('rehydration waits for its turn', { domain: input.domain, rehydrationsAtOnce }) },
        );
      } catch (error) {
        if (context.cancellationSignal.aborted) await context.cancelled;
        throw error;
      } finally {
        clearInterval(waiting);
      }
    },

    /**
     * Continuous rehydration: keeps the target disks in step with the log for `runForMs` (or, with
     * `untilEnd`, until what the chain holds now is applied). Resumes from the later of the input
     * cursor and its own heartbeat; heartbeats the result so far after every segment and while
     * idle. Holds a lease named after the workflow (stable across its runs) on the position it
     * has applied, so that garbage collection keeps exactly what it still needs.
     */
    async followLog(input: FollowLogInput): Promise<FollowResult> {
      const context = Context.current();
      const start = input.cursor ?? (input.departure ? deltaCursor(input.departure.from, input.departure.journalCursor) : undefined);
      const cursor = laterCursor(start, (context.info.heartbeatDetails as FollowResult | undefined)?.cursor);
      const ownership = new Ownership(store, input.domain);
      const lease = new ReaderLease(store, ownership, followerLeaseHolder(context));
      const stopAt = Date.now() + input.runForMs;
      let latest = context.info.heartbeatDetails as FollowResult | undefined;
      // Also while a segment is fetched: a store that stalls answers past the 3 s heartbeat timeout
      // would have the server give up on this run and start another beside it, both writing the
      // target disks. Only a dead or frozen worker should stop heartbeating.
      const heartbeating = setInterval(() => context.heartbeat(latest), FOLLOWER_HEARTBEAT_MS);
      try {
        // Written before anything is read: an older cursor than the lease names (a failed run's
        // successor) must take back what it still needs before garbage collection runs again.
        if (cursor?.applied) await lease.holdAfter(cursor.applied);
        else await lease.hold(cursor?.base);
        const result = await follow({
          store,
          ownership,
          target: fencedTarget(site(input.targetSite), context),
          disks: input.disks,
          targetDiskId: (diskId) => `${input.diskIdPrefix ?? ''}${diskId}`,
          ...(cursor ? { cursor } : {}),
          untilEnd: input.untilEnd ?? false,
          targetMayHoldData: input.targetMayHoldData ?? false,
          idlePollMs: 500,
          shouldStop: () => Date.now() >= stopAt || context.cancellationSignal.aborted,
          onPlanned: (base) => lease.hold(base),
          onProgress: async (progress) => {
            latest = progress;
            context.heartbeat(progress);
            if (progress.cursor?.applied) await lease.holdAfter(progress.cursor.applied);
            else await lease.refresh();
          },
        });
        if (context.cancellationSignal.aborted) await context.cancelled;
        if (input.untilEnd && result.caughtUp && !result.heldAt && !result.membershipChanged) await lease.release();
        context.log.info('follow run finished', { domain: input.domain, segments: result.segmentsApplied, lag: result.lag, heldAt: result.heldAt });
        return result;
      } catch (error) {
        throw classify(error);
      } finally {
        clearInterval(heartbeating);
      }
    },

    /** A cancelled or aborted continuous operation gives its follower's position back to garbage collection at once instead of when the lease expires. */
    async releaseFollowerLease(input: { domain: string }): Promise<void> {
      await new ReaderLease(store, new Ownership(store, input.domain), followerLeaseHolder(Context.current())).release();
    },
  };
}

/** The follower's lease is named after its workflow, the same across follower runs and continue-as-new. */
function followerLeaseHolder(context: Context): string {
  return `${context.info.workflowExecution?.workflowId ?? context.info.base64TaskToken}/follower`;
}

export type DatapathActivities = ReturnType<typeof createDatapathActivities>;
