import { randomUUID } from 'node:crypto';
import { DomainKeys, trailingNumber } from './keys';
import type { ObjectStore } from './object-store';
import { handoffSchema, ownershipSchema, parseRecord, RECORD_FORMAT_VERSION, type HandoffRecord, type OwnershipRecord } from './records';

/**
 * Ownership and IO fencing on create-if-absent only: `ownership/<n>` objects are never
 * overwritten or deleted, the highest one names the owner, and its number is the fencing token
 * every segment write is checked against.
 */

/** A writer whose epoch has been superseded; it must stop, retrying cannot help. */
export class StaleEpochError extends Error {
  constructor(
    readonly domain: string,
    readonly epoch: number,
    readonly currentEpoch: number,
  ) {
    super(`domain ${domain}: epoch ${epoch} was fenced by epoch ${currentEpoch}; this writer must stop`);
    this.name = 'StaleEpochError';
  }
}

export interface ClaimResult {
  won: boolean;
  /** The epoch the claim tried to create; when lost, someone else owns it. */
  epoch: number;
  owner: OwnershipRecord;
}

export interface OwnershipState {
  epoch: number;
  owner?: OwnershipRecord;
}

export class Ownership {
  readonly keys: DomainKeys;

  constructor(
    private readonly store: ObjectStore,
    readonly domain: string,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new DomainKeys(store.prefix, domain);
  }

  async epochs(): Promise<number[]> {
    const { keys } = await this.store.list(this.keys.ownershipPrefix());
    return keys.map(trailingNumber).sort((a, b) => a - b);
  }

  async inspect(): Promise<OwnershipState> {
    const epochs = await this.epochs();
    const epoch = epochs.at(-1) ?? 0;
    return epoch === 0 ? { epoch } : { epoch, owner: await this.read(epoch) };
  }

  async read(epoch: number): Promise<OwnershipRecord> {
    const key = this.keys.ownership(epoch);
    const body = await this.store.get(key);
    if (!body) throw new Error(`ownership object ${key} is missing`);
    return parseRecord(ownershipSchema, key, body);
  }

  /**
   * Claims epoch `fromEpoch + 1` for `site` (fromEpoch defaults to the current one). Of any number
   * of racing claimers exactly one creates the object; the others learn who did. A claimer whose
   * own put went through but whose answer was lost (the retried put finds the object) still
   * wins: the object carries its claimId. A won takeover
   * seals where the previous epoch's log ends, so later puts of the fenced writer are never read.
   */
  async claim(site: string, options: { fromEpoch?: number; handoffSegment?: number | null } = {}): Promise<ClaimResult> {
    const fromEpoch = options.fromEpoch ?? (await this.inspect()).epoch;
    const epoch = fromEpoch + 1;
    const record: OwnershipRecord = {
      formatVersion: RECORD_FORMAT_VERSION,
      epoch,
      site,
      claimedAt: this.now(),
      kind: fromEpoch === 0 ? 'initial' : options.handoffSegment !== undefined ? 'handover' : 'takeover',
      claimId: randomUUID(),
    };
    if (!(await this.store.createIfAbsent(this.keys.ownership(epoch), JSON.stringify(record), 'application/json'))) {
      const owner = await this.read(epoch);
      if (owner.claimId !== record.claimId) return { won: false, epoch, owner };
    }
    if (fromEpoch > 0) await this.sealHandoff(epoch, options.handoffSegment);
    return { won: true, epoch, owner: record };
  }

  /** Planned handover: the owner of `epoch` stopped writing after `lastSegment` and passes the domain to `nextSite`. */
  async release(epoch: number, nextSite: string, lastSegment: number | null): Promise<ClaimResult> {
    await this.assertOwner(epoch);
    return this.claim(nextSite, { fromEpoch: epoch, handoffSegment: lastSegment });
  }

  /** Throws StaleEpochError when an epoch above `epoch` exists. Called after a segment put, before acknowledging it. */
  async assertOwner(epoch: number): Promise<void> {
    const { keys } = await this.store.list(this.keys.ownershipPrefix(), { startAfter: this.keys.ownership(epoch) });
    if (keys.length > 0) throw new StaleEpochError(this.domain, epoch, trailingNumber(keys.at(-1)!));
  }

  /**
   * Where epoch `epoch - 1` ends for readers. Sealed once, create-if-absent: by the claimer, or by
   * the first reader that finds it missing (a claimer killed between its two puts). Sealing
   * lists the old epoch only after the new epoch object exists, so every segment its writer
   * acknowledged (it checks for a higher epoch after its put) is inside the chain.
   */
  async handoff(epoch: number): Promise<HandoffRecord> {
    const key = this.keys.handoff(epoch);
    const existing = await this.store.get(key);
    if (existing) return parseRecord(handoffSchema, key, existing);
    return this.sealHandoff(epoch, undefined);
  }

  private async sealHandoff(epoch: number, lastSegment: number | null | undefined): Promise<HandoffRecord> {
    const previousEpoch = epoch - 1;
    let last = lastSegment;
    if (last === undefined) {
      const { keys } = await this.store.list(this.keys.logPrefix(previousEpoch));
      last = keys.length > 0 ? trailingNumber(keys.at(-1)!) : null;
    }
    const record: HandoffRecord = { formatVersion: RECORD_FORMAT_VERSION, epoch, previousEpoch, lastSegment: last, sealedAt: this.now() };
    const key = this.keys.handoff(epoch);
    if (await this.store.createIfAbsent(key, JSON.stringify(record), 'application/json')) return record;
    return parseRecord(handoffSchema, key, (await this.store.get(key))!);
  }
}
