import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { RECORD_FORMAT_VERSION, type Lease } from './records';

/** Long enough to outlive a worker restart and a retry's backoff; refreshed while the reader works. */
export const LEASE_MS = 10 * 60_000;
const REFRESH_MS = 60_000;

/**
 * A running reader's lease under `leases/`: garbage collection keeps what it names until it
 * expires. A killed reader's lease simply expires; its retry holds the same key again.
 */
export class ReaderLease {
  private base: string | null | undefined;
  private refreshedAt = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly ownership: Ownership,
    readonly holder: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Undefined: not planned yet, keep everything; null: reading the whole log; else the base it started from. */
  async hold(base: string | null | undefined): Promise<void> {
    this.base = base;
    const lease: Lease = { formatVersion: RECORD_FORMAT_VERSION, holder: this.holder, ...(base !== undefined ? { base } : {}), expiresAt: this.now() + LEASE_MS };
    await this.store.put(this.ownership.keys.lease(this.holder), JSON.stringify(lease), 'application/json');
    this.refreshedAt = this.now();
  }

  async refresh(): Promise<void> {
    if (this.now() - this.refreshedAt >= REFRESH_MS) await this.hold(this.base);
  }

  async release(): Promise<void> {
    await this.store.delete([this.ownership.keys.lease(this.holder)]);
  }
}
