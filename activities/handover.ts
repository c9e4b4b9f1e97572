import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { forEachLimited } from '../common/parallel';
import type { SiteProvider } from '../sites/provider';
import { DomainKeys, trailingNumber } from '../datapath/keys';
import { disksNotLogged, type EveryDiskLoggedRequest } from '../datapath/membership';
import { readChain, resolveChain } from '../datapath/log-chain';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership, StaleEpochError } from '../datapath/ownership';
import { manifestSchema, parseRecord, restorePointSchema, type DomainDisk, type Manifest, type VmMetadata } from '../datapath/records';
import type { RehydrationTarget } from '../datapath/records';
import { JournalGapError, replicateUntilDrained } from '../datapath/replicator';
import { SegmentWriter, type SegmentWriterOptions } from '../datapath/segment-writer';
import { atSite } from './site-failures';
import { failure } from '../common/failures';

export interface HandoverDependencies {
  store: ObjectStore;
  /** The site this worker acts on. */
  provider: SiteProvider;
  segmentWriting?: SegmentWriterOptions;
}

/** Where a drained epoch ends: the afterSequence of its last segment (null: none) and the journal cursor. */
export interface DrainedLog {
  epoch: number;
  lastSegment: number | null;
  cursor: number;
}

/** What a recovery rebuilds: the rehydration target resolved to a concrete point, with its data instant. */
export interface RecoveryPoint {
  upTo: RehydrationTarget;
  /** Acknowledgement time of the newest write the recovered disks hold (the RPO's data instant). */
  dataFrom: number;
  /** How the point was chosen, in words for the report. */
  description: string;
  /** Journal sequence (at the site that wrote it) of the newest write recovered, when known. */
  lastJournalSequence?: number;
  disks: DomainDisk[];
  /** VM configuration as of the point (a restore point's snapshot, else the manifest's). */
  vms: VmMetadata[];
  protectionWindowMs: number;
  /** Asked for without its VMs (`vmsInPages`): how many there are to read. */
  vmCount?: number;
}

export type PointInTime = { restorePoint: string } | { at: number };

const pollMs = 100;

/**
 * The data-path steps of a handover that are not replication itself: drain the primary's journal
 * to a final position, hand ownership over at that position, and resolve what a recovery
 * rebuilds. Each is idempotent: a retry finds the segments, epochs and records its earlier
 * attempt created.
 */
export function createHandoverActivities({ store, provider, segmentWriting = {} }: HandoverDependencies) {
  const readManifest = async (domain: string): Promise<Manifest> => {
    const key = new DomainKeys(store.prefix, domain).manifest();
    const body = await store.get(key);
    if (!body) throw failure('NoManifest', `domain ${domain} has no manifest at ${key}: it was never protected on this storage site`);
    return parseRecord(manifestSchema, key, body);
  };

  const readRestorePoint = async (domain: string, id: string) => {
    const key = new DomainKeys(store.prefix, domain).point(id);
    const body = await store.get(key);
    if (!body) throw failure('UnknownRestorePoint', `domain ${domain} has no restore point ${id}`);
    return parseRecord(restorePointSchema, key, body);
  };

  /**
   * What a recovery rebuilds, after ownership has moved (so the chain is sealed): a named restore
   * point, an instant inside the protection window, or the end of the log.
   */
  const resolveRecoveryPoint = async (domain: string, pointInTime?: PointInTime): Promise<RecoveryPoint> => {
    const manifest = await readManifest(domain);
    const base = { disks: manifest.disks, protectionWindowMs: manifest.protectionWindowMs };
    const ownership = new Ownership(store, domain);
    if (pointInTime && 'restorePoint' in pointInTime) {
      const point = await readRestorePoint(domain, pointInTime.restorePoint);
      return {
        ...base,
        // The disks the domain had at the point: a disk added or removed since is not the point's.
        ...(point.disks ? { disks: point.disks } : {}),
        upTo: { kind: 'position', position: point.position },
        dataFrom: point.timestamp,
        description: `restore point ${point.id}`,
        lastJournalSequence: point.lastJournalSequence,
        vms: point.vms,
      };
    }
    if (pointInTime) {
      if (pointInTime.at < Date.now() - manifest.protectionWindowMs) {
        throw failure('OutsideProtectionWindow', `${new Date(pointInTime.at).toISOString()} is outside the protection window of ${domain}`);
      }
      return { ...base, upTo: { kind: 'instant', at: pointInTime.at }, dataFrom: pointInTime.at, description: `instant ${new Date(pointInTime.at).toISOString()}`, vms: manifest.vms };
    }
    const last = (await resolveChain(store, ownership)).at(-1);
    if (!last) return { ...base, upTo: { kind: 'latest' }, dataFrom: manifest.updatedAt, description: 'the manifest (nothing replicated yet)', vms: manifest.vms };
    for await (const { segment } of readChain(store, [last], 1)) {
      const position = { epoch: last.epoch, segment: last.segment, entries: segment.entries.length };
      return {
        ...base,
        upTo: { kind: 'position', position },
        dataFrom: segment.entries.at(-1)?.timestamp ?? manifest.updatedAt,
        description: 'the latest consistent point',
        lastJournalSequence: segment.lastSequence,
        vms: manifest.vms,
      };
    }
    throw new Error(`segment ${last.key} could not be read`);
  };


  /** The journal cursor the epoch's log has reached: its last segment's lastSequence. */
  const epochTail = async (ownership: Ownership, epoch: number): Promise<{ lastSegment: number | null; cursor?: number }> => {
    const { keys, sizes } = await store.list(ownership.keys.logPrefix(epoch));
    const last = keys.at(-1);
    if (!last) return { lastSegment: null };
    const link = { epoch, segment: trailingNumber(last), key: last, bytes: sizes.get(last) ?? 0 };
    for await (const { segment } of readChain(store, [link], 1)) return { lastSegment: link.segment, cursor: segment.lastSequence };
    return { lastSegment: link.segment };
  };

  return {
    /** Who owns the domain and what it holds, from the storage site alone (no contact to the primary). */
    async describeDomain({ domain }: { domain: string }): Promise<{ protectedSite: string; ownerSite?: string; epoch: number; vms: string[]; diskIds: string[] }> {
      const manifest = await readManifest(domain);
      const { epoch, owner } = await new Ownership(store, domain).inspect();
      return { protectedSite: manifest.protectedSite, ownerSite: owner?.site, epoch, vms: manifest.vms.map((vm) => vm.name), diskIds: manifest.disks.map((d) => d.diskId) };
    },

    /**
     * Planned handover, before the drain: returns once the domain's protection (`protection`: its
     * workflow id and the name of its every-disk-logged update) has every disk of its manifest in
     * the log, e.g. after finishing the disk sync of a disk attached just before. A disk the site's
     * members hold that the protection does not log (attached since its last look at the members,
     * which it takes every few replicator runs) would be left out of the sealed log without a
     * word: it asks once more, with a look first. Heartbeats while it waits; a protection that is
     * not running has nothing under way. Answers the disks it had the protection look for, and,
     * asked after the drain (`drainedThrough`: where the drain left the epoch's log), whether the
     * log has grown past it since (the protection copied a disk it took in): the handover must then
     * drain again, or seal the log before those segments. Read from the log, not from this
     * attempt's look, so that a retry after a look by an attempt that died answers the same.
     */
    async awaitEveryDiskLogged({ protection, domain, drainedThrough }: { protection: { workflowId: string; update: string }; domain?: string; drainedThrough?: { epoch: number; lastSegment: number | null } }): Promise<{ lookedFor: string[]; logGrewPastDrain: boolean }> {
      const context = Context.current();
      const heartbeats = setInterval(() => context.heartbeat(), 1_000);
      const handle = context.client.workflow.getHandle(protection.workflowId);
      const ask = (request: EveryDiskLoggedRequest) => Promise.race([handle.executeUpdate<void, [EveryDiskLoggedRequest]>(protection.update, { args: [request] }), context.cancelled]);
      // What protection logs is what its manifest lists (written at every change of members, before their disks are copied); without a domain (a step scheduled before this check), nothing to compare.
      const notLogged = async () => {
        if (!domain) return [];
        const manifest = await readManifest(domain);
        const logged = { vms: manifest.vms.map((vm) => vm.name), diskIds: manifest.disks.map((d) => d.diskId) };
        return disksNotLogged(domain, logged, await atSite(() => provider.listVms()));
      };
      let lookedFor: string[] = [];
      try {
        await ask({});
        const missing = await notLogged();
        if (missing.length > 0) {
          context.log.info('disks joined the domain since its protection last looked at its members: it looks again before the handover', { domain, missing });
          await ask({ lookFirst: true });
          lookedFor = missing;
          // After a look of its own the protection's members are the domain's by its rules: what it still leaves out is said, not waited for.
          const left = await notLogged();
          if (left.length > 0) context.log.warn('disks at the site that protection does not count as the domain\'s after looking again: not in the log', { domain, left });
        }
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
        context.log.info('protection is not running: no sync under way', { workflowId: protection.workflowId });
      } finally {
        clearInterval(heartbeats);
      }
      const logGrewPastDrain = domain !== undefined && drainedThrough !== undefined && (await epochTail(new Ownership(store, domain), drainedThrough.epoch)).lastSegment !== drainedThrough.lastSegment;
      return { lookedFor, logGrewPastDrain };
    },

    /**
     * Planned failover, at the primary once its VMs are shut down: replicates whatever of the
     * domain is still in the journal (next to the protect workflow's replicator, which is safe:
     * both name segments by cursor and adopt each other's) until the journal holds nothing more
     * of the domain, and reports where the log ends.
     */
    async drainReplication({ domain }: { domain: string }): Promise<DrainedLog> {
      const context = Context.current();
      const manifest = await readManifest(domain);
      const ownership = new Ownership(store, domain);
      const { epoch, owner } = await ownership.inspect();
      if (owner?.site !== provider.site) {
        throw failure('NotOwner', `domain ${domain} is owned by site ${owner?.site ?? 'nobody'} (epoch ${epoch}), not by ${provider.site}: nothing to drain here`);
      }
      const tail = await epochTail(ownership, epoch);
      const journal = await atSite(() => provider.readJournal({ afterSequence: 0, maxEntries: 1 }));
      // An epoch with no segment yet starts after everything its site had already acknowledged.
      const start = tail.cursor ?? journal.firstRetainedSequence - 1;
      try {
        const progress = await replicateUntilDrained({
          source: {
            readJournal: (options) => atSite(() => provider.readJournal(options)),
            trimJournal: (upTo, vms) => atSite(() => provider.trimJournal(upTo, vms)),
          },
          writer: new SegmentWriter(store, ownership, epoch, provider.site, segmentWriting),
          vms: manifest.vms.map((vm) => vm.name),
          cursor: start,
          maxEntries: 2_000,
          maxBytes: 8 * 1024 * 1024,
          idlePollMs: pollMs,
          trimJournal: true,
          onSegment: (p) => context.heartbeat(p),
          shouldStop: () => {
            context.heartbeat();
            return context.cancellationSignal.aborted;
          },
        });
        const final = await epochTail(ownership, epoch);
        context.log.info('replication drained', { domain, epoch, cursor: progress.cursor, lastSegment: final.lastSegment });
        return { epoch, lastSegment: final.lastSegment, cursor: progress.cursor };
      } catch (error) {
        if (error instanceof StaleEpochError) throw failure('StaleEpoch', error.message);
        // Protection is in bitmap mode: its resync has not logged the trimmed writes yet. Retry later.
        if (error instanceof JournalGapError) throw failure('ReplicationBehind', error.message);
        throw error;
      }
    },

    /**
     * Planned handover: the owner of `epoch` passes the domain to `nextSite`, its log ending at
     * `lastSegment`. A retry after a won release finds `nextSite` already owning `epoch + 1`.
     */
    async releaseDomain(input: { domain: string; epoch: number; nextSite: string; lastSegment: number | null }): Promise<{ epoch: number }> {
      const ownership = new Ownership(store, input.domain);
      const current = await ownership.inspect();
      if (current.epoch === input.epoch + 1 && current.owner?.site === input.nextSite) return { epoch: current.epoch };
      try {
        const result = await ownership.release(input.epoch, input.nextSite, input.lastSegment);
        if (!result.won) throw failure('StaleEpoch', `epoch ${result.epoch} of ${input.domain} was claimed by ${result.owner.site} during the handover`);
        return { epoch: result.epoch };
      } catch (error) {
        if (error instanceof StaleEpochError) throw failure('StaleEpoch', error.message);
        throw error;
      }
    },

    /**
     * Resolves what the recovery rebuilds, after ownership has moved (so the chain is sealed):
     * a named restore point, an instant inside the protection window, or the end of the log.
     * `vmsInPages`: without its VMs and disks (a domain of thousands of VMs has some megabytes of
     * them, over Temporal's 2 MB per payload), which `readRecoveryPointVms` then reads page by page.
     */
    async resolveRecoveryPoint({ domain, pointInTime, vmsInPages }: { domain: string; pointInTime?: PointInTime; vmsInPages?: boolean }): Promise<RecoveryPoint> {
      const point = await resolveRecoveryPoint(domain, pointInTime);
      return vmsInPages ? { ...point, vms: [], disks: [], vmCount: point.vms.length } : point;
    },

    /**
     * The VMs from `from` (at most `count`) of what a recovery to `pointInTime` rebuilds, with their
     * disks: the restore point's own or the manifest's, which nothing writes once ownership has moved.
     */
    async readRecoveryPointVms({ domain, pointInTime, from, count }: { domain: string; pointInTime?: PointInTime; from: number; count: number }): Promise<Pick<RecoveryPoint, 'vms' | 'disks'>> {
      const manifest = await readManifest(domain);
      const point = pointInTime && 'restorePoint' in pointInTime ? await readRestorePoint(domain, pointInTime.restorePoint) : undefined;
      const vms = (point?.vms ?? manifest.vms).slice(from, from + count);
      const names = new Set(vms.map((vm) => vm.name));
      return { vms, disks: (point?.disks ?? manifest.disks).filter((d) => names.has(d.vm)) };
    },

    /**
     * Protection resumes at this site: the recovered disks start journaling. Returns the journal
     * sequence before the first of them switched, the cursor the new epoch's replicator starts from.
     */
    async protectRecoveredDisks({ diskIds }: { diskIds: string[] }): Promise<{ cursor: number }> {
      let cursor = Infinity;
      await forEachLimited(diskIds, 16, async (id) => {
        const { journalSequence } = await atSite(() => provider.setDiskProtection(id, true));
        cursor = Math.min(cursor, journalSequence);
      });
      return { cursor: Number.isFinite(cursor) ? cursor : 0 };
    },

    /**
     * The disks stop journaling: a failback rewrites the original disks at the primary, and those
     * writes are not the domain's to replicate (protection resumes afterwards from a fresh cursor).
     */
    async stopJournaling({ diskIds }: { diskIds: string[] }): Promise<void> {
      await forEachLimited(diskIds, 16, async (id) => {
        await atSite(() => provider.setDiskProtection(id, false));
      });
    },
  };
}

export type HandoverActivities = ReturnType<typeof createHandoverActivities>;
