import { randomUUID } from 'node:crypto';
import { decodeSegment, encodeSegmentAsync, type BlockWrite, type Segment } from './segment-codec';
import type { ObjectStore } from './object-store';
import { encodeSegmentReference, followReference, INLINE_SEGMENT_MAX_BYTES, parseSegmentReference, readSegmentObject } from './segment-objects';
import { StaleEpochError, type Ownership } from './ownership';
import { ReplicationMemory } from './replication-memory';

export interface WrittenSegment {
  key: string;
  segment: Segment;
  /** False when an earlier attempt had already written this segment (a retried or resumed replicator). */
  created: boolean;
}

/** A segment encoded, and when large its bytes uploading, not yet in the log: `commit` puts it there. */
export interface StagedSegment {
  segment: Segment;
  /** What is created at the segment's key: the segment object, or a reference to its uploaded bytes. */
  atKey: Buffer;
  /** The key of the uploaded bytes, when `atKey` refers to them. */
  dataKey?: string;
  uploaded: Promise<void>;
}

export interface SegmentWriterOptions {
  /** Larger segment objects are uploaded ahead and referred to (`INLINE_SEGMENT_MAX_BYTES`). */
  inlineMaxBytes?: number;
  /** Shared by the writers of one worker; by default the writer's own, without a bound on staging ahead. */
  memory?: ReplicationMemory;
}

/**
 * Appends segments to one epoch of a domain's log for the site that owns that epoch. Nothing is
 * ever overwritten: the key derives from the journal cursor, so a retry from the same cursor
 * finds its own earlier object and adopts it instead of writing a second copy.
 */
export class SegmentWriter {
  private verifiedOwner = false;
  private readonly inlineMaxBytes: number;
  /** Where the buffers of segments uploading come from, and the room for staging ahead that replicators ask of it. */
  readonly memory: ReplicationMemory;

  constructor(
    private readonly store: ObjectStore,
    private readonly ownership: Ownership,
    readonly epoch: number,
    readonly site: string,
    options: SegmentWriterOptions = {},
  ) {
    this.inlineMaxBytes = options.inlineMaxBytes ?? INLINE_SEGMENT_MAX_BYTES;
    this.memory = options.memory ?? new ReplicationMemory();
  }

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
    return this.commit(await this.stage(afterSequence, entries, lastSequence));
  }

  /**
   * Encodes the segment and, when it is large, starts uploading its bytes to a key of their own.
   * Nothing in the log changes: the caller may stage the next segment (from where this one ends)
   * while this one uploads, and commits them in order.
   */
  async stage(afterSequence: number, entries: BlockWrite[], lastSequence: number): Promise<StagedSegment> {
    const segment: Segment = { epoch: this.epoch, afterSequence, lastSequence, entries };
    const body = await encodeSegmentAsync(segment, (bytes) => (bytes > this.inlineMaxBytes ? this.memory.buffers.take(bytes) : Buffer.allocUnsafe(bytes)));
    if (body.length <= this.inlineMaxBytes) return { segment, atKey: body, uploaded: Promise.resolve() };
    const dataKey = this.ownership.keys.segmentData(this.epoch, afterSequence, randomUUID());
    const uploaded = this.store.put(dataKey, body);
    // Once the put has ended (the SDK's retries are inside it) nothing reads the buffer again. A
    // failure is surfaced by `commit`; a discarded segment's must not be an unhandled rejection.
    void uploaded.finally(() => this.memory.buffers.give(body)).catch(() => undefined);
    return { segment, atKey: encodeSegmentReference(dataKey, body.length), dataKey, uploaded };
  }

  /** Puts a staged segment in the log at its key, or adopts the segment an earlier attempt put there. */
  async commit(staged: StagedSegment): Promise<WrittenSegment> {
    await this.verifyEpochIsOurs();
    const { afterSequence } = staged.segment;
    const key = this.ownership.keys.segment(this.epoch, afterSequence);
    await staged.uploaded;
    if (await this.store.createIfAbsent(key, staged.atKey)) return { key, segment: staged.segment, created: true };
    // An earlier attempt from this cursor got there first; the journal below lastSequence is
    // immutable, so its segment holds the same writes (possibly fewer or more of them).
    const object = await this.store.getFramed(key);
    if (!object) throw new Error(`segment ${key} answered 412 but cannot be read`);
    // The SDK retries a PUT whose answer was lost: the 412 may be to our own reference.
    if (staged.dataKey && parseSegmentReference(key, object)?.data === staged.dataKey) return { key, segment: staged.segment, created: true };
    const existing = this.decodeAt(key, afterSequence, await followReference(this.store, key, object));
    await this.discard(staged);
    return { key, segment: existing, created: false };
  }

  /** Removes the uploaded bytes of a segment that will not be committed; garbage collection removes any a crash leaves. */
  async discard(staged: StagedSegment): Promise<void> {
    if (!staged.dataKey) return;
    try {
      await staged.uploaded;
      await this.store.delete([staged.dataKey]);
    } catch {
      // Left for garbage collection: nothing refers to it.
    }
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
    const body = await readSegmentObject(this.store, key);
    return body && this.decodeAt(key, afterSequence, body);
  }

  private decodeAt(key: string, afterSequence: number, body: Buffer): Segment {
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
