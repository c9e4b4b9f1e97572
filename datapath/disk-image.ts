import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const BLOCK_BYTES = 4096;
const BLOCKS_PER_GROUP = 256;

function checkRange(diskId: string, sizeBytes: number, offset: number, length: number): void {
  if (offset < 0 || offset + length > sizeBytes) throw new RangeError(`write [${offset}, ${offset + length}) is outside disk ${diskId} of ${sizeBytes} bytes`);
}

/** Contiguous blocks of one disk with their bytes. */
export interface BlockRun {
  offset: number;
  data: Buffer;
}

/** The CRC-32 of each block of a megabyte the base or the log wrote, and which blocks they wrote. */
interface DigestGroup {
  crcs: Uint32Array;
  recorded: Uint8Array;
}

/**
 * What a rehydrated disk must hold where the base or the log wrote: a CRC-32 per 4 KiB block, in
 * groups allocated only for the megabytes that were written, so a domain of any size costs 1/800
 * of the bytes written instead of an image of them. The target is read back against it at the
 * end; blocks without a digest were not written and are not read (zeros on a new disk, or where
 * the stale-data pass zeroed).
 *
 * A CRC, not a cryptographic hash: what it must catch is a block of the target that is not the
 * log's (a lost, stale or misplaced write, a block completed from the wrong data), never a forged
 * one (the objects read are SHA-256-checked). CRC-32 misses none of those but one in 2^32 per
 * block, runs at several times the speed of SHA-256 over 4 KiB and allocates nothing: SHA-256 of
 * every block, written and read back, was a quarter of rehydration's CPU.
 */
export class BlockDigests {
  private readonly groups = new Map<number, DigestGroup>();

  constructor(
    readonly diskId: string,
    readonly sizeBytes: number,
  ) {}

  /** Records the blocks of a run starting on a block boundary (the last block of the disk may be short). */
  record(run: BlockRun): void {
    checkRange(this.diskId, this.sizeBytes, run.offset, run.data.length);
    for (let at = 0; at < run.data.length; at += BLOCK_BYTES) {
      const index = (run.offset + at) / BLOCK_BYTES;
      const group = this.group(index, true)!;
      const slot = index % BLOCKS_PER_GROUP;
      group.crcs[slot] = crc32(run.data.subarray(at, at + BLOCK_BYTES));
      group.recorded[slot] = 1;
    }
  }

  /** Whether `block` (block number `index`) holds what was recorded for it; true when nothing was. */
  holds(index: number, block: Buffer): boolean {
    const group = this.group(index, false);
    const slot = index % BLOCKS_PER_GROUP;
    return group?.recorded[slot] !== 1 || crc32(block) === group.crcs[slot];
  }

  private isRecorded(index: number): boolean {
    return this.group(index, false)?.recorded[index % BLOCKS_PER_GROUP] === 1;
  }

  /** The recorded blocks as spans to read back, each within one group, in disk order. */
  spans(): Array<{ offset: number; length: number }> {
    const spans: Array<{ offset: number; length: number }> = [];
    for (const group of [...this.groups.keys()].sort((a, b) => a - b)) {
      const { recorded } = this.groups.get(group)!;
      const first = recorded.indexOf(1);
      if (first < 0) continue;
      const last = recorded.lastIndexOf(1);
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

  /** sha256 over (offset, block CRC) of every written block in order: the disk's identity for reports. */
  digest(): string {
    const hash = createHash('sha256');
    // One update per group of (u64 offset, u32 CRC) pairs: a string per block cost more than the CRCs.
    const pairs = Buffer.alloc(BLOCKS_PER_GROUP * 12);
    for (const group of [...this.groups.keys()].sort((a, b) => a - b)) {
      const { crcs, recorded } = this.groups.get(group)!;
      let used = 0;
      for (let i = 0; i < BLOCKS_PER_GROUP; i++) {
        if (recorded[i] !== 1) continue;
        const offset = (group * BLOCKS_PER_GROUP + i) * BLOCK_BYTES;
        pairs.writeUInt32BE(Math.floor(offset / 2 ** 32), used);
        pairs.writeUInt32BE(offset % 2 ** 32, used + 4);
        pairs.writeUInt32BE(crcs[i], used + 8);
        used += 12;
      }
      hash.update(pairs.subarray(0, used));
    }
    return hash.digest('hex');
  }

  private group(index: number, create: boolean): DigestGroup | undefined {
    const number = Math.floor(index / BLOCKS_PER_GROUP);
    let group = this.groups.get(number);
    if (!group && create) {
      group = { crcs: new Uint32Array(BLOCKS_PER_GROUP), recorded: new Uint8Array(BLOCKS_PER_GROUP) };
      this.groups.set(number, group);
    }
    return group;
  }
}

interface PendingBlock {
  data: Buffer;
  /** Byte ranges the window wrote, while they do not cover the whole block. */
  covered?: Array<[number, number]>;
  /** `data` is a view of the bytes `apply` was given: copied before a later write changes part of it. */
  borrowed?: true;
}

/**
 * The log's writes to one disk since the last flush, by 4 KiB block, later bytes winning: a
 * window of segments costs one target write per run of blocks instead of one per entry, and
 * its size is what the caller lets it grow to before flushing. A block the window wrote only in
 * part is completed at the flush from what the target holds (`fill`). A block a write covers
 * whole is kept as a view of the write's bytes, not copied: the blocks of a large write stay
 * next to each other in its buffer and flush as one run without a copy (the caller keeps those
 * bytes unchanged until the flush).
 */
export class PendingWrites {
  private blocks = new Map<number, PendingBlock>();
  /** The blocks with `covered`: listed on their own, a flush does not scan the whole window for them. */
  private partial = new Set<number>();
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
      if (count === length) {
        if (!block) this.bytes += length;
        this.blocks.set(index, { data: data.subarray(written, written + count), borrowed: true });
        this.partial.delete(index);
        written += count;
        continue;
      }
      if (!block) {
        block = { data: this.allocate(length), covered: [] };
        this.blocks.set(index, block);
        this.partial.add(index);
        this.bytes += length;
      } else if (block.borrowed) {
        const copy = this.allocate(length);
        block.data.copy(copy);
        block = { data: copy };
        this.blocks.set(index, block);
      }
      data.copy(block.data, within, written, written + count);
      if (block.covered) {
        block.covered.push([within, within + count]);
        if (coversAll(block.covered, length)) {
          delete block.covered;
          this.partial.delete(index);
        }
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
    return [...this.partial].map((index) => ({ offset: index * BLOCK_BYTES, length: this.blocks.get(index)!.data.length }));
  }

  /** Completes a partly written block with what the target holds around the window's bytes. */
  fill(offset: number, held: Buffer): void {
    const block = this.blocks.get(offset / BLOCK_BYTES)!;
    const merged = Buffer.from(held);
    for (const [start, end] of block.covered!) block.data.copy(merged, start, start, end);
    this.blocks.set(offset / BLOCK_BYTES, { data: merged });
    this.partial.delete(offset / BLOCK_BYTES);
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
    this.partial = new Set();
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
