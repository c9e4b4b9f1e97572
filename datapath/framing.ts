import { createHash } from 'node:crypto';

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
