import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
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
const COMPRESSION_DEFLATE = 1;
const HEADER_BYTES = 48;
const CHECKSUM_OFFSET = 32;

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

function checksum(header: Buffer, payload: Buffer): Buffer {
  return createHash('sha256').update(header.subarray(0, CHECKSUM_OFFSET)).update(payload).digest().subarray(0, 16);
}

export function encodeBaseChunk(offset: number, data: Buffer): Buffer {
  const payload = deflateRawSync(data);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(BASE_CHUNK_MAGIC, 0, 'ascii');
  header.writeUInt16BE(BASE_CHUNK_FORMAT_VERSION, 4);
  header.writeUInt8(COMPRESSION_DEFLATE, 6);
  header.writeBigUInt64BE(BigInt(offset), 8);
  header.writeUInt32BE(data.length, 16);
  header.writeUInt32BE(payload.length, 20);
  checksum(header, payload).copy(header, CHECKSUM_OFFSET);
  return Buffer.concat([header, payload]);
}

/** Decodes a chunk and checks it is the one its key names (`offset`); throws CorruptBaseChunkError naming the key. */
export function decodeBaseChunk(key: string, offset: number, object: Buffer): Buffer {
  if (object.length < HEADER_BYTES) throw new CorruptBaseChunkError(key, `truncated: ${object.length} bytes, header needs ${HEADER_BYTES}`);
  if (object.toString('ascii', 0, 4) !== BASE_CHUNK_MAGIC) throw new CorruptBaseChunkError(key, 'bad magic');
  const version = object.readUInt16BE(4);
  if (version !== BASE_CHUNK_FORMAT_VERSION) throw new CorruptBaseChunkError(key, `unknown format version ${version}`);
  if (object.readUInt8(6) !== COMPRESSION_DEFLATE) throw new CorruptBaseChunkError(key, `unknown compression ${object.readUInt8(6)}`);
  const compressed = object.readUInt32BE(20);
  if (object.length !== HEADER_BYTES + compressed) throw new CorruptBaseChunkError(key, `truncated or padded: ${object.length} bytes, header says ${HEADER_BYTES + compressed}`);
  const payload = object.subarray(HEADER_BYTES);
  if (!checksum(object, payload).equals(object.subarray(CHECKSUM_OFFSET, HEADER_BYTES))) throw new CorruptBaseChunkError(key, 'checksum mismatch');
  if (Number(object.readBigUInt64BE(8)) !== offset) throw new CorruptBaseChunkError(key, 'header does not match its key');
  let data: Buffer;
  try {
    data = inflateRawSync(payload);
  } catch (error) {
    throw new CorruptBaseChunkError(key, `does not inflate: ${(error as Error).message}`);
  }
  if (data.length !== object.readUInt32BE(16)) throw new CorruptBaseChunkError(key, `inflates to ${data.length} bytes, header says ${object.readUInt32BE(16)}`);
  return data;
}
