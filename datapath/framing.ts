import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { deflateRaw, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib';

/**
 * The frame every binary object of the data path shares (log segments, base chunks): a fixed
 * header starting with magic, u16 format version and u8 compression, the compressed length at a
 * known offset, and 16 bytes of sha256 over the header before them and the payload.
 */
export interface FrameFormat {
  magic: string;
  version: number;
  headerBytes: number;
  compressedLengthOffset: number;
  checksumOffset: number;
}

export const COMPRESSION_DEFLATE = 1;

function checksum(format: FrameFormat, header: Buffer, payload: Buffer): Buffer {
  return createHash('sha256').update(header.subarray(0, format.checksumOffset)).update(payload).digest().subarray(0, 16);
}

/** A header with magic, version and compression written; the caller fills in its own fields. */
export function newFrameHeader(format: FrameFormat): Buffer {
  const header = Buffer.alloc(format.headerBytes);
  header.write(format.magic, 0, 'ascii');
  header.writeUInt16BE(format.version, 4);
  header.writeUInt8(COMPRESSION_DEFLATE, 6);
  return header;
}

/** Writes the compressed length and the checksum, and returns the whole object. */
export function sealFrame(format: FrameFormat, header: Buffer, payload: Buffer): Buffer {
  header.writeUInt32BE(payload.length, format.compressedLengthOffset);
  checksum(format, header, payload).copy(header, format.checksumOffset);
  return Buffer.concat([header, payload]);
}

/** As `sealFrame`, for an object whose header and payload were written into one buffer. */
export function sealFrameInPlace(format: FrameFormat, object: Buffer): Buffer {
  const header = object.subarray(0, format.headerBytes);
  const payload = object.subarray(format.headerBytes);
  header.writeUInt32BE(payload.length, format.compressedLengthOffset);
  checksum(format, header, payload).copy(header, format.checksumOffset);
  return object;
}

/** Checks an object's frame and returns its header and compressed payload; `corrupt` makes the error that names the object. */
export function openFrame(format: FrameFormat, object: Buffer, corrupt: (reason: string) => Error): { header: Buffer; payload: Buffer } {
  const { headerBytes, checksumOffset } = format;
  if (object.length < headerBytes) throw corrupt(`truncated: ${object.length} bytes, header needs ${headerBytes}`);
  if (object.toString('ascii', 0, 4) !== format.magic) throw corrupt('bad magic');
  const version = object.readUInt16BE(4);
  if (version !== format.version) throw corrupt(`unsupported format version ${version}`);
  if (object.readUInt8(6) !== COMPRESSION_DEFLATE) throw corrupt(`unknown compression ${object.readUInt8(6)}`);
  const expected = headerBytes + object.readUInt32BE(format.compressedLengthOffset);
  if (object.length !== expected) throw corrupt(`truncated or padded: ${object.length} bytes, header says ${expected}`);
  const header = object.subarray(0, headerBytes);
  const payload = object.subarray(headerBytes);
  if (!checksum(format, header, payload).equals(header.subarray(checksumOffset, checksumOffset + 16))) throw corrupt('checksum mismatch');
  return { header, payload };
}

const SAMPLE_BYTES = 16 * 1024;
const MIN_CHUNK_BYTES = 64;
const deflateRawAsync = promisify(deflateRaw);
const inflateRawAsync = promisify(inflateRaw);

/**
 * Random or already compressed data (the usual guest write) gains nothing from deflate but costs
 * it 40 MiB/s of one core: when a sample does not shrink by an eighth, the payload is stored
 * (deflate level 0: still raw deflate, so readers need no other format).
 */
function levelFor(raw: Buffer, level: number): number {
  if (raw.length <= SAMPLE_BYTES) return level;
  return incompressible(raw.subarray(0, SAMPLE_BYTES)) ? 0 : level;
}

/** A sample of data (`SAMPLE_BYTES` at most is read) that deflate would not shrink by an eighth. */
export function incompressible(sample: Buffer): boolean {
  const bytes = sample.subarray(0, SAMPLE_BYTES);
  return deflateRawSync(bytes, { level: 1 }).length > bytes.length * 0.875;
}

/** Payloads at least this large are sampled for compressibility; smaller ones are deflated. */
export const COMPRESSIBILITY_SAMPLE_BYTES = SAMPLE_BYTES;

export function compressPayloadSync(raw: Buffer, level: number): Buffer {
  return deflateRawSync(raw, { level: levelFor(raw, level) });
}

/** As `compressPayloadSync`, on libuv's thread pool: the event loop keeps serving I/O meanwhile. */
export function compressPayload(raw: Buffer, level: number): Promise<Buffer> {
  // One output chunk: with the default 16 KiB, a megabyte costs 64 round trips to the pool and a concat.
  return deflateRawAsync(raw, { level: levelFor(raw, level), chunkSize: Math.max(MIN_CHUNK_BYTES, raw.length + (raw.length >> 8) + 64) });
}

/**
 * Inflates into one buffer of `expectedBytes` (the header's length); `corrupt` makes the error
 * that names the object. A payload stored without compression (`levelFor` chose level 0: the
 * usual guest write) is unpacked by copying its stored blocks; any other on the thread pool.
 */
export async function inflatePayload(payload: Buffer, expectedBytes: number, corrupt: (reason: string) => Error): Promise<Buffer> {
  const stored = unpackStoredBlocks(payload, expectedBytes);
  if (stored) return stored;
  try {
    return await inflateRawAsync(payload, { chunkSize: Math.max(MIN_CHUNK_BYTES, expectedBytes) });
  } catch (error) {
    throw corrupt(`cannot decompress: ${(error as Error).message}`);
  }
}

/** Bit 0 of a deflate block header: the last block. Bits 1-2: its type, 00 for stored. Stored blocks start on a byte boundary. */
const FINAL_BLOCK = 0x01;
const STORED_HEADER_BYTES = 5;
const STORED_BLOCK_MAX_BYTES = 0xffff;

/** The size of a raw deflate stream of stored blocks holding `rawBytes`. */
export function storedStreamBytes(rawBytes: number): number {
  return rawBytes + Math.max(1, Math.ceil(rawBytes / STORED_BLOCK_MAX_BYTES)) * STORED_HEADER_BYTES;
}

/**
 * Writes a payload of exactly `rawBytes`, part by part, into `out` from `at` as a raw deflate
 * stream of stored blocks (`storedStreamBytes(rawBytes)` long; the layout level 0 writes): for
 * data deflate cannot shrink, the one copy of each part into the object is the whole encoding,
 * where serializing, deflating and framing copied it three times.
 */
export class StoredBlockWriter {
  private remaining: number;
  private leftInBlock = 0;

  constructor(
    private readonly out: Buffer,
    private at: number,
    rawBytes: number,
  ) {
    this.remaining = rawBytes;
    if (rawBytes === 0) this.startBlock();
  }

  write(part: Buffer): void {
    for (let from = 0; from < part.length; ) {
      if (this.leftInBlock === 0) this.startBlock();
      const length = Math.min(this.leftInBlock, part.length - from);
      part.copy(this.out, this.at, from, from + length);
      this.at += length;
      from += length;
      this.leftInBlock -= length;
    }
  }

  private startBlock(): void {
    const length = Math.min(STORED_BLOCK_MAX_BYTES, this.remaining);
    this.remaining -= length;
    this.out[this.at] = this.remaining === 0 ? FINAL_BLOCK : 0;
    this.out.writeUInt16LE(length, this.at + 1);
    this.out.writeUInt16LE(length ^ 0xffff, this.at + 3);
    this.at += STORED_HEADER_BYTES;
    this.leftInBlock = length;
  }
}

/**
 * The bytes of a raw deflate stream made only of stored blocks (header byte, LEN, NLEN, LEN bytes;
 * what level 0 writes), copied into one buffer. zlib's round trip copies the same bytes on the
 * thread pool and still cost the main thread as much as this copy (6% of a rehydration's profile):
 * this way the copy is the only cost. Undefined for anything else
 * (compressed blocks, a malformed or short stream, another length than expected): zlib then
 * inflates it, or says what is wrong with it.
 */
export function unpackStoredBlocks(payload: Buffer, expectedBytes: number): Buffer | undefined {
  // Checked before allocating: a compressed payload, or a length no stored stream of this size can hold.
  if (payload.length === 0 || (payload[0] & ~FINAL_BLOCK) !== 0 || expectedBytes > payload.length) return undefined;
  const out = Buffer.allocUnsafe(expectedBytes);
  let read = 0;
  let written = 0;
  for (;;) {
    if (read + STORED_HEADER_BYTES > payload.length) return undefined;
    const header = payload[read];
    // Any other type, or padding bits zlib would not write: not for this path.
    if ((header & ~FINAL_BLOCK) !== 0) return undefined;
    const length = payload.readUInt16LE(read + 1);
    if ((length ^ 0xffff) !== payload.readUInt16LE(read + 3)) return undefined;
    const start = read + STORED_HEADER_BYTES;
    if (start + length > payload.length || written + length > expectedBytes) return undefined;
    payload.copy(out, written, start, start + length);
    written += length;
    read = start + length;
    if (header & FINAL_BLOCK) break;
  }
  return read === payload.length && written === expectedBytes ? out : undefined;
}

export function inflatePayloadSync(payload: Buffer, corrupt: (reason: string) => Error): Buffer {
  try {
    return inflateRawSync(payload);
  } catch (error) {
    throw corrupt(`cannot decompress: ${(error as Error).message}`);
  }
}
