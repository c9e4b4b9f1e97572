import type { CreateDiskSpec, VirtualDisk } from '../sites/provider';
import { commitBase, copyDisksIntoBase, listSyncIntents } from './base-image';
import { parseBaseId, segmentDataPosition, trailingNumber } from './keys';
import { planRestore, readChain, readPlanningState, TargetNotRestorableError } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { leaseSchema, parseRecord, restorePointSchema, type BaseRecord, type DomainDisk, type Lease, type LogPosition } from './records';
import type { RehydrationTarget } from './records';
import { rehydrate, type TargetDisks } from './rehydrate';
import { readPointTags } from './restore-points';
import { selectRetained, windowOnly, type RetentionPolicy } from '../common/retention';

export type GcStep = 'points-deleted' | 'compacted' | 'segments-deleted' | 'bases-deleted';

export interface GcOptions {
  store: ObjectStore;
  ownership: Ownership;
  disks: DomainDisk[];
  windowMs: number;
  /** Which restore points are kept; default: every point younger than the window. */
  retention?: RetentionPolicy;
  now: number;
  /** Called after each step: the activity heartbeats here, tests kill here. */
  onStep?: (step: GcStep) => void | Promise<void>;
  /** Called while a step makes progress (segments read, chunks stored), so that a heartbeat timeout only catches a dead worker. */
  onProgress?: () => void;
}

export interface GcResult {
  /** The base this run committed, if any. */
  compactedInto?: string;
  /** Nothing before this base is needed any more; undefined when something still needs the whole log. */
  oldestNeededBase?: string;
  deleted: { points: number; segments: number; bases: number; leases: number };
  /** Why nothing was deleted, when nothing was. */
  skipped?: string;
}

/** Disks in memory, the target a compaction rehydrates into before it stores them as a base. */
class MemoryDisks implements TargetDisks {
  readonly disks = new Map<string, Buffer>();
  createDisk(spec: CreateDiskSpec): Promise<VirtualDisk> {
    if (!this.disks.has(spec.id)) this.disks.set(spec.id, Buffer.alloc(spec.sizeBytes));
    return Promise.resolve({ ...spec });
  }
  readDisk(diskId: string, offset: number, length: number): Promise<Buffer> {
    return Promise.resolve(this.disks.get(diskId)!.subarray(offset, offset + length));
  }
  writeDisk(diskId: string, offset: number, data: Buffer): Promise<void> {
    data.copy(this.disks.get(diskId)!, offset);
    return Promise.resolve();
  }
}

const before = (a: { epoch: number; cursor: number }, b: { epoch: number; cursor: number }) => a.epoch < b.epoch || (a.epoch === b.epoch && a.cursor < b.cursor);

/**
 * The newest whole segment older than the window, after the newest base: the position a new
 * compaction base images. Undefined when there is none or the log there is not restorable (an
 * unfinished initial sync).
 */
async function compactionPoint(options: GcOptions, cutoff: number): Promise<{ position: LogPosition; cursor: number; timestamp: number } | undefined> {
  let plan;
  try {
    plan = await planRestore(options.store, options.ownership, { kind: 'latest' });
  } catch (error) {
    if (error instanceof TargetNotRestorableError) return undefined;
    throw error;
  }
  let found: { position: LogPosition; cursor: number; timestamp: number } | undefined;
  for await (const { link, segment } of readChain(options.store, plan.chain, 8)) {
    const newest = segment.entries.at(-1)?.timestamp ?? 0;
    if (newest >= cutoff) break;
    found = { position: { epoch: link.epoch, segment: link.segment, entries: segment.entries.length }, cursor: segment.lastSequence, timestamp: newest };
  }
  return found;
}

/**
 * Garbage collection of one domain, in steps that are each safe to die after:
 * 1. delete the restore points the retention policy does not keep (by default those older than
 *    the window; pinned points always stay), first, so that no point ever names data that is gone
 *    or no longer reachable once a newer base exists, then the pins and drill results of points
 *    that are gone;
 * 2. compact: the log older than the protection window becomes a new base (rebuilt in memory from
 *    the current base and log, stored chunk by chunk, committed by its base.json);
 * 3. find the oldest base any remaining target needs: the end of the log, every remaining restore
 *    point (a pinned one older than the window keeps the base it starts from), every live lease of
 *    a running rehydration; everything from it on is kept;
 * 4. delete the segments before it that every live log follower has applied (at or before the
 *    position its lease names: a follower behind the compaction keeps the segments after its
 *    position, and holds back no base), then the bases before it (base.json first, so that a base
 *    is never half there) and expired leases.
 * Ownership, handoff and sync intent objects are never deleted: create-if-absent guards them.
 * Re-running after a kill at any step repeats nothing harmful: creates are if-absent and deletes
 * of gone keys succeed.
 */
export async function collectGarbage(options: GcOptions): Promise<GcResult> {
  const { store, ownership, now } = options;
  const keys = ownership.keys;
  const cutoff = now - options.windowMs;
  const result: GcResult = { deleted: { points: 0, segments: 0, bases: 0, leases: 0 } };

  const pointKeys = (await store.list(keys.pointsPrefix())).keys;
  const points = await Promise.all(pointKeys.map(async (key) => ({ key, point: parseRecord(restorePointSchema, key, (await store.get(key))!) })));
  const tags = await readPointTags(store, ownership);
  const policy = options.retention ?? windowOnly(options.windowMs);
  const pinned = new Set([...tags].filter(([, t]) => t.pin || (policy.keepTested && t.tested.length > 0)).map(([id]) => id));
  const kept = new Set(selectRetained(points.map((p) => p.point), pinned, policy, now).flatMap((d) => (d.kept ? [d.id] : [])));
  const expiredPoints = points.filter((p) => !kept.has(p.point.id));
  const remainingPoints = points.filter((p) => kept.has(p.point.id));
  await store.delete(expiredPoints.map((p) => p.key));
  result.deleted.points = expiredPoints.length;
  // Their tags go too, and those of points an earlier run deleted before it died. A point made
  // since the listing is not gone: its record is there.
  const goneIds = await Promise.all([...tags.keys()].filter((id) => !kept.has(id)).map(async (id) => ((await store.get(keys.point(id))) ? [] : [id])));
  const tagKeys = await Promise.all(goneIds.flat().map(async (id) => (await store.list(keys.pointTags(id))).keys));
  await store.delete(tagKeys.flat());
  await options.onStep?.('points-deleted');

  const compaction = await compactionPoint(options, cutoff);
  const image = new MemoryDisks();
  // A position inside a stretch bitmap mode left out is no image; a later run compacts past it.
  const rebuilt = compaction
    ? await rehydrate({ store, ownership, target: image, disks: options.disks, datastore: 'memory', upTo: { kind: 'position', position: compaction.position }, onProgress: options.onProgress }).catch((error: unknown) => {
        if (error instanceof TargetNotRestorableError) return undefined;
        throw error;
      })
    : undefined;
  if (compaction && rebuilt) {
    const baseId = keys.baseId(compaction.position.epoch, compaction.cursor);
    await copyDisksIntoBase({ store, ownership, baseId, disks: options.disks, source: image, concurrency: 8, onProgress: () => options.onProgress?.() });
    await commitBase(store, ownership, { epoch: compaction.position.epoch, cursor: compaction.cursor, kind: 'compaction', disks: options.disks, consistentFrom: null, timestamp: compaction.timestamp, createdAt: now });
    result.compactedInto = baseId;
  }
  await options.onStep?.('compacted');

  const leaseKeys = (await store.list(keys.leasesPrefix())).keys;
  const leases = await Promise.all(leaseKeys.map(async (key) => ({ key, lease: parseRecord(leaseSchema, key, (await store.get(key))!) })));
  const live = leases.filter((l) => l.lease.expiresAt > now).map((l) => l.lease);
  // Followers need no base, only the segments after the position they have applied.
  const followers = live.flatMap((l) => (l.position ? [l.position] : []));
  const readers = live.filter((l) => !l.position);
  const oldest = await oldestNeededBase(options, [{ kind: 'latest' }, ...remainingPoints.map((p) => ({ kind: 'position' as const, position: p.point.position }))], readers);
  if (typeof oldest === 'string') {
    result.skipped = oldest;
    return result;
  }
  result.oldestNeededBase = oldest.id;

  const epochs = (await ownership.epochs()).filter((e) => e <= oldest.epoch);
  const unneeded = (segment: { epoch: number; cursor: number }) => before(segment, oldest) && followers.every((f) => !before({ epoch: f.epoch, cursor: f.segment }, segment));
  const segmentKeys = (await Promise.all(epochs.map(async (e) => (await store.list(keys.logPrefix(e))).keys))).flat();
  const oldSegments = segmentKeys.filter((key) => unneeded({ epoch: trailingNumber(key.slice(0, key.lastIndexOf('/'))), cursor: trailingNumber(key) }));
  await store.delete(oldSegments);
  result.deleted.segments = oldSegments.length;
  // The bytes of large segments go after the segments that refer to them, with any upload that
  // never made it into the log (a writer that lost the key or died before committing).
  const oldUploads = await Promise.all(
    epochs.map(async (epoch) => (await store.list(keys.segmentDataPrefix(epoch))).keys.filter((key) => unneeded({ epoch, cursor: segmentDataPosition(key) }))),
  );
  await store.delete(oldUploads.flat());
  await options.onStep?.('segments-deleted');

  // Chunks of an unfinished initial sync have no base.json yet and must stay.
  const syncing = new Set((await listSyncIntents(store, ownership)).map((i) => keys.baseId(i.epoch, i.cursor)));
  const { prefixes } = await store.list(keys.basesPrefix(), { delimiter: '/' });
  for (const prefix of prefixes) {
    const id = prefix.slice(keys.basesPrefix().length, -1);
    const position = parseBaseId(id);
    if (!before(position, oldest) || (syncing.has(id) && !(await store.get(keys.baseRecord(id))))) continue;
    await store.delete([keys.baseRecord(id)]);
    await store.delete((await store.list(prefix)).keys);
    result.deleted.bases++;
  }
  const expiredLeases = leases.filter((l) => l.lease.expiresAt <= now).map((l) => l.key);
  await store.delete(expiredLeases);
  result.deleted.leases = expiredLeases.length;
  await options.onStep?.('bases-deleted');
  return result;
}

/** The oldest base that some target or live lease starts from, or why nothing can be deleted. */
async function oldestNeededBase(options: GcOptions, targets: RehydrationTarget[], leases: Lease[]): Promise<BaseRecord | string> {
  const state = await readPlanningState(options.store, options.ownership);
  const bases = state.bases;
  const needed: BaseRecord[] = [];
  for (const lease of leases) {
    if (lease.base === undefined) return `rehydration ${lease.holder} has not planned yet`;
    if (lease.base === null) return `rehydration ${lease.holder} reads the whole log`;
    const base = bases.find((b) => b.id === lease.base);
    if (base) needed.push(base);
  }
  for (const target of targets) {
    let plan;
    try {
      plan = await planRestore(options.store, options.ownership, target, undefined, state);
    } catch (error) {
      if (error instanceof TargetNotRestorableError) return `a target cannot be planned: ${error.message}`;
      throw error;
    }
    if (!plan.base) return 'a target is rebuilt from the whole log (no base before it)';
    needed.push(plan.base);
  }
  return needed.reduce((a, b) => (before(b, a) ? b : a));
}
