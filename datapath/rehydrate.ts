import type { SiteProvider } from '../sites/provider';
import { DiskImage } from './disk-image';
import { BASE_CHUNK_BYTES, readBaseChunks } from './base-image';
import { planRestore, readChain, type ChainLink } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { forEachLimited } from '../common/parallel';
import type { BaseRecord, DomainDisk, RehydrationTarget } from './records';
import type { BlockWrite } from './segment-codec';


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
 * Rebuilds every disk of a domain on the target site from the newest base at or before the target
 * and the log after it: segments in chain order,
 * fetched in parallel, each segment's changes written to all disks in parallel, progress
 * reported after every segment. Segments at or before `resumeAfter` are read again (to know
 * what the disks must hold) but not rewritten. Ends by reading the disks back.
 */
export async function rehydrate(options: RehydrateOptions): Promise<RehydrationResult> {
  const readConcurrency = options.readConcurrency ?? 8;
  const writeConcurrency = options.writeConcurrency ?? 8;
  const targetId = options.targetDiskId ?? ((diskId: string) => diskId);
  const images = new Map(options.disks.map((d) => [d.diskId, new DiskImage(d.diskId, d.sizeBytes)]));
  const resumeAfter = options.resumeAfter;
  // Planned first: a refused target leaves the target site untouched.
  const plan = await planRestore(options.store, options.ownership, options.upTo, resumeAfter?.base);
  const baseId = plan.base?.id ?? null;
  await options.onPlanned?.(baseId);
  await forEachLimited(options.disks, writeConcurrency, async (disk) => {
    await options.target.createDisk({ id: targetId(disk.diskId), datastore: options.diskDatastores?.[disk.diskId] ?? options.datastore, sizeBytes: disk.sizeBytes, protected: false });
  });
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

  /** Applies the chain in order and stops at the target's last entry. */
  const applyLinks = async (chain: ChainLink[]): Promise<void> => {
    for await (const { link, segment } of readChain(options.store, chain, readConcurrency)) {
      let reachedTarget = false;
      for (const [index, entry] of segment.entries.entries()) {
        if (!acceptEntry(link, index, entry)) {
          reachedTarget = true;
          break;
        }
        // A disk outside the target's disk set (removed from the domain, or added after the
        // target) is not rebuilt: its writes are skipped.
        images.get(entry.diskId)?.apply(entry.offset, entry.data);
      }
      const alreadyWritten = resumeAfter !== undefined && isAtOrBefore(link, resumeAfter);
      if (alreadyWritten) {
        for (const image of images.values()) image.takeDirtyRuns();
      } else {
        await writeRuns();
        segmentsApplied++;
        await options.onProgress?.({ epoch: link.epoch, segment: link.segment, bytesWritten, base: baseId });
      }
      lastApplied = { epoch: link.epoch, segment: link.segment };
      if (reachedTarget || isTargetSegment(link)) return;
    }
  };

  const writeRuns = async () => {
    const runs = [...images.values()].flatMap((image) => image.takeDirtyRuns().map((run) => ({ diskId: image.diskId, ...run })));
    await forEachLimited(runs, writeConcurrency, async (run) => {
      await options.target.writeDisk(targetId(run.diskId), run.offset, run.data);
      bytesWritten += run.data.length;
    });
  };
  const stale = options.targetMayHoldData && resumeAfter === undefined ? { bytesRead: 0, bytesZeroed: 0 } : undefined;
  /** A base chunk the target already holds is part of the image but is not written again. */
  const applyBaseChunk = async (diskId: string, offset: number, data: Buffer) => {
    const image = images.get(diskId)!;
    if (stale) {
      const held = await options.target.readDisk(targetId(diskId), offset, data.length);
      stale.bytesRead += held.length;
      if (held.equals(data)) return image.applyHeld(offset, data);
    }
    image.apply(offset, data);
  };
  if (plan.base) {
    // The image is needed for the final check even when a resumed attempt already wrote the base.
    // Chunks of disks outside the target's disk set are not read; a disk added after the base is
    // simply absent from it (zeros until its disk sync in the log).
    await readBaseChunks(options.store, options.ownership, plan.base, readConcurrency, applyBaseChunk, (diskId) => images.has(diskId));
    // Progress is first reported after a segment, so any progress means the base is on the disks.
    if (resumeAfter === undefined) await writeRuns();
    else for (const image of images.values()) image.takeDirtyRuns();
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
  return { ...(plan.base ? { base: plan.base.id } : {}), segmentsApplied, bytesWritten, ...(stale ? { targetBytesRead: stale.bytesRead, bytesZeroed: stale.bytesZeroed } : {}), lastApplied, disks: await verify(options.target, [...images.values()], targetId, readConcurrency) };
}

/** Zeroes every region of the target that the base does not hold and that is not zero already (read first: reads are local, writes may be journaled). */
export async function zeroOutsideBase(target: Pick<TargetDisks, 'readDisk' | 'writeDisk'>, disks: DomainDisk[], base: BaseRecord | undefined, targetId: (diskId: string) => string, concurrency: number, stale: { bytesRead: number; bytesZeroed: number }): Promise<void> {
  const regions = disks.flatMap((disk) => {
    const held = new Set(base?.disks.find((d) => d.diskId === disk.diskId)?.chunks ?? []);
    const offsets: Array<{ diskId: string; offset: number; length: number }> = [];
    for (let offset = 0; offset < disk.sizeBytes; offset += BASE_CHUNK_BYTES) {
      if (!held.has(offset)) offsets.push({ diskId: targetId(disk.diskId), offset, length: Math.min(BASE_CHUNK_BYTES, disk.sizeBytes - offset) });
    }
    return offsets;
  });
  await forEachLimited(regions, concurrency, async ({ diskId, offset, length }) => {
    const held = await target.readDisk(diskId, offset, length);
    stale.bytesRead += length;
    if (held.every((byte) => byte === 0)) return;
    await target.writeDisk(diskId, offset, Buffer.alloc(length));
    stale.bytesZeroed += length;
  });
}

async function verify(target: TargetDisks, images: DiskImage[], targetId: (diskId: string) => string, concurrency: number): Promise<RehydrationResult['disks']> {
  const results: RehydrationResult['disks'] = [];
  await forEachLimited(images, concurrency, async (image) => {
    let verifiedBytes = 0;
    for (const run of image.allRuns()) {
      const actual = await target.readDisk(targetId(image.diskId), run.offset, run.data.length);
      if (!actual.equals(run.data)) throw new Error(`rehydrated disk ${targetId(image.diskId)} differs from the log in [${run.offset}, ${run.offset + run.data.length})`);
      verifiedBytes += run.data.length;
    }
    results.push({ diskId: targetId(image.diskId), sha256: image.digest(), verifiedBytes });
  });
  return results.sort((a, b) => a.diskId.localeCompare(b.diskId));
}
