import { listBases, listSyncIntents } from './base-image';
import { DomainKeys, padSequence, segmentDataPosition, trailingNumber } from './keys';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { listResyncs } from './bitmap';
import type { BaseRecord, LogPosition, RehydrationTarget, ResyncRecord, SyncIntent } from './records';
import { decodeSegmentAsync, CorruptSegmentError, type Segment } from './segment-codec';
import { readSegmentObject } from './segment-objects';

export interface ChainLink {
  epoch: number;
  segment: number;
  key: string;
  /** Size of the segment object: what reading it fetches. */
  bytes: number;
}

/**
 * The segments readers apply, in order: each epoch's segments up to the handoff sealed by the
 * next epoch, then the current epoch's. Segments a fenced writer put after the handoff are not
 * in it. With `from`, only the links at or after that position are listed (a follower's next
 * segment, or a base's first), epoch by epoch, without listing the log before it.
 */
export async function resolveChain(store: ObjectStore, ownership: Ownership, from?: { epoch: number; segment: number }): Promise<ChainLink[]> {
  const keys = new DomainKeys(store.prefix, ownership.domain);
  for (;;) {
    const epochs = await ownership.epochs();
    const chain: ChainLink[] = [];
    for (const [index, epoch] of epochs.entries()) {
      if (from && epoch < from.epoch) continue;
      const next = epochs[index + 1];
      const limit = next === undefined ? Infinity : ((await ownership.handoff(next)).lastSegment ?? -1);
      const startAfter = from && epoch === from.epoch && from.segment > 0 ? keys.segment(epoch, from.segment - 1) : undefined;
      const { keys: segmentKeys, sizes } = await store.list(keys.logPrefix(epoch), startAfter ? { startAfter } : {});
      // Only a listing with an object small enough to be a reference asks what was uploaded: a
      // follower lists the log every few seconds, mostly finding segments stored as they are.
      const mayRefer = segmentKeys.some((key) => (sizes.get(key) ?? 0) <= SEGMENT_REFERENCE_MAX_BYTES);
      const uploaded = mayRefer ? await uploadedSegmentBytes(store, keys, epoch, from && epoch === from.epoch ? from.segment : 0) : new Map<number, number>();
      for (const key of segmentKeys) {
        const segment = trailingNumber(key);
        const listed = sizes.get(key) ?? 0;
        const bytes = listed <= SEGMENT_REFERENCE_MAX_BYTES ? (uploaded.get(segment) ?? listed) : listed;
        if (segment <= limit) chain.push({ epoch, segment, key, bytes });
      }
    }
    // A claim that landed while the log was listed seals the listed epoch at its handoff; a fenced
    // writer's later put may already be in the listing, so list again against the new epochs.
    if ((await ownership.epochs()).length === epochs.length) return chain;
  }
}

/** No segment reference is larger (it names one S3 key, at most 1,024 bytes); a listed object this small may be one. */
const SEGMENT_REFERENCE_MAX_BYTES = 2048;

/**
 * The size of the bytes uploaded for each segment of the epoch from `from` on, by the cursor the
 * segment starts after: what reading a referring segment fetches. When writers from the same
 * cursor both uploaded, the larger (their sizes differ only by how much each read of the journal).
 */
async function uploadedSegmentBytes(store: ObjectStore, keys: DomainKeys, epoch: number, from: number): Promise<Map<number, number>> {
  const prefix = keys.segmentDataPrefix(epoch);
  const { keys: dataKeys, sizes } = await store.list(prefix, from > 0 ? { startAfter: `${prefix}${padSequence(from)}` } : {});
  const bytes = new Map<number, number>();
  for (const key of dataKeys) {
    const segment = segmentDataPosition(key);
    bytes.set(segment, Math.max(bytes.get(segment) ?? 0, sizes.get(key) ?? 0));
  }
  return bytes;
}

/**
 * Fetches and decodes the chain with `concurrency` GETs in flight, yielding segments in chain
 * order. Checks continuity inside each epoch (each segment starts where the previous ended), so
 * a missing segment stops the reader instead of leaving a silent gap.
 */
export async function* readChain(store: ObjectStore, chain: ChainLink[], concurrency: number): AsyncGenerator<{ link: ChainLink; segment: Segment }> {
  const inFlight: Array<Promise<Segment>> = [];
  let nextToFetch = 0;
  const fetch = async (link: ChainLink): Promise<Segment> => {
    const body = await readSegmentObject(store, link.key);
    if (!body) throw new CorruptSegmentError(link.key, 'listed but missing');
    const segment = await decodeSegmentAsync(link.key, body);
    if (segment.epoch !== link.epoch || segment.afterSequence !== link.segment) throw new CorruptSegmentError(link.key, 'header does not match its key');
    return segment;
  };
  let previous: { link: ChainLink; segment: Segment } | undefined;
  for (let index = 0; index < chain.length; index++) {
    while (nextToFetch < chain.length && nextToFetch < index + concurrency) {
      const promise = fetch(chain[nextToFetch++]);
      // Failures surface when the segment's turn comes; until then they must not be unhandled.
      promise.catch(() => undefined);
      inFlight.push(promise);
    }
    const segment = await inFlight.shift()!;
    const link = chain[index];
    if (previous && previous.link.epoch === link.epoch && previous.segment.lastSequence !== segment.afterSequence) {
      throw new CorruptSegmentError(link.key, `gap in the log: previous segment ${previous.link.key} ends at ${previous.segment.lastSequence}`);
    }
    previous = { link, segment };
    yield previous;
  }
}

/** The target cannot be rebuilt exactly from what the store holds (inside an unfinished initial sync, or compacted away). */
export class TargetNotRestorableError extends Error {
  constructor(domain: string, reason: string) {
    super(`domain ${domain}: ${reason}`);
    this.name = 'TargetNotRestorableError';
  }
}

export interface RestorePlan {
  /** Start from this image; none means from zeros. */
  base?: BaseRecord;
  /** The segments after the base, in order (for a position target, still uncut). */
  chain: ChainLink[];
}

/** What planning reads from the store; read once to plan many targets against the same state. */
export interface PlanningState {
  chain: ChainLink[];
  bases: BaseRecord[];
  intents: SyncIntent[];
  resyncs: ResyncRecord[];
  epochs: number[];
}

export async function readPlanningState(store: ObjectStore, ownership: Ownership): Promise<PlanningState> {
  const [chain, bases, intents, resyncs, epochs] = await Promise.all([
    resolveChain(store, ownership),
    listBases(store, ownership),
    listSyncIntents(store, ownership),
    listResyncs(store, ownership),
    ownership.epochs(),
  ]);
  return { chain, bases, intents, resyncs, epochs };
}

const comparePositions = (a: { epoch: number; cursor: number }, b: { epoch: number; cursor: number }) => a.epoch - b.epoch || a.cursor - b.cursor;

/**
 * What rebuilding `target` reads: the newest committed base at or before it, and the segments
 * after that base. Refused when an initial sync the target depends on is unfinished or the target
 * lies inside it (base + log is exact only from the base's `consistentFrom` on), and when the
 * target is older than everything a compaction left.
 */
export async function planRestore(store: ObjectStore, ownership: Ownership, target: RehydrationTarget, pinnedBase?: string | null, state?: PlanningState): Promise<RestorePlan> {
  const domain = ownership.domain;
  const { chain, bases, intents, resyncs, epochs } = state ?? (await readPlanningState(store, ownership));
  const atOrBeforeTarget = (position: { epoch: number; cursor: number }, timestamp: number): boolean => {
    if (target.kind === 'latest') return true;
    if (target.kind === 'instant') return timestamp <= target.at;
    return comparePositions(position, { epoch: target.position.epoch, cursor: target.position.segment }) <= 0;
  };
  let base: BaseRecord | undefined;
  if (pinnedBase !== undefined) {
    // A resumed rehydration keeps the base its first attempt wrote to the disks.
    base = pinnedBase === null ? undefined : bases.find((b) => b.id === pinnedBase);
    if (pinnedBase !== null && !base) throw new TargetNotRestorableError(domain, `base ${pinnedBase} that this rehydration started from is gone`);
  } else {
    base = bases.filter((b) => atOrBeforeTarget(b, b.timestamp)).at(-1);
  }
  const blocking = intents.find((i) => atOrBeforeTarget(i, i.createdAt) && (!base || comparePositions(i, base) > 0));
  if (blocking) throw new TargetNotRestorableError(domain, `the initial sync of epoch ${blocking.epoch} (from ${blocking.site}) is not finished; no target after its start can be rebuilt yet`);
  refuseInsideResync(domain, target, chain, base, resyncs);
  if (!base) {
    const oldest = bases[0];
    if (bases.some((b) => b.kind === 'compaction')) throw new TargetNotRestorableError(domain, `the target is before the oldest base ${oldest.id}; the log before it was compacted away`);
    if (intents.some((i) => i.epoch === epochs[0])) throw new TargetNotRestorableError(domain, `the target is before the initial sync of epoch ${epochs[0]}, the oldest data the store holds`);
    return { chain };
  }
  if (target.kind === 'position' && base.consistentFrom && target.position.epoch === base.epoch) {
    const from = base.consistentFrom;
    if (target.position.segment < from.segment || (target.position.segment === from.segment && target.position.entries < from.entries)) {
      throw new TargetNotRestorableError(domain, `position segment ${target.position.segment} entry ${target.position.entries} of epoch ${base.epoch} lies inside the initial sync of base ${base.id}, exact only from segment ${from.segment} entry ${from.entries}`);
    }
  }
  const after = chain.filter((link) => link.epoch > base.epoch || (link.epoch === base.epoch && link.segment >= base.cursor));
  const first = after[0];
  if (first && first.epoch === base.epoch && first.segment !== base.cursor) throw new CorruptSegmentError(first.key, `gap in the log: base ${base.id} ends at ${base.cursor}`);
  return { base, chain: after };
}

const positionBefore = (a: LogPosition, b: LogPosition) => a.epoch < b.epoch || (a.epoch === b.epoch && (a.segment < b.segment || (a.segment === b.segment && a.entries < b.entries)));

/**
 * Refuses a target inside a stretch that bitmap mode left out: from its first skipped write (or
 * its resync segment) until base + log is exact again, or without end while the resync is not
 * finished.
 */
function refuseInsideResync(domain: string, target: RehydrationTarget, chain: ChainLink[], base: BaseRecord | undefined, resyncs: ResyncRecord[]): void {
  for (const resync of resyncs) {
    // A later base replaces the stretch for positions; an instant inside a finished stretch stays
    // unknowable whatever base follows it (an unfinished one can only be replaced by a new epoch's base).
    if (base && comparePositions({ epoch: resync.epoch, cursor: resync.segment }, base) < 0 && (target.kind !== 'instant' || resync.consistentAt === undefined)) continue;
    const start: LogPosition = { epoch: resync.epoch, segment: resync.segment, entries: 0 };
    const until = resync.consistentFrom;
    let inside: boolean;
    if (target.kind === 'instant') inside = target.at >= resync.firstSkippedAt && (resync.consistentAt === undefined || target.at < resync.consistentAt);
    else {
      const last = chain.at(-1);
      const position = target.kind === 'position' ? target.position : last ? { epoch: last.epoch, segment: last.segment, entries: Number.MAX_SAFE_INTEGER } : undefined;
      inside = position !== undefined && !positionBefore(position, start) && (until === undefined || positionBefore(position, until));
    }
    if (inside) {
      throw new TargetNotRestorableError(
        domain,
        `the target lies in a stretch whose writes the log does not hold one by one (a bitmap episode's resync or a new disk's copy, epoch ${resync.epoch} after journal sequence ${resync.segment}) that ${until ? `is exact again only from segment ${until.segment} entry ${until.entries}` : 'has not finished'}`,
      );
    }
  }
}
