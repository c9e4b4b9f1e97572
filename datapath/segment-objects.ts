import { z } from 'zod';
import type { ObjectStore } from './object-store';
import { CorruptSegmentError } from './segment-codec';

/**
 * What a key of the log holds: the segment itself (version 1, every segment up to 1 MiB), or a
 * reference to the segment's bytes uploaded beforehand to a key of their own. Creating the
 * reference (create-if-absent) is what puts the segment in the chain, so the bytes of the next
 * segments can be uploaded while the one before is not yet in the log: a store takes two uploads
 * at once at nearly twice the speed of one (bench/results/README.md), and the chain keeps one
 * writer per key and the order of the journal.
 */
export const SEGMENT_REFERENCE_KIND = 'dr-segment-reference';

const referenceSchema = z.object({
  kind: z.literal(SEGMENT_REFERENCE_KIND),
  formatVersion: z.literal(1),
  /** The key holding the segment object (its own checksum covers it). */
  data: z.string().min(1),
  bytes: z.number().int().nonnegative(),
});
export type SegmentReference = z.infer<typeof referenceSchema>;

/** Segment objects above this size are uploaded ahead and referred to; smaller ones are written at their key as they are (a second request would cost more than the overlap gains). */
export const INLINE_SEGMENT_MAX_BYTES = 1024 * 1024;

export function encodeSegmentReference(data: string, bytes: number): Buffer {
  const reference: SegmentReference = { kind: SEGMENT_REFERENCE_KIND, formatVersion: 1, data, bytes };
  return Buffer.from(JSON.stringify(reference));
}

/** The reference a log object holds, or undefined when it is the segment itself. */
export function parseSegmentReference(key: string, object: Buffer): SegmentReference | undefined {
  // A segment object starts with its magic "DRSG"; a reference is JSON.
  if (object[0] !== 0x7b) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(object.toString('utf8'));
  } catch (error) {
    throw new CorruptSegmentError(key, `unreadable segment reference: ${(error as Error).message}`);
  }
  const result = referenceSchema.safeParse(parsed);
  if (!result.success) throw new CorruptSegmentError(key, `malformed segment reference: ${result.error.issues[0]?.message}`);
  return result.data;
}

/** The segment object stored at a key of the log, following a reference; undefined when the key is free. */
export async function readSegmentObject(store: ObjectStore, key: string): Promise<Buffer | undefined> {
  const object = await store.getFramed(key);
  return object && followReference(store, key, object);
}

/** The segment object that `object`, read at log key `key`, is or refers to. */
export async function followReference(store: ObjectStore, key: string, object: Buffer): Promise<Buffer> {
  const reference = parseSegmentReference(key, object);
  if (!reference) return object;
  const data = await store.getFramed(reference.data);
  if (!data) throw new CorruptSegmentError(key, `the segment's bytes at ${reference.data} are missing`);
  if (data.length !== reference.bytes) throw new CorruptSegmentError(key, `the segment's bytes at ${reference.data} are ${data.length} bytes, the reference says ${reference.bytes}`);
  return data;
}
