import type { SiteProvider } from '../sites/provider';
import { forEachLimited } from '../common/parallel';
import { readBase, readBaseChunks } from './base-image';
import { listResyncs } from './bitmap';
import { coalesceWrites, type DiskWrite } from './coalesced-writes';
import { DISK_SYNC_SEQUENCE } from './disk-sync';
import { planRestore, readChain, resolveChain, TargetNotRestorableError, type ChainLink } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { zeroOutsideBase } from './rehydrate';
import { manifestSchema, parseRecord, type BaseRecord, type DomainDisk, type LogPosition, type Manifest, type VmMetadata } from './records';

/** The newest write on the target disks. */
export interface AppliedWrite {
  /** Its acknowledgement time at the site that wrote it. */
  timestamp: number;
  /** Its journal sequence at that site. */
  lastSequence: number;
  epoch: number;
}

export interface FollowCursor {
  /** The base the target disks were started from (null: from zeros). */
  base: string | null;
  /** True once every chunk of the base is on the target disks. */
  baseWritten: boolean;
  /**
   * While the base is written: every chunk of the base's disks before `disk` (an index into the
   * base record's disks) and of that disk below `offset` is on the target disks, and a resumed run
   * does not write them again. A run lasts seconds; rewriting the base from its start each run, a
   * follower of 10,000 disks never got past it.
   */
  baseChunksWritten?: { disk: number; offset: number };
  /**
   * The last chain link whose writes are all on the target disks; absent: none yet. Always a
   * consistent point. `endsAt` is the journal cursor the segment ended at: the epoch's next
   * segment must start there, so a log deleted under the follower is noticed, not skipped.
   */
  applied?: { epoch: number; segment: number; endsAt?: number };
  /** The newest write at `applied`, carried so that a resumed run still knows its lag. */
  appliedUpTo?: AppliedWrite;
}

export interface FollowResult {
  /** Absent only while no first point could be planned yet (`heldAt` says why). */
  cursor?: FollowCursor;
  segmentsApplied: number;
  /** What this run fetched from the store: base chunks and log segments, in bytes. */
  bytesRead: { base: number; log: number };
  bytesWritten: number;
  /** The newest write on the target disks: its acknowledgement time, journal sequence and epoch. */
  appliedUpTo?: AppliedWrite;
  /**
   * How far the target disks are behind the end of the log (segments a hold keeps back
   * included). ms: 0 when caught up with nothing held back, else now - appliedUpTo.timestamp (or
   * since the follow started when nothing is applied).
   */
  lag: { segments: number; bytes: number; ms: number };
  /** Nothing in the chain is left to apply (except what `heldAt` holds back). */
  caughtUp: boolean;
  /** Why following stops short of the end: a stretch that is not consistent yet (an unfinished resync / disk sync). */
  heldAt?: string;
  /** The manifest's disk set differs from the follower's `disks`: the caller reconciles the target (adds/removes disks and representation VMs) and follows on with the new set. */
  membershipChanged?: { vms: VmMetadata[]; disks: DomainDisk[] };
}

export interface FollowOptions {
  store: ObjectStore;
  ownership: Ownership;
  /** The target site's disks, which start as zeros (the caller creates them) unless `targetMayHoldData`, and are only ever written here. */
  target: Pick<SiteProvider, 'writeDisk' | 'readDisk'>;
  /**
   * The target disks hold older data (a continuous failback's original disks that cannot take a
   * delta): a start from the base also zeroes what the base does not hold, so that the log's
   * writes land on the base's image and nothing stale survives between them.
   */
  targetMayHoldData?: boolean;
  /** The domain disks the target holds. */
  disks: DomainDisk[];
  /** Names the target disk for a domain disk; by default the same id (a different site). */
  targetDiskId?: (diskId: string) => string;
  /** Where an earlier run stopped; absent: plan the latest restorable point and start from its base. */
  cursor?: FollowCursor;
  /** Apply what the chain holds now and return, instead of following it. */
  untilEnd?: boolean;
  /** Asked between segments and while idle; never inside a stretch that is not consistent yet. */
  shouldStop?: () => boolean;
  idlePollMs?: number;
  /** Segments (and base chunks) fetched ahead: bounds memory whatever the domain size. */
  readConcurrency?: number;
  writeConcurrency?: number;
  /** Called with the chosen base (null: zeros) before anything is written, so that a lease can name it. */
  onPlanned?: (base: string | null) => void | Promise<void>;
  /** Called with the result so far after every base chunk and segment (inside an inconsistent stretch: as of its last consistent point), and while idle or held. */
  onProgress?: (result: FollowResult) => void | Promise<void>;
  now?: () => number;
}

/** Where the log is not exact: from `start` until `until` (unknown while the resync is unfinished). */
interface InconsistentStretch {
  start: { epoch: number; segment: number };
  until?: LogPosition;
  what: string;
}

type Position = { epoch: number; segment: number };
const atOrAfter = (a: Position, b: Position) => a.epoch > b.epoch || (a.epoch === b.epoch && a.segment >= b.segment);

/** Which of two cursors of the same follower has got further (a retry resumes from it). */
export function laterCursor(a: FollowCursor | undefined, b: FollowCursor | undefined): FollowCursor | undefined {
  if (!a || !b) return a ?? b;
  const rank = (c: FollowCursor): [number, number, number] =>
    c.applied ? [2, c.applied.epoch, c.applied.segment] : c.baseWritten ? [1, 0, 0] : [0, c.baseChunksWritten?.disk ?? 0, c.baseChunksWritten?.offset ?? 0];
  const [ra, rb] = [rank(a), rank(b)];
  for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return ra[i] > rb[i] ? a : b;
  return a;
}

function sameDisks(a: DomainDisk[], b: DomainDisk[]): boolean {
  const key = (d: DomainDisk) => `${d.vm}\n${d.diskId}\n${d.sizeBytes}`;
  const set = new Set(a.map(key));
  return a.length === b.length && b.every((d) => set.has(key(d)));
}

/** Thrown inside the base copy to stop it early; the cursor says which chunks are written. */
class StopRequested extends Error {}

/**
 * Keeps target disks in step with the replication log while it grows: the base's chunks are
 * written straight to the disks, then each segment's writes in chain order, and the cursor moves
 * after each segment that ends at a consistent point. Nothing is kept in memory but the segments
 * in flight, so memory does not grow with the domain. A run resumed from a cursor neither rewrites
 * the base nor reapplies what the cursor covers; a run from an older cursor reapplies in order,
 * which ends in the same state. Stops before a stretch the log does not make exact yet (an
 * unfinished resync), and when the domain's disk set changed.
 */
export async function follow(options: FollowOptions): Promise<FollowResult> {
  const { store, ownership, target } = options;
  const now = options.now ?? Date.now;
  const startedAt = now();
  const targetId = options.targetDiskId ?? ((diskId: string) => diskId);
  const readConcurrency = options.readConcurrency ?? 4;
  const writeConcurrency = options.writeConcurrency ?? 8;
  const shouldStop = options.shouldStop ?? (() => false);
  const followed = new Set(options.disks.map((d) => d.diskId));
  /** Disks the manifest no longer has: their writes are skipped. */
  const removed = new Set<string>();
  const result: FollowResult = {
    ...(options.cursor ? { cursor: { ...options.cursor } } : {}),
    ...(options.cursor?.appliedUpTo ? { appliedUpTo: options.cursor.appliedUpTo } : {}),
    segmentsApplied: 0,
    bytesRead: { base: 0, log: 0 },
    bytesWritten: 0,
    lag: { segments: 0, bytes: 0, ms: 0 },
    caughtUp: false,
  };
  let behind: ChainLink[] = [];
  /** As last reported: what progress inside an inconsistent stretch repeats, where neither the cursor nor what a retry from it counts may move. */
  let reported: FollowResult = structuredClone(result);
  const report = async () => {
    const segments = behind.length;
    result.lag = { segments, bytes: behind.reduce((sum, link) => sum + link.bytes, 0), ms: result.caughtUp && segments === 0 ? 0 : now() - (result.appliedUpTo?.timestamp ?? startedAt) };
    reported = structuredClone(result);
    await options.onProgress?.(result);
    return result;
  };

  const readManifest = async (): Promise<Manifest> => {
    const key = ownership.keys.manifest();
    const body = await store.get(key);
    if (!body) throw new Error(`domain ${ownership.domain} has no manifest at ${key}`);
    return parseRecord(manifestSchema, key, body);
  };
  /** The new disk set when the manifest's differs from the follower's. */
  const membershipChange = async (): Promise<FollowResult['membershipChanged']> => {
    const manifest = await readManifest();
    return sameDisks(manifest.disks, options.disks) ? undefined : { vms: manifest.vms, disks: manifest.disks };
  };
  const write = async (writes: DiskWrite[]) => {
    await forEachLimited(writes, writeConcurrency, async (w) => {
      await target.writeDisk(targetId(w.diskId), w.offset, w.data);
      result.bytesWritten += w.data.length;
    });
  };

  const membership = await membershipChange();
  if (membership) {
    result.membershipChanged = membership;
    return report();
  }

  let base: BaseRecord | undefined;
  for (;;) {
    if (!result.cursor) {
      let planned;
      try {
        planned = await planRestore(store, ownership, { kind: 'latest' });
      } catch (error) {
        if (!(error instanceof TargetNotRestorableError)) throw error;
        result.heldAt = error.message;
        await report();
        if (options.untilEnd || (await idle(options, shouldStop))) return result;
        continue;
      }
      delete result.heldAt;
      base = planned.base;
      result.cursor = { base: base?.id ?? null, baseWritten: false };
      await options.onPlanned?.(result.cursor.base);
    }
    const cursor = result.cursor;
    if (cursor.base !== null && !cursor.applied && !base) {
      base = await readBase(store, ownership, cursor.base);
      if (!base) throw new TargetNotRestorableError(ownership.domain, `base ${cursor.base} that this follower started from is gone`);
    }
    if (!cursor.baseWritten) {
      if (base && !(await writeBase(base, cursor))) return report();
      if (options.targetMayHoldData) {
        const zeroing = { bytesRead: 0, bytesZeroed: 0 };
        await zeroOutsideBase(target, options.disks, base, targetId, writeConcurrency, zeroing);
        result.bytesWritten += zeroing.bytesZeroed;
      }
      cursor.baseWritten = true;
      delete cursor.baseChunksWritten;
      await report();
    }

    const outcome = await applyAvailable(cursor);
    if (outcome !== 'caught-up' || options.untilEnd) return report();
    await report();
    if (await idle(options, shouldStop)) return result;
  }

  /**
   * Writes the chunks of the base the cursor does not say are written, moving it past each
   * chunk once every chunk before it is written too. False when stopped before the last.
   */
  async function writeBase(record: BaseRecord, cursor: FollowCursor): Promise<boolean> {
    const from = cursor.baseChunksWritten ?? { disk: 0, offset: 0 };
    const isAfter = (disk: number, offset: number) => disk > from.disk || (disk === from.disk && offset >= from.offset);
    const diskIndex = new Map(record.disks.map((d, index) => [d.diskId, index]));
    const toWrite = record.disks
      .flatMap((d, disk) => (followed.has(d.diskId) ? d.chunks.filter((offset) => isAfter(disk, offset)).map((offset) => ({ disk, offset })) : []))
      .sort((a, b) => a.disk - b.disk || a.offset - b.offset);
    const position = new Map(toWrite.map((chunk, at) => [`${chunk.disk}:${chunk.offset}`, at]));
    const written = new Array<boolean>(toWrite.length).fill(false);
    let prefix = 0;
    try {
      await readBaseChunks(
        store,
        ownership,
        record,
        readConcurrency,
        async (diskId, offset, data, storedBytes) => {
          if (shouldStop()) throw new StopRequested();
          result.bytesRead.base += storedBytes;
          await write([{ diskId, offset, data }]);
          written[position.get(`${diskIndex.get(diskId)}:${offset}`)!] = true;
          while (prefix < written.length && written[prefix]) prefix++;
          if (prefix < toWrite.length) cursor.baseChunksWritten = toWrite[prefix];
          await report();
        },
        (diskId) => followed.has(diskId),
        (diskId, offset) => isAfter(diskIndex.get(diskId)!, offset),
      );
      return true;
    } catch (error) {
      if (error instanceof StopRequested) return false;
      throw error;
    }
  }

  /** Applies the chain after the cursor, as far as it is consistent; the cursor moves only to consistent points. */
  async function applyAvailable(cursor: FollowCursor): Promise<'caught-up' | 'stopped' | 'membership'> {
    const applied = cursor.applied;
    const from = applied ? { epoch: applied.epoch, segment: applied.segment + 1 } : base ? { epoch: base.epoch, segment: base.cursor } : undefined;
    const links = await resolveChain(store, ownership, from);
    const expectedFirst = applied ? applied.endsAt : base?.cursor;
    const first = links[0];
    if (from && expectedFirst !== undefined && first?.epoch === from.epoch && first.segment !== expectedFirst) {
      throw new TargetNotRestorableError(ownership.domain, `the log of epoch ${from.epoch} continues at segment ${first.segment}, not at ${expectedFirst} where this follower stands: the segments between are gone`);
    }
    // Listed after the chain: a resync segment in the listing has its start record by then.
    const stretches = await inconsistentStretches(from);
    behind = links;
    const { applicable, consistentAfter, heldAt } = planPass(links, stretches);
    result.caughtUp = applicable.length === 0;
    let newest: AppliedWrite | undefined;
    let index = 0;
    for await (const { link, segment } of readChain(store, applicable, readConcurrency)) {
      const insideStretch = index > 0 && !consistentAfter[index - 1];
      if (!insideStretch && shouldStop()) return 'stopped';
      const unknown = new Set(segment.entries.map((e) => e.diskId).filter((id) => !followed.has(id) && !removed.has(id)));
      if (unknown.size > 0) {
        const change = await membershipChange();
        if (change) {
          result.membershipChanged = change;
          return 'membership';
        }
        for (const id of unknown) removed.add(id);
      }
      await write(coalesceWrites(segment.entries.filter((e) => followed.has(e.diskId))));
      result.bytesRead.log += link.bytes;
      result.segmentsApplied++;
      // A disk sync's copy entries carry no journal sequence: the segment's end names the newest write.
      const journaled = segment.entries.filter((e) => e.sequence !== DISK_SYNC_SEQUENCE).at(-1);
      if (journaled) newest = { timestamp: journaled.timestamp, lastSequence: segment.lastSequence, epoch: link.epoch };
      if (consistentAfter[index]) {
        cursor.applied = { epoch: link.epoch, segment: link.segment, endsAt: segment.lastSequence };
        if (newest) result.appliedUpTo = cursor.appliedUpTo = newest;
        behind = links.slice(index + 1);
        await report();
      } else {
        // Still alive: a large domain's initial-sync stretch takes longer to apply than the
        // activity's heartbeat timeout, and a follower timed out inside it would start it again.
        await options.onProgress?.(reported);
      }
      index++;
    }
    if (heldAt) result.heldAt = heldAt;
    else delete result.heldAt;
    result.caughtUp = true;
    return 'caught-up';
  }

  /** The stretches after `from` that are not exact: an initial-sync base's, and every resync's. */
  async function inconsistentStretches(from: Position | undefined): Promise<InconsistentStretch[]> {
    const stretches: InconsistentStretch[] = [];
    if (base?.consistentFrom && !result.cursor?.applied) {
      stretches.push({ start: { epoch: base.epoch, segment: base.cursor }, until: base.consistentFrom, what: `the initial sync of base ${base.id}` });
    }
    for (const resync of await listResyncs(store, ownership)) {
      if (from && !atOrAfter(resync, from)) continue;
      stretches.push({ start: resync, ...(resync.consistentFrom ? { until: resync.consistentFrom } : {}), what: `the resync of epoch ${resync.epoch} at segment ${resync.segment}` });
    }
    return stretches;
  }
}

/**
 * How far one pass may go: up to the first link of a stretch whose end is unknown or not listed
 * yet, and after which links the disks are consistent (no stretch open at their end).
 */
function planPass(links: ChainLink[], stretches: InconsistentStretch[]): { applicable: ChainLink[]; consistentAfter: boolean[]; heldAt?: string } {
  const consistentAfter: boolean[] = [];
  for (const [index, link] of links.entries()) {
    const open = stretches.filter((s) => atOrAfter(link, s.start));
    const unreachable = open.find((s) => !s.until || !links.some((l) => atOrAfter(l, s.until!)));
    if (unreachable) {
      const why = unreachable.until ? `the log does not reach segment ${unreachable.until.segment} of epoch ${unreachable.until.epoch} yet` : 'it has not finished';
      return { applicable: links.slice(0, index), consistentAfter, heldAt: `held before segment ${link.segment} of epoch ${link.epoch}: ${unreachable.what} is exact only later and ${why}` };
    }
    consistentAfter.push(open.every((s) => atOrAfter(link, s.until!)));
  }
  return { applicable: links, consistentAfter };
}

/** Waits for the log to grow; true when asked to stop meanwhile. */
async function idle(options: FollowOptions, shouldStop: () => boolean): Promise<boolean> {
  if (shouldStop()) return true;
  await new Promise((resolve) => setTimeout(resolve, options.idlePollMs ?? 1_000));
  return shouldStop();
}
