import { CancelledFailure, Context } from '@temporalio/activity';
import type { SiteProvider } from '../sites/provider';
import { checkDeltaBase, chainEnd, latestDeparture, recordArrival, recordDeparture, type DeltaBaseCheck, type DeltaBaseVerified } from '../datapath/departure';
import { rehydrateDelta } from '../datapath/delta-rehydrate';
import { fingerprintDisks } from '../datapath/disk-fingerprint';
import { laterCursor, type FollowCursor, type FollowResult } from '../datapath/follower';
import { DomainKeys } from '../datapath/keys';
import { ReaderLease } from '../datapath/lease';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import { manifestSchema, parseRecord, type ArrivalRecord, type DepartureRecord, type DiskFingerprint, type LogPosition, type Manifest } from '../datapath/records';
import { failure } from '../common/failures';
import { classify } from './datapath';
import { fencedTarget } from './write-fence';

/**
 * Heartbeats, then ends the attempt if it was cancelled (the operation's cancel, or its worker
 * asked to stop): these activities read every disk of the domain, minutes at 10,000 disks, and
 * neither an operator's cancel nor a worker's shutdown may wait for that. A retry resumes after
 * the disks its last heartbeat names.
 */
function heartbeatUnlessCancelled(context: Context, details?: unknown): void {
  context.heartbeat(details);
  if (context.cancellationSignal.aborted) throw new CancelledFailure(`reading the disks was cancelled (${String(context.cancellationSignal.reason ?? 'cancelled')})`);
}

export interface FailbackDataDependencies {
  store: ObjectStore;
  /** The site this worker acts on. */
  provider: SiteProvider;
}

export interface RecordDepartureInput {
  domain: string;
  /** The epoch the departing site owned. */
  epoch: number;
  /**
   * planned: run at the departing site after the drain, with the drained `lastSegment`; it reads
   * its (shut down) disks. forced: run at the new owner after the takeover; the position is where
   * the chain was sealed, and the fingerprints are left to the check (derived from base + log).
   */
  kind: 'planned' | 'forced';
  lastSegment?: number | null;
}

export interface RecordArrivalInput {
  domain: string;
  /** The new epoch, owned by this site. */
  epoch: number;
  /** The position the disks were rehydrated to (the recovery point's `upTo.position`). */
  from: LogPosition;
  /** The journal cursor the epoch's log starts after (protectRecoveredDisks' cursor). */
  cursor: number;
}

export interface RehydrateDeltaInput {
  domain: string;
  /** From a usable `checkDeltaBase`. */
  from: LogPosition;
  journalCursor: number;
  /** Target disk ids are this prefix + the protected disk id. */
  diskIdPrefix?: string;
}

/**
 * The data path of a failback by delta: at failover, record where the departing site's disks
 * stand (`recordDeparture`) and which image the new owner's log starts from (`recordArrival`);
 * at failback, check the disks left behind (`checkDeltaBase`) and apply only the log since
 * (`rehydrateDelta`). A check that says unusable leads to `rehydrateDomain` with
 * `targetMayHoldData`, which is exact on any existing disks.
 */
export function createFailbackDataActivities({ store, provider }: FailbackDataDependencies) {
  const readManifest = async (domain: string): Promise<Manifest> => {
    const key = new DomainKeys(store.prefix, domain).manifest();
    const body = await store.get(key);
    if (!body) throw failure('NoManifest', `domain ${domain} has no manifest at ${key}`);
    return parseRecord(manifestSchema, key, body);
  };

  return {
    /**
     * Null when the domain has no log up to the epoch it left (idle since its base): no position to
     * fail back to by delta. Answers the record without its disks, fingerprints and VMs: a domain of
     * thousands of VMs has megabytes of them, over Temporal's 2 MB per payload (the store keeps them).
     */
    async recordDeparture(input: RecordDepartureInput): Promise<Omit<DepartureRecord, 'disks' | 'fingerprints' | 'vms'> | null> {
      const context = Context.current();
      const ownership = new Ownership(store, input.domain);
      const left = await ownership.read(input.epoch);
      const manifest = await readManifest(input.domain);
      let lastSegment: number | null;
      let fingerprints: DiskFingerprint[] | null = null;
      if (input.kind === 'planned') {
        if (left.site !== provider.site) throw failure('NotOwner', `epoch ${input.epoch} of ${input.domain} was owned by ${left.site}: a planned departure is recorded there, not at ${provider.site}`);
        if (input.lastSegment === undefined) throw failure('DeltaNotApplicable', 'a planned departure needs the drained lastSegment');
        lastSegment = input.lastSegment;
        fingerprints = await fingerprintDisks(provider, manifest.disks, 4, () => heartbeatUnlessCancelled(context));
      } else {
        const epochs = await ownership.epochs();
        if (!epochs.some((e) => e > input.epoch)) throw failure('DeltaNotApplicable', `epoch ${input.epoch} of ${input.domain} is still the current one: a forced departure is recorded after the takeover`);
        lastSegment = (await ownership.handoff(input.epoch + 1)).lastSegment;
      }
      try {
        const end = await chainEnd(store, ownership, input.epoch, lastSegment);
        if (!end) {
          // A domain that never wrote since its base: nothing to record, and a failback rehydrates fully (it finds no departure).
          context.log.info('no departure recorded: the domain has no log up to the epoch it left', { domain: input.domain, epoch: input.epoch, site: left.site });
          return null;
        }
        const { disks: _disks, fingerprints: _fingerprints, vms: _vms, ...recorded } = await recordDeparture(store, ownership, {
          epoch: input.epoch,
          site: left.site,
          kind: input.kind,
          ...end,
          disks: manifest.disks,
          fingerprints,
          vms: manifest.vms,
          recordedAt: Date.now(),
        });
        return recorded;
      } catch (error) {
        throw classify(error);
      }
    },

    async recordArrival(input: RecordArrivalInput): Promise<ArrivalRecord> {
      const ownership = new Ownership(store, input.domain);
      const owner = await ownership.read(input.epoch);
      if (owner.site !== provider.site) throw failure('NotOwner', `epoch ${input.epoch} of ${input.domain} is owned by ${owner.site}, not by ${provider.site}`);
      return recordArrival(store, ownership, { epoch: input.epoch, site: provider.site, from: input.from, cursor: input.cursor, recordedAt: Date.now() });
    },

    /** The newest departure of the domain from this site (null: none recorded): how the domain left it. */
    async readDeparture({ domain }: { domain: string }): Promise<DepartureRecord | null> {
      return (await latestDeparture(store, new Ownership(store, domain), provider.site)) ?? null;
    },

    /** At the site failback goes to: may its disks take a delta? Reads every disk once, locally; a retry only those its attempt before did not verify. */
    async checkDeltaBase({ domain }: { domain: string }): Promise<DeltaBaseCheck> {
      const context = Context.current();
      const manifest = await readManifest(domain);
      // A retry goes on after the disks the attempt before it verified.
      let verified = context.info.heartbeatDetails as DeltaBaseVerified | undefined;
      try {
        return await checkDeltaBase({
          store,
          ownership: new Ownership(store, domain),
          site: provider.site,
          target: provider,
          disks: manifest.disks,
          ...(verified ? { verified } : {}),
          onProgress: () => heartbeatUnlessCancelled(context, verified),
          onVerified: (more) => {
            verified = more;
            heartbeatUnlessCancelled(context, verified);
          },
        });
      } catch (error) {
        throw classify(error);
      }
    },

    /**
     * Applies the log since the departure onto the disks left behind. Heartbeats the result after
     * every segment; a retry resumes from the later of the departure and its last heartbeat, and
     * counts on from what that heartbeat says was applied, so that the result (the report's bytes
     * written) counts the delta once however often it started again.
     * Holds a lease on the position it has applied so garbage collection keeps the rest.
     */
    async rehydrateDelta(input: RehydrateDeltaInput): Promise<FollowResult> {
      const context = Context.current();
      const manifest = await readManifest(input.domain);
      const resumed = context.info.heartbeatDetails as FollowResult | undefined;
      const cursor: FollowCursor | undefined = laterCursor(undefined, resumed?.cursor);
      const earlier = resumed?.cursor ? resumed : undefined;
      // A copy as of now (the SDK encodes a heartbeat later, while the follower goes on), with what earlier attempts applied.
      const sinceDeparture = (run: FollowResult): FollowResult => ({
        ...run,
        ...(run.cursor ? { cursor: { ...run.cursor } } : {}),
        segmentsApplied: run.segmentsApplied + (earlier?.segmentsApplied ?? 0),
        bytesRead: { base: run.bytesRead.base + (earlier?.bytesRead.base ?? 0), log: run.bytesRead.log + (earlier?.bytesRead.log ?? 0) },
        bytesWritten: run.bytesWritten + (earlier?.bytesWritten ?? 0),
        lag: { ...run.lag },
      });
      const ownership = new Ownership(store, input.domain);
      const lease = new ReaderLease(store, ownership, `${context.info.workflowExecution?.workflowId ?? context.info.base64TaskToken}/${context.info.activityId}`);
      try {
        await lease.holdAfter(cursor?.applied ?? input.from);
        const result = await rehydrateDelta({
          store,
          ownership,
          target: fencedTarget(provider, context),
          disks: manifest.disks,
          targetDiskId: (diskId) => `${input.diskIdPrefix ?? ''}${diskId}`,
          from: input.from,
          journalCursor: input.journalCursor,
          ...(cursor ? { cursor } : {}),
          shouldStop: () => context.cancellationSignal.aborted,
          onProgress: async (progress) => {
            context.heartbeat(sinceDeparture(progress));
            if (progress.cursor?.applied) await lease.holdAfter(progress.cursor.applied);
          },
        });
        if (context.cancellationSignal.aborted) await context.cancelled;
        if (result.membershipChanged) throw failure('DeltaNotApplicable', `the disks of ${input.domain} changed since the departure: fail back by full rehydration`);
        if (result.heldAt) throw failure('TargetNotRestorable', `the log after the departure is not exact yet: ${result.heldAt}`);
        await lease.release();
        const whole = sinceDeparture(result);
        context.log.info('delta rehydration finished', { domain: input.domain, segments: whole.segmentsApplied, bytesRead: whole.bytesRead, bytesWritten: whole.bytesWritten, resumed: earlier !== undefined });
        return whole;
      } catch (error) {
        throw classify(error);
      }
    },
  };
}

export type FailbackDataActivities = ReturnType<typeof createFailbackDataActivities>;
