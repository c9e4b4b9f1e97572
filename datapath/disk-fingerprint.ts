import { createHash } from 'node:crypto';
import type { SiteProvider } from '../sites/provider';
import { forEachLimited } from '../common/parallel';
import { BASE_CHUNK_BYTES, readBaseChunks } from './base-image';
import { decodeBaseChunk } from './base-codec';
import { isAllZeros } from './zeros';
import { planRestore, readChain, type ChainLink } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import type { DiskFingerprint, DomainDisk, LogPosition } from './records';
import type { BlockWrite } from './segment-codec';

/**
 * A disk's fingerprint: SHA-256 over its size and, for each non-zero 1 MiB region in order, the
 * region's offset and SHA-256. Every byte counts, so one changed byte or one unreplicated write
 * anywhere changes it (a sample of offsets would miss both, and a delta onto such a disk would
 * silently keep the difference). It costs one local read of the disk, regions in parallel, and
 * no transfer; zero regions count as absent, so the same digest follows from a base (which
 * stores only non-zero chunks) plus the log without materialising the zeros.
 */
export const REGION_BYTES = BASE_CHUNK_BYTES;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The digest of a disk from its non-zero regions' hashes, by offset. */
function digest(sizeBytes: number, regionHashes: Map<number, string>): string {
  const hash = createHash('sha256').update(`size:${sizeBytes}\n`);
  for (const offset of [...regionHashes.keys()].sort((a, b) => a - b)) hash.update(`${offset}:${regionHashes.get(offset)}\n`);
  return hash.digest('hex');
}

/** Reads the disk as it is at its site; `onRead` is told each region's length (for progress). */
export async function fingerprintDisk(source: Pick<SiteProvider, 'readDisk'>, diskId: string, sizeBytes: number, concurrency = 8, onRead?: (bytes: number) => void | Promise<void>): Promise<DiskFingerprint> {
  const offsets: number[] = [];
  for (let offset = 0; offset < sizeBytes; offset += REGION_BYTES) offsets.push(offset);
  const hashes = new Map<number, string>();
  await forEachLimited(offsets, concurrency, async (offset) => {
    const data = await source.readDisk(diskId, offset, Math.min(REGION_BYTES, sizeBytes - offset));
    if (!isAllZeros(data)) hashes.set(offset, sha256(data));
    await onRead?.(data.length);
  });
  return { diskId, sizeBytes, sha256: digest(sizeBytes, hashes) };
}

/**
 * Disks read at once by `fingerprintDisks`, each with `concurrency` regions in flight. Disk by disk,
 * a domain of small disks kept one or two reads in flight: 1,200 disks of 1 MiB took 19 s to
 * fingerprint at a departure and 28 s at the failback's check.
 */
export const DISKS_FINGERPRINTED_AT_ONCE = 8;

/** The log's writes `expectedFingerprints` keeps in memory after its first pass, at most, by default. */
const KEPT_LOG_BYTES = 64 * 1024 * 1024;

/**
 * Every disk's fingerprint, in the order given, `DISKS_FINGERPRINTED_AT_ONCE` disks at a time;
 * `onDisk` is told each one as it is known (in any order).
 */
export async function fingerprintDisks(
  source: Pick<SiteProvider, 'readDisk'>,
  disks: Array<Pick<DomainDisk, 'diskId' | 'sizeBytes'>>,
  concurrency = 4,
  onRead?: (bytes: number) => void | Promise<void>,
  onDisk?: (index: number, fingerprint: DiskFingerprint) => void,
): Promise<DiskFingerprint[]> {
  const fingerprints: DiskFingerprint[] = new Array<DiskFingerprint>(disks.length);
  await forEachLimited(
    disks.map((disk, index) => ({ disk, index })),
    DISKS_FINGERPRINTED_AT_ONCE,
    async ({ disk, index }) => {
      fingerprints[index] = await fingerprintDisk(source, disk.diskId, disk.sizeBytes, concurrency, onRead);
      onDisk?.(index, fingerprints[index]);
    },
  );
  return fingerprints;
}

export interface ExpectedFingerprints {
  fingerprints: DiskFingerprint[];
  /** Fetched from the store: base chunks (some twice) and log segments (once per pass). */
  bytesRead: number;
}

/**
 * The fingerprints the disks must have at `position`, from base + log, without the disks and
 * with bounded memory: one pass over the log finds the regions it touches; the base's other
 * chunks are hashed as they stream by; the touched regions are then rebuilt `batchRegions` at a
 * time (their base chunk or zeros, overlaid with the log read again). Memory is one hash per
 * non-zero region plus one batch; the log is read once per batch, so a small delta costs one pass.
 */
export async function expectedFingerprints(
  store: ObjectStore,
  ownership: Ownership,
  disks: DomainDisk[],
  position: LogPosition,
  options: {
    readConcurrency?: number;
    batchRegions?: number;
    /** The log's writes kept in memory after the first pass, at most (default `KEPT_LOG_BYTES`); over it, each batch reads the log again. */
    keptLogBytes?: number;
    /** Told after each segment and base chunk: an activity heartbeats (a pass can take minutes). */
    onProgress?: () => void;
  } = {},
): Promise<ExpectedFingerprints> {
  const readConcurrency = options.readConcurrency ?? 4;
  const batchRegions = options.batchRegions ?? 64;
  const wanted = new Map(disks.map((d) => [d.diskId, d]));
  const plan = await planRestore(store, ownership, { kind: 'position', position });
  const chain = plan.chain.filter((l) => l.epoch < position.epoch || (l.epoch === position.epoch && l.segment <= position.segment));
  let bytesRead = 0;

  /**
   * The first pass keeps the writes when they fit in `KEPT_LOG_BYTES`, so that each batch of
   * regions goes over them in memory instead of reading and inflating the log again: a domain of
   * 1,200 disks, each touched, read its log 19 times.
   */
  let kept: BlockWrite[] | undefined = [];
  let keptBytes = 0;
  let firstPassDone = false;

  /** Every write up to `position` to the wanted disks, in order. */
  async function* writes(links: ChainLink[]): AsyncGenerator<BlockWrite> {
    if (firstPassDone && kept) {
      yield* kept;
      return;
    }
    for await (const { link, segment } of readChain(store, links, readConcurrency)) {
      bytesRead += link.bytes;
      options.onProgress?.();
      const last = link.epoch === position.epoch && link.segment === position.segment;
      for (const [index, entry] of segment.entries.entries()) {
        if (last && index >= position.entries) return;
        if (!wanted.has(entry.diskId)) continue;
        if (kept && !firstPassDone) {
          keptBytes += entry.data.length;
          if (keptBytes <= (options.keptLogBytes ?? KEPT_LOG_BYTES)) kept.push(entry);
          else kept = undefined;
        }
        yield entry;
      }
    }
  }
  const regionKey = (diskId: string, offset: number) => `${diskId}\n${offset}`;
  const touched = new Map<string, { diskId: string; offset: number }>();
  for await (const entry of writes(chain)) {
    for (let offset = Math.floor(entry.offset / REGION_BYTES) * REGION_BYTES; offset < entry.offset + entry.data.length; offset += REGION_BYTES) {
      touched.set(regionKey(entry.diskId, offset), { diskId: entry.diskId, offset });
    }
  }
  firstPassDone = true;

  const hashes = new Map(disks.map((d) => [d.diskId, new Map<number, string>()]));
  const base = plan.base;
  if (base) {
    await readBaseChunks(store, ownership, base, readConcurrency, (diskId, offset, data, storedBytes) => {
      bytesRead += storedBytes;
      options.onProgress?.();
      if (!touched.has(regionKey(diskId, offset)) && !isAllZeros(data)) hashes.get(diskId)!.set(offset, sha256(data));
    }, (diskId) => wanted.has(diskId));
  }
  const inBase = new Set(base?.disks.flatMap((d) => d.chunks.map((offset) => regionKey(d.diskId, offset))) ?? []);
  const regions = [...touched.values()];
  for (let start = 0; start < regions.length; start += batchRegions) {
    const batch = new Map<string, Buffer>();
    await forEachLimited(regions.slice(start, start + batchRegions), readConcurrency, async ({ diskId, offset }) => {
      const length = Math.min(REGION_BYTES, wanted.get(diskId)!.sizeBytes - offset);
      let data: Buffer = Buffer.alloc(length);
      if (base && inBase.has(regionKey(diskId, offset))) {
        const key = ownership.keys.baseChunk(base.id, diskId, offset);
        const body = await store.getFramed(key);
        if (!body) throw new Error(`base chunk ${key} is listed in base ${base.id} but missing`);
        bytesRead += body.length;
        data = decodeBaseChunk(key, offset, body);
      }
      batch.set(regionKey(diskId, offset), data);
    });
    for await (const entry of writes(chain)) {
      for (let offset = Math.floor(entry.offset / REGION_BYTES) * REGION_BYTES; offset < entry.offset + entry.data.length; offset += REGION_BYTES) {
        const region = batch.get(regionKey(entry.diskId, offset));
        if (!region) continue;
        const from = Math.max(entry.offset, offset);
        const to = Math.min(entry.offset + entry.data.length, offset + region.length);
        entry.data.copy(region, from - offset, from - entry.offset, to - entry.offset);
      }
    }
    for (const [key, data] of batch) {
      const [diskId, offset] = key.split('\n');
      if (!isAllZeros(data)) hashes.get(diskId)!.set(Number(offset), sha256(data));
    }
  }
  return { fingerprints: disks.map((d) => ({ diskId: d.diskId, sizeBytes: d.sizeBytes, sha256: digest(d.sizeBytes, hashes.get(d.diskId)!) })), bytesRead };
}
