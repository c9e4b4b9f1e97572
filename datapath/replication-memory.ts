import { BufferPool } from './buffer-pool';

const MiB = 1024 * 1024;

/** What one worker's replicators may hold in segments staged ahead, unless the operator says otherwise (`DR_REPLICATION_STAGING_MIB`). */
export const DEFAULT_STAGING_AHEAD_BYTES = 128 * MiB;

/** Segment buffers kept between uses: the rotation of one backlogged replicator (a few 8 MiB segments uploading, one encoding). */
const POOLED_BYTES = 48 * MiB;

/**
 * The memory that the replicators of one site worker share. Each replicator may always hold the
 * segment it is committing; segments read and uploaded ahead of it (what makes a backlog drain at
 * the store's speed) need room here first, and a replicator that gets none commits what it has
 * before it reads on. So a worker replicating many backlogged domains holds a bounded amount
 * beyond one segment per domain, and never waits for memory: it only stages less.
 */
export class ReplicationMemory {
  /** Buffers of encoded segments, shared by every writer of the worker. */
  readonly buffers = new BufferPool(POOLED_BYTES);
  private reserved = 0;

  constructor(readonly stagingAheadBytes: number = Number.POSITIVE_INFINITY) {}

  /** One replicator run's share, given back whole when the run ends, however it ends. */
  room(): StagingRoom {
    return new StagingRoom(this);
  }

  /** Room for a segment of up to `bytes` staged ahead; false: there is none now (nothing is reserved then). */
  reserve(bytes: number): boolean {
    if (this.reserved + bytes > this.stagingAheadBytes) return false;
    this.reserved += bytes;
    return true;
  }

  release(bytes: number): void {
    this.reserved -= bytes;
  }

  /** Reserved and not yet released: zero whenever no replicator has a segment staged ahead. */
  get reservedBytes(): number {
    return this.reserved;
  }
}

/** What one replicator run holds of its worker's `ReplicationMemory`. */
export class StagingRoom {
  private held = 0;

  constructor(private readonly memory: ReplicationMemory) {}

  reserve(bytes: number): boolean {
    if (!this.memory.reserve(bytes)) return false;
    this.held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.held -= bytes;
    this.memory.release(bytes);
  }

  releaseAll(): void {
    this.release(this.held);
  }
}
