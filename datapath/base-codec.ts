import { constants } from 'node:zlib';
import { compressPayload, inflatePayload, inflatePayloadSync, newFrameHeader, openFrame, sealFrame, type FrameFormat } from './framing';
import { CorruptSegmentError } from './segment-codec';

/**
 * Binary layout of one base chunk (version 1), all integers big-endian:
 *
 *   header (48 bytes, uncompressed)
 *     0  magic "DRBC"
 *     4  u16 format version (1)
 *     6  u8  compression (1 = raw deflate)
 *     7  u8  reserved (0)
 *     8  u64 disk offset of the chunk
 *    16  u32 data length, uncompressed
 *    20  u32 data length, compressed (the rest of the object)
 *    24  u64 reserved (0)
 *    32  16 bytes: first half of sha256 over header bytes 0..31 and the compressed data
 *   data (compressed)
 */
export const BASE_CHUNK_MAGIC = 'DRBC';
export const BASE_CHUNK_FORMAT_VERSION = 1;
const FORMAT: FrameFormat = { magic: BASE_CHUNK_MAGIC, version: BASE_CHUNK_FORMAT_VERSION, headerBytes: 48, compressedLengthOffset: 20, checksumOffset: 32 };

/**
 * A base chunk that cannot be trusted. It is a CorruptSegmentError so that every caller that
 * refuses damaged log data (non-retryable `CorruptSegment` activity failures) refuses it too.
 */
export class CorruptBaseChunkError extends CorruptSegmentError {
  constructor(key: string, reason: string) {
    super(key, reason);
    this.message = `corrupt base chunk ${key}: ${reason}`;
    this.name = 'CorruptBaseChunkError';
  }
}

/**
 * Deflates on the thread pool: at the default level a megabyte of compressible data costs tens
 * of milliseconds, which an initial sync of thousands of disks spent on the site worker's main
 * thread, holding up every other activity's requests (its profile in a 1,000-VM failover).
 */
export async function encodeBaseChunk(offset: number, data: Buffer): Promise<Buffer> {
  const payload = await compressPayload(data, constants.Z_DEFAULT_COMPRESSION);
  const header = newFrameHeader(FORMAT);
  header.writeBigUInt64BE(BigInt(offset), 8);
  header.writeUInt32BE(data.length, 16);
  return sealFrame(FORMAT, header, payload);
}

/** Decodes a chunk and checks it is the one its key names (`offset`); throws CorruptBaseChunkError naming the key. */
export function decodeBaseChunk(key: string, offset: number, object: Buffer): Buffer {
  const corrupt = (reason: string) => new CorruptBaseChunkError(key, reason);
  const { header, payload } = openChunk(key, offset, object);
  return checkLength(key, header, inflatePayloadSync(payload, corrupt));
}

/** As `decodeBaseChunk`, unpacking stored blocks or inflating on the thread pool (the rehydration's hot path). */
export async function decodeBaseChunkAsync(key: string, offset: number, object: Buffer): Promise<Buffer> {
  const corrupt = (reason: string) => new CorruptBaseChunkError(key, reason);
  const { header, payload } = openChunk(key, offset, object);
  return checkLength(key, header, await inflatePayload(payload, header.readUInt32BE(16), corrupt));
}

function openChunk(key: string, offset: number, object: Buffer): { header: Buffer; payload: Buffer } {
  const frame = openFrame(FORMAT, object, (reason) => new CorruptBaseChunkError(key, reason));
  if (Number(frame.header.readBigUInt64BE(8)) !== offset) throw new CorruptBaseChunkError(key, 'header does not match its key');
  return frame;
}

function checkLength(key: string, header: Buffer, data: Buffer): Buffer {
  if (data.length !== header.readUInt32BE(16)) throw new CorruptBaseChunkError(key, `inflates to ${data.length} bytes, header says ${header.readUInt32BE(16)}`);
  return data;
}
