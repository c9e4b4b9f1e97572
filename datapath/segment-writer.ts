import { decodeSegment, encodeSegmentAsync, type BlockWrite, type Segment } from './segment-codec';
import type { ObjectStore } from './object-store';
import { StaleEpochError, type Ownership } from './ownership';

export interface WrittenSegment {
  key: string;
  segment: Segment;
  /** False when an earlier attempt had already written this segment (a retried or resumed replicator). */
  created: boolean;
}

/**
 * Appends segments to one epoch of a domain's log for the site that owns that epoch. Nothing is
 * ever overwritten: the key derives from the journal cursor, so a retry from the same cursor
 * finds its own earlier object and adopts it instead of writing a second copy.
 */
export class SegmentWriter {
  private verifiedOwner = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly ownership: Ownership,
    readonly epoch: number,
    readonly site: string,
  ) {}

  async write(afterSequence: number, entries: BlockWrite[], lastSequence: number): Promise<WrittenSegment> {
    const written = await this.put(afterSequence, entries, lastSequence);
    await this.confirm();
    return written;
  }

  /**
   * Stores the segment (or adopts an earlier attempt's) without the fencing check: the caller
   * must `confirm` before acknowledging it, and may meanwhile store the next one, which a claim
   * fences out of the chain just the same.
   */
  async put(afterSequence: number, entries: BlockWrite[], lastSequence: number): Promise<WrittenSegment> {
    await this.verifyEpochIsOurs();
    const key = this.ownership.keys.segment(this.epoch, afterSequence);
    const segment: Segment = { epoch: this.epoch, afterSequence, lastSequence, entries };
    const created = await this.store.createIfAbsent(key, await encodeSegmentAsync(segment));
    let written = segment;
    if (!created) {
      // An earlier attempt from this cursor got there first; the journal below lastSequence is
      // immutable, so its segment holds the same writes (possibly fewer or more of them).
      const existing = await this.existing(afterSequence);
      if (!existing) throw new Error(`segment ${key} answered 412 but cannot be read`);
      written = existing;
    }
    return { key, segment: written, created };
  }

  /** Checked after the put: a claim that lands before this check fences the segments put so far out of the chain, and we refuse to acknowledge them. */
  async confirm(): Promise<void> {
    await this.ownership.assertOwner(this.epoch);
  }

  keyFor(afterSequence: number): string {
    return this.ownership.keys.segment(this.epoch, afterSequence);
  }

  /** The segment an earlier attempt wrote from this cursor, if any. */
  async existing(afterSequence: number): Promise<Segment | undefined> {
    const key = this.ownership.keys.segment(this.epoch, afterSequence);
    const body = await this.store.getFramed(key);
    if (!body) return undefined;
    const segment = decodeSegment(key, body);
    if (segment.epoch !== this.epoch || segment.afterSequence !== afterSequence) throw new Error(`segment ${key} holds another position`);
    return segment;
  }

  private async verifyEpochIsOurs(): Promise<void> {
    if (this.verifiedOwner) return;
    const state = await this.ownership.inspect();
    if (state.epoch !== this.epoch || state.owner?.site !== this.site) {
      throw new StaleEpochError(this.ownership.domain, this.epoch, state.epoch);
    }
    this.verifiedOwner = true;
  }
}
