import type { SiteProvider } from '../sites/provider';
import { BLOCK_BYTES, BlockDigests, PendingWrites, type BlockRun } from './disk-image';
import { BASE_CHUNK_BYTES, readBaseChunks } from './base-image';
import { planRestore, readChain, type ChainLink } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { forEachLimited } from '../common/parallel';
import type { BaseRecord, DomainDisk, RehydrationTarget } from './records';
import type { BlockWrite } from './segment-codec';
import { isAllZeros } from './zeros';

/** The largest single target write. */
const MAX_RUN_BYTES = 4 * 1024 * 1024;

/** The last segment whose writes (and the base's) are on the target disks; a retried activity passes it back. */
export interface RehydrationProgress {
  epoch: number;
  segment: number;
  bytesWritten: number;
  /** The base the disks were started from (null: zeros); a resumed attempt must use the same one. */
  base?: string | null;
}

export type TargetDisks = Pick<SiteProvider, 'createDisk' | 'writeDisk' | 'readDisk'>;

export interface RehydrateOptions {
  store: ObjectStore;
  ownership: Ownership;
  target: TargetDisks;
  disks: DomainDisk[];
  /** Where target disks that do not exist yet are created; `diskDatastores` overrides it per disk. */
  datastore: string;
  diskDatastores?: Record<string, string>;
  /** Domain disk ids whose target disks the operation created already, as the domain has them: not created again. */
  preparedDisks?: ReadonlySet<string>;
  upTo: RehydrationTarget;
  resumeAfter?: RehydrationProgress;
  /** Called with the chosen base (null: zeros) before anything is read, so that a lease can name it. */
  onPlanned?: (base: string | null) => void | Promise<void>;
  onProgress?: (progress: RehydrationProgress) => void | Promise<void>;
  /** Names the target disk for a domain disk; by default the same id (a different site). */
  targetDiskId?: (diskId: string) => string;
  readConcurrency?: number;
  writeConcurrency?: number;
  /**
   * Aborted when this reader must stop writing (an activity attempt the server gave up on): its
   * retry writes the same disks, and a late write of an older segment would undo a newer one.
   */
  signal?: AbortSignal;
  /**
   * The target disks may exist with other data (a failback onto the original disks): every
   * region the base does not hold is zeroed where the target has data, and base chunks the
   * target already holds are not rewritten. Without it the disks are taken to be new (zeros).
   */
  targetMayHoldData?: boolean;
}

export interface RehydrationResult {
  /** The base the disks started from, if any. */
  base?: string;
  segmentsApplied: number;
  bytesWritten: number;
  /** With `targetMayHoldData`: bytes read from the target to compare, and zeros written over stale data. */
  targetBytesRead?: number;
  bytesZeroed?: number;
  lastApplied?: { epoch: number; segment: number };
  disks: Array<{ diskId: string; sha256: string; verifiedBytes: number }>;
}

function isAtOrBefore(link: ChainLink, position: { epoch: number; segment: number }): boolean {
  return link.epoch < position.epoch || (link.epoch === position.epoch && link.segment <= position.segment);
}

/**
 * Creates the target disks the operation has not created already (idempotent by id: a disk held
 * with another size or datastore is refused by the site in its own words). A failover or drill
 * created its disks behind representation VMs before: creating them again was one more round trip
 * to the virtualization manager per disk on the RTO's path. Not a listing of the site's disks
 * instead: that grows with the site, not with the domain.
 */
async function createTargetDisks(options: RehydrateOptions, targetId: (diskId: string) => string, concurrency: number): Promise<void> {
  const toCreate = options.disks.filter((disk) => !options.preparedDisks?.has(disk.diskId));
  await forEachLimited(toCreate, concurrency, async (disk) => {
    await options.target.createDisk({ id: targetId(disk.diskId), datastore: options.diskDatastores?.[disk.diskId] ?? options.datastore, sizeBytes: disk.sizeBytes, protected: false });
  });
}

/**
 * Rebuilds every disk of a domain on the target site from the newest base at or before the target
 * and the log after it. Base chunks are written as they arrive, `readConcurrency` GETs in flight
 * while as many chunks are written;
 * segments are fetched that far ahead and applied in chain order, each merged into runs of whole
 * blocks written `writeConcurrency` at a time while the next is merged, progress reported after
 * each. Memory is bounded by the reads in flight and two segments, not by the domain: what the
 * disks must hold is kept as a digest per written block, and the disks are read back against the
 * digests at the end. Segments at or before `resumeAfter` are read again (for the digests) but
 * not rewritten.
 */
export async function rehydrate(options: RehydrateOptions): Promise<RehydrationResult> {
  const readConcurrency = options.readConcurrency ?? 8;
  const writeConcurrency = options.writeConcurrency ?? 8;
  const targetId = options.targetDiskId ?? ((diskId: string) => diskId);
  const digests = new Map(options.disks.map((d) => [d.diskId, new BlockDigests(d.diskId, d.sizeBytes)]));
  const pending = new Map(options.disks.map((d) => [d.diskId, new PendingWrites(d.diskId, d.sizeBytes)]));
  /**
   * The disks written since the last flush: a segment touches a few of a domain's disks, and a
   * flush that looked at every one of 10,000 disks cost 26 ms per segment, some minutes of a
   * restore's thousands of segments.
   */
  const touched = new Set<PendingWrites>();
  const resumeAfter = options.resumeAfter;
  // Planned first: a refused target leaves the target site untouched.
  const plan = await planRestore(options.store, options.ownership, options.upTo, resumeAfter?.base);
  const baseId = plan.base?.id ?? null;
  await options.onPlanned?.(baseId);
  await createTargetDisks(options, targetId, writeConcurrency);
  let bytesWritten = resumeAfter?.bytesWritten ?? 0;
  let segmentsApplied = 0;
  let lastApplied: { epoch: number; segment: number } | undefined;
  const upTo = options.upTo;

  const isTargetSegment = (link: ChainLink): boolean =>
    upTo.kind === 'position' && link.epoch === upTo.position.epoch && link.segment === upTo.position.segment;
  const acceptEntry = (link: ChainLink, index: number, entry: BlockWrite): boolean => {
    if (upTo.kind === 'instant') return entry.timestamp <= upTo.at;
    // The chain was cut at the target segment; only inside it does the entry count matter.
    if (upTo.kind === 'position') return !isTargetSegment(link) || index < upTo.position.entries;
    return true;
  };
  const writeRun = async (diskId: string, run: BlockRun) => {
    options.signal?.throwIfAborted();
    await options.target.writeDisk(targetId(diskId), run.offset, run.data);
    bytesWritten += run.data.length;
  };

  /**
   * Merges a segment's writes into runs of whole blocks and records their digests. Blocks it
   * writes only in part are completed from the target, which must hold every earlier segment by
   * then: a block this attempt wrote must read back as its digest says.
   */
  const prepareRuns = async () => {
    const flushed = [...touched];
    touched.clear();
    for (const disk of flushed) {
      const expected = digests.get(disk.diskId)!;
      await forEachLimited(disk.partialBlocks(), readConcurrency, async ({ offset, length }) => {
        const held = await options.target.readDisk(targetId(disk.diskId), offset, length);
        if (resumeAfter === undefined && !expected.holds(offset / BLOCK_BYTES, held)) throw new Error(`rehydrated disk ${targetId(disk.diskId)} differs from the log in [${offset}, ${offset + length})`);
        disk.fill(offset, held);
      });
    }
    const runs = flushed.flatMap((disk) => disk.take(MAX_RUN_BYTES).map((run) => ({ diskId: disk.diskId, run })));
    for (const { diskId, run } of runs) digests.get(diskId)!.record(run);
    return runs;
  };

  /**
   * Applies the chain in order and stops at the target's last entry. A segment's runs are
   * written while the next segment is merged; progress follows the writes, segment by segment.
   */
  const applyLinks = async (chain: ChainLink[]): Promise<void> => {
    let writing: Promise<void> = Promise.resolve();
    for await (const { link, segment } of readChain(options.store, chain, readConcurrency)) {
      let reachedTarget = false;
      for (const [index, entry] of segment.entries.entries()) {
        if (!acceptEntry(link, index, entry)) {
          reachedTarget = true;
          break;
        }
        // A disk outside the target's disk set (removed from the domain, or added after the
        // target) is not rebuilt: its writes are skipped.
        const disk = pending.get(entry.diskId);
        if (!disk) continue;
        disk.apply(entry.offset, entry.data);
        touched.add(disk);
      }
      await writing;
      const runs = await prepareRuns();
      lastApplied = { epoch: link.epoch, segment: link.segment };
      if (resumeAfter === undefined || !isAtOrBefore(link, resumeAfter)) {
        segmentsApplied++;
        writing = (async () => {
          await forEachLimited(runs, writeConcurrency, ({ diskId, run }) => writeRun(diskId, run));
          await options.onProgress?.({ epoch: link.epoch, segment: link.segment, bytesWritten, base: baseId });
        })();
        // Surfaced by the next await of `writing`, before anything else is written.
        writing.catch(() => undefined);
      }
      if (reachedTarget || isTargetSegment(link)) break;
    }
    await writing;
  };

  const stale = options.targetMayHoldData && resumeAfter === undefined ? { bytesRead: 0, bytesZeroed: 0 } : undefined;
  if (plan.base) {
    // Progress is first reported after a window of the log, so any progress means the base is on
    // the disks; a resumed attempt still reads it for the digests. Chunks of disks outside the
    // target's disk set are not read; a disk added after the base is simply absent from it (zeros
    // until its disk sync in the log).
    await readBaseChunks(
      options.store,
      options.ownership,
      plan.base,
      readConcurrency,
      async (diskId, offset, data) => {
        digests.get(diskId)!.record({ offset, data });
        if (resumeAfter !== undefined) return;
        if (stale) {
          // A base chunk the target already holds is not written again.
          const held = await options.target.readDisk(targetId(diskId), offset, data.length);
          stale.bytesRead += held.length;
          if (held.equals(data)) return;
        }
        await writeRun(diskId, { offset, data });
      },
      (diskId) => digests.has(diskId),
    );
  }
  // Before the log: its writes land on regions the base left as zeros too.
  if (stale) await zeroOutsideBase(options.target, options.disks, plan.base, targetId, writeConcurrency, stale);

  let chain = plan.chain;
  if (upTo.kind === 'position') chain = chain.filter((link) => isAtOrBefore(link, upTo.position));
  if (upTo.kind === 'position' && !chain.some((l) => l.epoch === upTo.position.epoch && l.segment === upTo.position.segment)) {
    throw new Error(`restore position epoch ${upTo.position.epoch} segment ${upTo.position.segment} is not in the log chain of ${options.ownership.domain}`);
  }
  await applyLinks(chain);
  if (stale) bytesWritten += stale.bytesZeroed;
  return { ...(plan.base ? { base: plan.base.id } : {}), segmentsApplied, bytesWritten, ...(stale ? { targetBytesRead: stale.bytesRead, bytesZeroed: stale.bytesZeroed } : {}), lastApplied, disks: await verify(options.target, [...digests.values()], targetId, readConcurrency) };
}

/** Zeroes every region of the target that the base does not hold and that is not zero already (read first: reads are local, writes may be journaled). */
export async function zeroOutsideBase(target: Pick<TargetDisks, 'readDisk' | 'writeDisk'>, disks: DomainDisk[], base: BaseRecord | undefined, targetId: (diskId: string) => string, concurrency: number, stale: { bytesRead: number; bytesZeroed: number }): Promise<void> {
  const chunksOf = new Map(base?.disks.map((d) => [d.diskId, d.chunks]) ?? []);
  const regions = disks.flatMap((disk) => {
    const held = new Set(chunksOf.get(disk.diskId) ?? []);
    const offsets: Array<{ diskId: string; offset: number; length: number }> = [];
    for (let offset = 0; offset < disk.sizeBytes; offset += BASE_CHUNK_BYTES) {
      if (!held.has(offset)) offsets.push({ diskId: targetId(disk.diskId), offset, length: Math.min(BASE_CHUNK_BYTES, disk.sizeBytes - offset) });
    }
    return offsets;
  });
  await forEachLimited(regions, concurrency, async ({ diskId, offset, length }) => {
    const held = await target.readDisk(diskId, offset, length);
    stale.bytesRead += length;
    if (isAllZeros(held)) return;
    await target.writeDisk(diskId, offset, Buffer.alloc(length));
    stale.bytesZeroed += length;
  });
}

/** Reads back every block the rehydration wrote and checks it against its digest. */
async function verify(target: TargetDisks, disks: BlockDigests[], targetId: (diskId: string) => string, concurrency: number): Promise<RehydrationResult['disks']> {
  const spans = disks.flatMap((disk) => disk.spans().map((span) => ({ disk, ...span })));
  const verifiedBytes = new Map(disks.map((disk) => [disk.diskId, 0]));
  await forEachLimited(spans, concurrency, async ({ disk, offset, length }) => {
    const actual = await target.readDisk(targetId(disk.diskId), offset, length);
    verifiedBytes.set(disk.diskId, verifiedBytes.get(disk.diskId)! + disk.verify(offset, actual, targetId(disk.diskId)));
  });
  return disks.map((disk) => ({ diskId: targetId(disk.diskId), sha256: disk.digest(), verifiedBytes: verifiedBytes.get(disk.diskId)! })).sort((a, b) => a.diskId.localeCompare(b.diskId));
}
