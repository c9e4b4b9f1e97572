import { createHash } from 'node:crypto';

const BLOCK_BYTES = 4096;
const MAX_RUN_BYTES = 1024 * 1024;

/**
 * The bytes a rehydrated disk must hold, for the blocks the log touched (a new disk is zeros
 * elsewhere). Rehydration writes from it rather than replaying each entry, so overlapping writes
 * in a segment become one write per run, and it checks the target against it at the end.
 */
export class DiskImage {
  private readonly blocks = new Map<number, Buffer>();
  private dirty = new Set<number>();

  constructor(
    readonly diskId: string,
    readonly sizeBytes: number,
  ) {}

  /** Bytes the target already holds: part of the image (for the final check), not to be written. */
  applyHeld(offset: number, data: Buffer): void {
    this.write(offset, data, false);
  }

  apply(offset: number, data: Buffer): void {
    this.write(offset, data, true);
  }

  private write(offset: number, data: Buffer, dirty: boolean): void {
    if (offset < 0 || offset + data.length > this.sizeBytes) {
      throw new RangeError(`write [${offset}, ${offset + data.length}) is outside disk ${this.diskId} of ${this.sizeBytes} bytes`);
    }
    let written = 0;
    while (written < data.length) {
      const position = offset + written;
      const index = Math.floor(position / BLOCK_BYTES);
      const within = position - index * BLOCK_BYTES;
      let block = this.blocks.get(index);
      if (!block) {
        block = Buffer.alloc(Math.min(BLOCK_BYTES, this.sizeBytes - index * BLOCK_BYTES));
        this.blocks.set(index, block);
      }
      const count = Math.min(block.length - within, data.length - written);
      data.copy(block, within, written, written + count);
      if (dirty) this.dirty.add(index);
      written += count;
    }
  }

  /** Contiguous runs of blocks changed since the last call, with their current bytes. */
  takeDirtyRuns(): Array<{ offset: number; data: Buffer }> {
    const runs = this.runs([...this.dirty]);
    this.dirty = new Set();
    return runs;
  }

  allRuns(): Array<{ offset: number; data: Buffer }> {
    return this.runs([...this.blocks.keys()]);
  }

  /** sha256 over (offset, bytes) of every touched block in order: the disk's identity for reports. */
  digest(): string {
    const hash = createHash('sha256');
    for (const index of [...this.blocks.keys()].sort((a, b) => a - b)) {
      hash.update(`${index * BLOCK_BYTES}:`).update(this.blocks.get(index)!);
    }
    return hash.digest('hex');
  }

  private runs(indexes: number[]): Array<{ offset: number; data: Buffer }> {
    indexes.sort((a, b) => a - b);
    const runs: Array<{ offset: number; data: Buffer }> = [];
    let start = 0;
    while (start < indexes.length) {
      let end = start + 1;
      while (end < indexes.length && indexes[end] === indexes[end - 1] + 1 && (end - start + 1) * BLOCK_BYTES <= MAX_RUN_BYTES) end++;
      runs.push({ offset: indexes[start] * BLOCK_BYTES, data: Buffer.concat(indexes.slice(start, end).map((i) => this.blocks.get(i)!)) });
      start = end;
    }
    return runs;
  }
}
