import * as crypto from 'node:crypto';

export const BLOCK_BYTES = 4096;
const DIGEST_BYTES = 16;
const BLOCKS_PER_GROUP = 256;
const NO_DIGEST = Buffer.alloc(DIGEST_BYTES);

// One-shot `crypto.hash` (Node 20.12 on) spares a Hash object per 4 KiB block: a quarter faster.
const sha256: (block: Buffer) => Buffer = typeof crypto.hash === 'function' ? (block) => crypto.hash('sha256', block, 'buffer') : (block) => crypto.createHash('sha256').update(block).digest();

function blockDigest(block: Buffer): Buffer {
  return sha256(block).subarray(0, DIGEST_BYTES);
}

function checkRange(diskId: string, sizeBytes: number, offset: number, length: number): void {
  if (offset < 0 || offset + length > sizeBytes) throw new RangeError(`write [${offset}, ${offset + length}) is outside disk ${diskId} of ${sizeBytes} bytes`);
}

/** Contiguous blocks of one disk with their bytes. */
export interface BlockRun {
  offset: number;
  data: Buffer;
}

/**
 * What a rehydrated disk must hold where the base or the log wrote: a digest (16 bytes of
 * sha256) per 4 KiB block, in groups allocated only for the megabytes that were written, so a
 * domain of any size costs 1/256 of the bytes written instead of an image of them. The target
 * is read back against it at the end; blocks without a digest were not written and are not read
 * (zeros on a new disk, or where the stale-data pass zeroed).
 */
export class BlockDigests {
  private readonly groups = new Map<number, Buffer>();

  constructor(
    readonly diskId: string,
    readonly sizeBytes: number,
  ) {}

  /** Records the blocks of a run starting on a block boundary (the last block of the disk may be short). */
  record(run: BlockRun): void {
    checkRange(this.diskId, this.sizeBytes, run.offset, run.data.length);
    for (let at = 0; at < run.data.length; at += BLOCK_BYTES) {
      const index = (run.offset + at) / BLOCK_BYTES;
      blockDigest(run.data.subarray(at, at + BLOCK_BYTES)).copy(this.slot(index, true)!);
    }
  }

  /** Whether `block` (block number `index`) holds what was recorded for it; true when nothing was. */
  holds(index: number, block: Buffer): boolean {
    return !this.isRecorded(index) || blockDigest(block).equals(this.slot(index, false)!);
  }

  private isRecorded(index: number): boolean {
    return this.slot(index, false)?.equals(NO_DIGEST) === false;
  }

  /** The recorded blocks as spans to read back, each within one group, in disk order. */
  spans(): Array<{ offset: number; length: number }> {
    const spans: Array<{ offset: number; length: number }> = [];
    for (const group of [...this.groups.keys()].sort((a, b) => a - b)) {
      const digests = this.groups.get(group)!;
      let first = -1;
      let last = -1;
      for (let i = 0; i < BLOCKS_PER_GROUP; i++) {
        if (digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES).equals(NO_DIGEST)) continue;
        if (first < 0) first = i;
        last = i;
      }
      if (first < 0) continue;
      const offset = (group * BLOCKS_PER_GROUP + first) * BLOCK_BYTES;
      spans.push({ offset, length: Math.min((group * BLOCKS_PER_GROUP + last + 1) * BLOCK_BYTES, this.sizeBytes) - offset });
    }
    return spans;
  }

  /** Checks a span read back from the target; returns the bytes of recorded blocks it verified. */
  verify(offset: number, data: Buffer, targetDiskId: string): number {
    let verified = 0;
    for (let at = 0; at < data.length; at += BLOCK_BYTES) {
      const index = (offset + at) / BLOCK_BYTES;
      const block = data.subarray(at, at + BLOCK_BYTES);
      if (!this.isRecorded(index)) continue;
      if (!this.holds(index, block)) throw new Error(`rehydrated disk ${targetDiskId} differs from the log in [${offset + at}, ${offset + at + block.length})`);
      verified += block.length;
    }
    return verified;
  }

  /** sha256 over (offset, block digest) of every written block in order: the disk's identity for reports. */
  digest(): string {
    const hash = crypto.createHash('sha256');
    for (const group of [...this.groups.keys()].sort((a, b) => a - b)) {
      const digests = this.groups.get(group)!;
      for (let i = 0; i < BLOCKS_PER_GROUP; i++) {
        const slot = digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
        if (!slot.equals(NO_DIGEST)) hash.update(`${(group * BLOCKS_PER_GROUP + i) * BLOCK_BYTES}:`).update(slot);
      }
    }
    return hash.digest('hex');
  }

  private slot(index: number, create: boolean): Buffer | undefined {
    const group = Math.floor(index / BLOCKS_PER_GROUP);
    let digests = this.groups.get(group);
    if (!digests) {
      if (!create) return undefined;
      digests = Buffer.alloc(BLOCKS_PER_GROUP * DIGEST_BYTES);
      this.groups.set(group, digests);
    }
    const at = (index - group * BLOCKS_PER_GROUP) * DIGEST_BYTES;
    return digests.subarray(at, at + DIGEST_BYTES);
  }
}

interface PendingBlock {
  data: Buffer;
  /** Byte ranges the window wrote, while they do not cover the whole block. */
  covered?: Array<[number, number]>;
}

/**
 * The log's writes to one disk since the last flush, by 4 KiB block, later bytes winning: a
 * window of segments costs one target write per run of blocks instead of one per entry, and
 * its size is what the caller lets it grow to before flushing. A block the window wrote only in
 * part is completed at the flush from what the target holds (`fill`).
 */
export class PendingWrites {
  private blocks = new Map<number, PendingBlock>();
  /** Block buffers are carved from slabs: one allocation per megabyte instead of per block. */
  private slab = Buffer.alloc(0);
  private slabUsed = 0;
  bytes = 0;

  constructor(
    readonly diskId: string,
    readonly sizeBytes: number,
  ) {}

  apply(offset: number, data: Buffer): void {
    checkRange(this.diskId, this.sizeBytes, offset, data.length);
    let written = 0;
    while (written < data.length) {
      const position = offset + written;
      const index = Math.floor(position / BLOCK_BYTES);
      const within = position - index * BLOCK_BYTES;
      const length = Math.min(BLOCK_BYTES, this.sizeBytes - index * BLOCK_BYTES);
      const count = Math.min(length - within, data.length - written);
      let block = this.blocks.get(index);
      if (!block) {
        block = { data: this.allocate(length), ...(count < length ? { covered: [] } : {}) };
        this.blocks.set(index, block);
        this.bytes += length;
      }
      data.copy(block.data, within, written, written + count);
      if (block.covered) {
        block.covered.push([within, within + count]);
        if (coversAll(block.covered, length)) delete block.covered;
      }
      written += count;
    }
  }

  private allocate(length: number): Buffer {
    if (this.slabUsed + length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(256 * BLOCK_BYTES);
      this.slabUsed = 0;
    }
    this.slabUsed += length;
    return this.slab.subarray(this.slabUsed - length, this.slabUsed);
  }

  /** Offsets of the blocks written only in part: the caller reads them from the target for `fill`. */
  partialBlocks(): Array<{ offset: number; length: number }> {
    return [...this.blocks].filter(([, block]) => block.covered).map(([index, block]) => ({ offset: index * BLOCK_BYTES, length: block.data.length }));
  }

  /** Completes a partly written block with what the target holds around the window's bytes. */
  fill(offset: number, held: Buffer): void {
    const block = this.blocks.get(offset / BLOCK_BYTES)!;
    const merged = Buffer.from(held);
    for (const [start, end] of block.covered!) block.data.copy(merged, start, start, end);
    this.blocks.set(offset / BLOCK_BYTES, { data: merged });
  }

  /** Every block as runs of contiguous blocks up to `maxRunBytes`, in disk order; the window is empty afterwards. */
  take(maxRunBytes: number): BlockRun[] {
    const indexes = [...this.blocks.keys()].sort((a, b) => a - b);
    const runs: BlockRun[] = [];
    let start = 0;
    while (start < indexes.length) {
      let end = start + 1;
      while (end < indexes.length && indexes[end] === indexes[end - 1] + 1 && (end - start + 1) * BLOCK_BYTES <= maxRunBytes) end++;
      const parts = indexes.slice(start, end).map((i) => this.blocks.get(i)!);
      if (parts.some((part) => part.covered)) throw new Error(`block of disk ${this.diskId} written in part was not completed before the flush`);
      runs.push({ offset: indexes[start] * BLOCK_BYTES, data: adjacent(parts) ?? Buffer.concat(parts.map((part) => part.data)) });
      start = end;
    }
    this.blocks = new Map();
    this.slab = Buffer.alloc(0);
    this.bytes = 0;
    return runs;
  }
}

/** The blocks as one view when they lie next to each other in one slab (a large write applied in order): no copy. */
function adjacent(parts: PendingBlock[]): Buffer | undefined {
  const first = parts[0].data;
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i].data;
    if (part.buffer !== first.buffer || part.byteOffset !== first.byteOffset + i * BLOCK_BYTES) return undefined;
  }
  return Buffer.from(first.buffer, first.byteOffset, (parts.length - 1) * BLOCK_BYTES + parts.at(-1)!.data.length);
}

function coversAll(ranges: Array<[number, number]>, length: number): boolean {
  let reached = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start > reached) return false;
    reached = Math.max(reached, end);
  }
  return reached >= length;
}
