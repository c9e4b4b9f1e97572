import {
  COMPRESSIBILITY_SAMPLE_BYTES,
  compressPayload,
  compressPayloadSync,
  incompressible,
  inflatePayload,
  inflatePayloadSync,
  newFrameHeader,
  openFrame,
  sealFrame,
  sealFrameInPlace,
  StoredBlockWriter,
  storedStreamBytes,
  type FrameFormat,
} from './framing';
import type { JournalEntry } from '../sites/provider';

/**
 * Binary layout of a log segment (version 1), all integers big-endian:
 *
 *   header (64 bytes, uncompressed)
 *     0  magic "DRSG"
 *     4  u16 format version (1)
 *     6  u8  compression (1 = raw deflate)
 *     7  u8  reserved (0)
 *     8  u32 epoch
 *    12  u32 entry count
 *    16  u64 afterSequence   journal cursor the segment starts after
 *    24  u64 lastSequence    journal cursor after the segment (the next segment's afterSequence)
 *    32  u32 payload length, uncompressed
 *    36  u32 payload length, compressed (the rest of the object)
 *    40  u64 reserved (0)
 *    48  16 bytes: first half of sha256 over header bytes 0..47 and the compressed payload
 *   payload (compressed): per entry
 *     u64 sequence, u64 timestamp ms, u64 offset, u32 data length,
 *     u16 vm length, vm (utf8), u16 diskId length, diskId (utf8), data
 */
export const SEGMENT_MAGIC = 'DRSG';
export const SEGMENT_FORMAT_VERSION = 1;
const FORMAT: FrameFormat = { magic: SEGMENT_MAGIC, version: SEGMENT_FORMAT_VERSION, headerBytes: 64, compressedLengthOffset: 36, checksumOffset: 48 };

/** A segment holds the site's journal entries as they were acknowledged. */
export type BlockWrite = JournalEntry;

export interface Segment {
  epoch: number;
  afterSequence: number;
  lastSequence: number;
  entries: BlockWrite[];
}

/** A segment object that cannot be trusted; rehydration stops rather than apply it. */
export class CorruptSegmentError extends Error {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`corrupt log segment ${key}: ${reason}`);
    this.name = 'CorruptSegmentError';
  }
}

/** An entry's fixed part, before its data: sequence, timestamp, offset, data length, vm and disk id. */
function entryHeader(entry: BlockWrite): Buffer {
  const vm = Buffer.from(entry.vm, 'utf8');
  const disk = Buffer.from(entry.diskId, 'utf8');
  const fixed = Buffer.alloc(28 + 2 + vm.length + 2 + disk.length);
  fixed.writeBigUInt64BE(BigInt(entry.sequence), 0);
  fixed.writeBigUInt64BE(BigInt(entry.timestamp), 8);
  fixed.writeBigUInt64BE(BigInt(entry.offset), 16);
  fixed.writeUInt32BE(entry.data.length, 24);
  fixed.writeUInt16BE(vm.length, 28);
  vm.copy(fixed, 30);
  fixed.writeUInt16BE(disk.length, 30 + vm.length);
  disk.copy(fixed, 32 + vm.length);
  return fixed;
}

/** The header without its compressed length and checksum, for a payload of `rawBytes`. */
function segmentHeader(segment: Segment, rawBytes: number, into: Buffer = Buffer.alloc(FORMAT.headerBytes)): Buffer {
  newFrameHeader(FORMAT).copy(into);
  into.writeUInt32BE(segment.epoch, 8);
  into.writeUInt32BE(segment.entries.length, 12);
  into.writeBigUInt64BE(BigInt(segment.afterSequence), 16);
  into.writeBigUInt64BE(BigInt(segment.lastSequence), 24);
  into.writeUInt32BE(rawBytes, 32);
  return into;
}

/** The uncompressed payload and the header without its compressed length and checksum. */
function serializeSegment(segment: Segment, headers = segment.entries.map(entryHeader)): { header: Buffer; raw: Buffer } {
  const raw = Buffer.concat(segment.entries.flatMap((entry, i) => [headers[i], entry.data]));
  return { header: segmentHeader(segment, raw.length), raw };
}

export function encodeSegment(segment: Segment): Buffer {
  const { header, raw } = serializeSegment(segment);
  return sealFrame(FORMAT, header, compressPayloadSync(raw, 1));
}

/**
 * As `encodeSegment`, compressing on the thread pool (the replicator's hot path). `allocate` gives
 * the buffer of a segment stored uncompressed (to reuse buffers: `BufferPool`).
 */
export async function encodeSegmentAsync(segment: Segment, allocate: (bytes: number) => Buffer = (bytes) => Buffer.allocUnsafe(bytes)): Promise<Buffer> {
  const headers = segment.entries.map(entryHeader);
  const stored = encodeIncompressible(segment, headers, allocate);
  if (stored) return stored;
  const { header, raw } = serializeSegment(segment, headers);
  return sealFrame(FORMAT, header, await compressPayload(raw, 1));
}

/**
 * The segment with its payload in stored blocks, written straight into the object, when a sample
 * of its writes would not compress (random or already compressed data, the usual guest write):
 * one copy of each write instead of three, which on two cores shared with the store was a third
 * of ingest's CPU. Undefined for a small or compressible segment, which is deflated.
 */
function encodeIncompressible(segment: Segment, headers: Buffer[], allocate: (bytes: number) => Buffer): Buffer | undefined {
  const rawBytes = segment.entries.reduce((sum, entry, i) => sum + headers[i].length + entry.data.length, 0);
  if (rawBytes <= COMPRESSIBILITY_SAMPLE_BYTES) return undefined;
  const sample: Buffer[] = [];
  for (let i = 0, sampled = 0; i < segment.entries.length && sampled < COMPRESSIBILITY_SAMPLE_BYTES; i++) {
    sample.push(headers[i], segment.entries[i].data.subarray(0, COMPRESSIBILITY_SAMPLE_BYTES - sampled));
    sampled += headers[i].length + Math.min(segment.entries[i].data.length, COMPRESSIBILITY_SAMPLE_BYTES - sampled);
  }
  if (!incompressible(Buffer.concat(sample))) return undefined;
  const object = allocate(FORMAT.headerBytes + storedStreamBytes(rawBytes));
  segmentHeader(segment, rawBytes, object.subarray(0, FORMAT.headerBytes));
  const payload = new StoredBlockWriter(object, FORMAT.headerBytes, rawBytes);
  segment.entries.forEach((entry, i) => {
    payload.write(headers[i]);
    payload.write(entry.data);
  });
  return sealFrameInPlace(FORMAT, object);
}

/** Decodes and verifies a segment; every inconsistency throws CorruptSegmentError naming `key`. */
export function decodeSegment(key: string, object: Buffer): Segment {
  const corrupt = (reason: string) => new CorruptSegmentError(key, reason);
  const { header, payload } = openFrame(FORMAT, object, corrupt);
  return parseSegment(key, header, inflatePayloadSync(payload, corrupt));
}

/** As `decodeSegment`, unpacking stored blocks or inflating on the thread pool (the readers' hot path). */
export async function decodeSegmentAsync(key: string, object: Buffer): Promise<Segment> {
  const corrupt = (reason: string) => new CorruptSegmentError(key, reason);
  const { header, payload } = openFrame(FORMAT, object, corrupt);
  return parseSegment(key, header, await inflatePayload(payload, header.readUInt32BE(32), corrupt));
}

function parseSegment(key: string, header: Buffer, raw: Buffer): Segment {
  if (raw.length !== header.readUInt32BE(32)) throw new CorruptSegmentError(key, 'payload length mismatch');
  const count = header.readUInt32BE(12);
  const entries: BlockWrite[] = [];
  let at = 0;
  try {
    for (let i = 0; i < count; i++) {
      const sequence = Number(raw.readBigUInt64BE(at));
      const timestamp = Number(raw.readBigUInt64BE(at + 8));
      const offset = Number(raw.readBigUInt64BE(at + 16));
      const length = raw.readUInt32BE(at + 24);
      const vmLength = raw.readUInt16BE(at + 28);
      const vm = raw.toString('utf8', at + 30, at + 30 + vmLength);
      const diskLength = raw.readUInt16BE(at + 30 + vmLength);
      const diskStart = at + 32 + vmLength;
      const diskId = raw.toString('utf8', diskStart, diskStart + diskLength);
      const dataStart = diskStart + diskLength;
      if (dataStart + length > raw.length) throw new RangeError('entry overruns payload');
      entries.push({ sequence, timestamp, vm, diskId, offset, data: raw.subarray(dataStart, dataStart + length) });
      at = dataStart + length;
    }
  } catch (error) {
    throw new CorruptSegmentError(key, `malformed entry ${entries.length}: ${(error as Error).message}`);
  }
  if (at !== raw.length) throw new CorruptSegmentError(key, 'trailing bytes after the last entry');
  return {
    epoch: header.readUInt32BE(8),
    afterSequence: Number(header.readBigUInt64BE(16)),
    lastSequence: Number(header.readBigUInt64BE(24)),
    entries,
  };
}
