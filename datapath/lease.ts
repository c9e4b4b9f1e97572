import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { RECORD_FORMAT_VERSION, type Lease } from './records';

/** Long enough to outlive a worker restart and a retry's backoff; refreshed while the reader works. */
export const LEASE_MS = 10 * 60_000;
const REFRESH_MS = 60_000;

type Claim = Pick<Lease, 'base' | 'position'>;

/**
 * A running reader's lease under `leases/`: garbage collection keeps what it names until it
 * expires. A killed reader's lease simply expires; its retry holds the same key again.
 */
export class ReaderLease {
  private claim: Claim | undefined;
  private refreshedAt = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly ownership: Ownership,
    readonly holder: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Undefined: not planned yet, keep everything; null: reading the whole log; else the base it started from. */
  async hold(base: string | null | undefined): Promise<void> {
    await this.write(base !== undefined ? { base } : {});
  }

  /**
   * A follower has applied the log through `position`: only the segments after it are needed.
   * Written at once when the lease named no position yet, else with the next refresh: a stored
   * position older than the follower's keeps more, which is safe.
   */
  async holdAfter(position: { epoch: number; segment: number }): Promise<void> {
    const named = this.claim?.position !== undefined;
    this.claim = { position: { epoch: position.epoch, segment: position.segment } };
    if (named) await this.refresh();
    else await this.write(this.claim);
  }

  async refresh(): Promise<void> {
    if (this.now() - this.refreshedAt >= REFRESH_MS) await this.write(this.claim ?? {});
  }

  async release(): Promise<void> {
    await this.store.delete([this.ownership.keys.lease(this.holder)]);
  }

  private async write(claim: Claim): Promise<void> {
    this.claim = claim;
    const lease: Lease = { formatVersion: RECORD_FORMAT_VERSION, holder: this.holder, ...claim, expiresAt: this.now() + LEASE_MS };
    await this.store.put(this.ownership.keys.lease(this.holder), JSON.stringify(lease), 'application/json');
    this.refreshedAt = this.now();
  }
}
