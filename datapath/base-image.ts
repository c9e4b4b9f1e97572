import type { SiteProvider } from '../sites/provider';
import { CorruptBaseChunkError, decodeBaseChunkAsync, encodeBaseChunk } from './base-codec';
import { trailingNumber } from './keys';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { forEachLimited, limited } from '../common/parallel';
import { baseSchema, parseRecord, RECORD_FORMAT_VERSION, syncIntentSchema, type BaseRecord, type DomainDisk, type LogPosition, type SyncIntent } from './records';
import { decodeSegment } from './segment-codec';
import { readSegmentObject } from './segment-objects';

/**
 * Base images: a domain's disks as of one log position, stored as checksummed non-zero chunks
 * and committed by a `base.json` written last. A base whose record is missing is not a base:
 * readers never see a half-written one, and writers simply finish it.
 */
export const BASE_CHUNK_BYTES = 1024 * 1024;

export async function listBases(store: ObjectStore, ownership: Ownership): Promise<BaseRecord[]> {
  const { prefixes } = await store.list(ownership.keys.basesPrefix(), { delimiter: '/' });
  const bases = await Promise.all(
    prefixes.map(async (prefix) => {
      const key = ownership.keys.baseRecord(prefix.slice(ownership.keys.basesPrefix().length, -1));
      const body = await store.get(key);
      return body ? parseRecord(baseSchema, key, body) : undefined;
    }),
  );
  return bases.filter((b): b is BaseRecord => b !== undefined).sort((a, b) => a.epoch - b.epoch || a.cursor - b.cursor);
}

export async function listSyncIntents(store: ObjectStore, ownership: Ownership): Promise<SyncIntent[]> {
  const { keys } = await store.list(ownership.keys.syncPrefix());
  return Promise.all(keys.map(async (key) => parseRecord(syncIntentSchema, key, (await store.get(key))!)));
}

/** Records that `epoch`'s image is being copied at `cursor`; a retry or a restarted protection gets the first intent back. */
export async function ensureSyncIntent(store: ObjectStore, ownership: Ownership, input: { epoch: number; cursor: number; site: string; now: number }): Promise<SyncIntent> {
  const key = ownership.keys.syncIntent(input.epoch);
  const intent: SyncIntent = { formatVersion: RECORD_FORMAT_VERSION, epoch: input.epoch, cursor: input.cursor, site: input.site, createdAt: input.now };
  if (await store.createIfAbsent(key, JSON.stringify(intent), 'application/json')) return intent;
  return parseRecord(syncIntentSchema, key, (await store.get(key))!);
}

export async function readBase(store: ObjectStore, ownership: Ownership, baseId: string): Promise<BaseRecord | undefined> {
  const key = ownership.keys.baseRecord(baseId);
  const body = await store.get(key);
  return body ? parseRecord(baseSchema, key, body) : undefined;
}

/** Where a copy stands: every chunk before (disk, offset) is stored or was zero. */
export interface BaseCopyProgress {
  disk: number;
  offset: number;
  bytesRead: number;
  chunksStored: number;
}

export interface CopyOptions {
  store: ObjectStore;
  ownership: Ownership;
  baseId: string;
  disks: DomainDisk[];
  /** Without `allocatedChunks` (an image in memory), every chunk is read. */
  source: Pick<SiteProvider, 'readDisk'> & Partial<Pick<SiteProvider, 'allocatedChunks'>>;
  resumeFrom?: BaseCopyProgress;
  concurrency?: number;
  onProgress: (progress: BaseCopyProgress) => void | Promise<void>;
  shouldStop?: () => boolean;
}

/**
 * Disks listed and copied at once. One disk after the other, a domain of small disks cost a few
 * round trips per disk in a row (list its chunks, read, store, report): 10,000 disks of 1 MiB took
 * seven to eleven minutes, during which the domain has no restore point and cannot be restored.
 */
const DISKS_COPIED_AT_ONCE = 16;

/**
 * Copies the disks into chunks of a base, `concurrency` chunks read and stored at a time across
 * `DISKS_COPIED_AT_ONCE` disks, reporting progress after each chunk and each disk. Only the
 * chunks the site says are allocated are read: the others are zeros, which a base does not store.
 * That list may be read before later writes allocate more; those writes are in the log after the
 * base's cursor, as any write during the copy is. Chunk keys derive from (base, disk, offset) and
 * are created only if absent, so a resumed or repeated copy never stores a chunk twice; a chunk an
 * earlier attempt stored stays, which is as good as a fresh read because the log after the base's
 * cursor overwrites whatever changed since. Progress names the first disk not yet copied and the
 * offset before which its chunks are: a resumed copy reads nothing before it again, and at most the
 * disks after it that were in flight.
 */
export async function copyDisksIntoBase(options: CopyOptions): Promise<BaseCopyProgress> {
  const concurrency = options.concurrency ?? 4;
  const zeros = Buffer.alloc(BASE_CHUNK_BYTES);
  const resume = options.resumeFrom ?? { disk: 0, offset: 0, bytesRead: 0, chunksStored: 0 };
  const counted = { bytesRead: resume.bytesRead, chunksStored: resume.chunksStored };
  const io = limited(concurrency);
  /** Every disk before it is copied. */
  let firstUncopied = resume.disk;
  /** Of each disk being copied, the offset before which every chunk is. */
  const copiedBefore = new Map<number, number>();
  const copiedDisks = new Set<number>();
  const startOffset = (index: number) => (index === resume.disk ? resume.offset : 0);
  const progress = (): BaseCopyProgress => ({ disk: firstUncopied, offset: copiedBefore.get(firstUncopied) ?? startOffset(firstUncopied), ...counted });
  // Set by a stop or a failure: no chunk starts after it, on any disk.
  let halted = false;
  const halt = () => (halted ||= options.shouldStop?.() ?? false);

  const copyChunk = async (disk: DomainDisk, offset: number) => {
    const data = await options.source.readDisk(disk.diskId, offset, Math.min(BASE_CHUNK_BYTES, disk.sizeBytes - offset));
    counted.bytesRead += data.length;
    if (data.equals(zeros.subarray(0, data.length))) return;
    if (await options.store.createIfAbsent(options.ownership.keys.baseChunk(options.baseId, disk.diskId, offset), await encodeBaseChunk(offset, data))) counted.chunksStored++;
  };

  const copyDisk = async (index: number) => {
    if (halt()) return;
    const disk = options.disks[index];
    const from = startOffset(index);
    copiedBefore.set(index, from);
    const listed = options.source.allocatedChunks ? await io(() => options.source.allocatedChunks!(disk.diskId, BASE_CHUNK_BYTES)) : everyChunk(disk.sizeBytes);
    const offsets = listed.filter((offset) => offset >= from && offset < disk.sizeBytes);
    const copied = new Array<boolean>(offsets.length).fill(false);
    let prefix = 0;
    await forEachLimited([...offsets.keys()], concurrency, async (at) => {
      if (halt()) return;
      await io(() => copyChunk(disk, offsets[at]));
      copied[at] = true;
      while (prefix < offsets.length && copied[prefix]) prefix++;
      copiedBefore.set(index, prefix < offsets.length ? offsets[prefix] : disk.sizeBytes);
      await options.onProgress(progress());
    });
    if (halted) return;
    copiedDisks.add(index);
    copiedBefore.delete(index);
    while (copiedDisks.delete(firstUncopied)) firstUncopied++;
    // Also after a disk with nothing to read: 10,000 such disks take longer than a heartbeat timeout.
    await options.onProgress(progress());
  };

  const remaining = Array.from({ length: Math.max(0, options.disks.length - resume.disk) }, (_, i) => resume.disk + i);
  await forEachLimited(remaining, DISKS_COPIED_AT_ONCE, async (index) => {
    try {
      await copyDisk(index);
    } catch (error) {
      halted = true;
      throw error;
    }
  });
  return progress();
}

function everyChunk(sizeBytes: number): number[] {
  return Array.from({ length: Math.ceil(sizeBytes / BASE_CHUNK_BYTES) }, (_, i) => i * BASE_CHUNK_BYTES);
}

/**
 * Where base (epoch, cursor) plus the log becomes exact: the end of the epoch's log once it holds
 * every write of the domain's VMs up to `journalMark` (the journal's last sequence read after the
 * copy). Null when there is no segment after the cursor and no such write: the base is exact as
 * it is. Undefined while the replicator has not stored them yet.
 */
export async function consistentPosition(
  store: ObjectStore,
  ownership: Ownership,
  journal: Pick<SiteProvider, 'readJournal'>,
  input: { epoch: number; cursor: number; vms: string[]; journalMark: number },
): Promise<LogPosition | null | undefined> {
  const { keys } = await store.list(ownership.keys.logPrefix(input.epoch));
  const lastKey = keys.filter((key) => trailingNumber(key) >= input.cursor).at(-1);
  let position: LogPosition | null = null;
  let coveredUpTo = input.cursor;
  if (lastKey) {
    const body = await readSegmentObject(store, lastKey);
    if (!body) throw new Error(`segment ${lastKey} was listed but is missing`);
    const segment = decodeSegment(lastKey, body);
    position = { epoch: input.epoch, segment: trailingNumber(lastKey), entries: segment.entries.length };
    coveredUpTo = segment.lastSequence;
  }
  const next = await journal.readJournal({ afterSequence: coveredUpTo, vms: input.vms, maxEntries: 1 });
  // Trimmed past what we listed: the replicator acknowledged more segments meanwhile; look again.
  if (next.firstRetainedSequence > coveredUpTo + 1) return undefined;
  const pending = next.entries[0];
  return pending === undefined || pending.sequence > input.journalMark ? position : undefined;
}

/** Commits a base: lists its chunks and creates `base.json`. An already committed base is returned as it is. */
export async function commitBase(
  store: ObjectStore,
  ownership: Ownership,
  input: Omit<BaseRecord, 'formatVersion' | 'id' | 'domain' | 'disks' | 'chunkBytes'> & { disks: DomainDisk[] },
): Promise<BaseRecord> {
  const id = ownership.keys.baseId(input.epoch, input.cursor);
  const existing = await readBase(store, ownership, id);
  if (existing) return existing;
  // One listing of every disk's chunks: a listing per disk was 10,000 at once for a 10,000-VM domain.
  const chunksOf = new Map<string, number[]>();
  const root = ownership.keys.baseChunksRoot(id);
  for (const key of (await store.list(root)).keys) {
    const diskId = decodeURIComponent(key.slice(root.length).split('/')[0]);
    const chunks = chunksOf.get(diskId) ?? [];
    chunks.push(trailingNumber(key));
    chunksOf.set(diskId, chunks);
  }
  const disks = input.disks.map((disk) => ({ ...disk, chunks: chunksOf.get(disk.diskId) ?? [] }));
  const record: BaseRecord = { formatVersion: RECORD_FORMAT_VERSION, id, domain: ownership.domain, chunkBytes: BASE_CHUNK_BYTES, ...input, disks };
  const key = ownership.keys.baseRecord(id);
  if (await store.createIfAbsent(key, JSON.stringify(record), 'application/json')) return record;
  return parseRecord(baseSchema, key, (await store.get(key))!);
}

/**
 * Fetches a base's chunks, `concurrency` GETs at a time, handing each verified chunk (and the size
 * of its object) to `use` in no particular order. A chunk being used does not hold up the next
 * GETs: up to `concurrency` more chunks are used meanwhile (a rehydration's writes to the target).
 */
export async function readBaseChunks(
  store: ObjectStore,
  ownership: Ownership,
  base: BaseRecord,
  concurrency: number,
  use: (diskId: string, offset: number, data: Buffer, storedBytes: number) => void | Promise<void>,
  wanted: (diskId: string) => boolean = () => true,
  wantedChunk: (diskId: string, offset: number) => boolean = () => true,
): Promise<void> {
  const chunks = base.disks.filter((disk) => wanted(disk.diskId)).flatMap((disk) => disk.chunks.filter((offset) => wantedChunk(disk.diskId, offset)).map((offset) => ({ diskId: disk.diskId, offset })));
  const get = limited(concurrency);
  await forEachLimited(chunks, 2 * concurrency, async ({ diskId, offset }) => {
    const key = ownership.keys.baseChunk(base.id, diskId, offset);
    const body = await get(() => store.getFramed(key));
    if (!body) throw new CorruptBaseChunkError(key, 'listed in the base but missing');
    await use(diskId, offset, await decodeBaseChunkAsync(key, offset, body), body.length);
  });
}
