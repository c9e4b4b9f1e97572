const MiB = 1024 * 1024;

/**
 * Large buffers used again instead of allocated per segment. Each fresh 8 MiB buffer counts as
 * external memory, and V8 answers its growth with full garbage collections: twenty-odd of them
 * per 256 MiB ingested, as much CPU as the copies they hold, on a machine the store shares.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  private freeBytes = 0;
  /** Only buffers the pool made come back to it (never a slice of Node's shared pool). */
  private readonly own = new WeakSet<ArrayBuffer>();

  /** `keepBytes`: how much memory the pool holds on to between uses; more given back is left to the collector. */
  constructor(private readonly keepBytes: number) {}

  /** A buffer of `bytes` (its memory rounded up to whole MiB, so that segments of about one size share them); hand it back with `give` once nothing reads it. */
  take(bytes: number): Buffer {
    const index = this.free.findIndex((buffer) => buffer.byteLength >= bytes);
    let buffer: ArrayBuffer;
    if (index >= 0) {
      buffer = this.free.splice(index, 1)[0];
      this.freeBytes -= buffer.byteLength;
    } else {
      buffer = new ArrayBuffer(Math.ceil(bytes / MiB) * MiB);
      this.own.add(buffer);
    }
    return Buffer.from(buffer, 0, bytes);
  }

  give(view: Buffer): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.own.has(buffer) || this.freeBytes + buffer.byteLength > this.keepBytes || this.free.includes(buffer)) return;
    this.free.push(buffer);
    this.freeBytes += buffer.byteLength;
  }
}
