import { deflateSync, inflateSync } from 'node:zlib';
import { METADATA_ENCODING_KEY, ValueError, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/**
 * A compressed payload's encoding: zlib over the whole payload (its metadata too) in protobuf, as
 * the Go SDK's ZlibCodec writes it, so that tools built on that codec read our histories.
 */
export const COMPRESSED_ENCODING = 'binary/zlib';

/**
 * Payloads from this size on are stored compressed. Below it a payload stays plain JSON, which the
 * Web UI and `temporal workflow show` read without a codec: most steps' inputs and results, and the
 * progress and reports of ordinary domains. Above it are mostly what grows with a domain (runbook
 * pages, a recovery point's VMs, batches of 100 VMs' specs or resources), whose JSON repeats the
 * same keys and values for every VM: a 10,000-VM drill's batches of 100 resources to remove are
 * some 6 KB each, 3.4 MiB of its history in all when stored plain.
 */
export const COMPRESS_FROM_BYTES = 4 * 1024;

/** A corrupt or hostile payload (a zip bomb sent to the API's codec endpoint) stops inflating here. */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const encodingBytes = new TextEncoder().encode(COMPRESSED_ENCODING);
const isCompressed = (p: Payload): boolean => {
  const encoding = p.metadata?.[METADATA_ENCODING_KEY];
  return encoding !== undefined && encoding !== null && Buffer.from(encoding).toString() === COMPRESSED_ENCODING;
};

/**
 * Compresses the large payloads an operation's history holds: at 10,000 VMs a failover's history
 * was 17.6 MiB of JSON (Temporal warns at 10 MiB and ends a history at 50), and a worker taking
 * an operation over after a crash reads all of it before its workflow task's 10 s run out.
 * Payloads written before compression, and others' encodings, pass through as they are.
 */
export class PayloadCompression implements PayloadCodec {
  constructor(
    private readonly fromBytes = COMPRESS_FROM_BYTES,
    private readonly maxInflatedBytes = MAX_INFLATED_BYTES,
  ) {}

  // Synchronous zlib: a payload is at most some MB, and the SDK awaits each call anyway.
  encode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((p) => this.encodeOne(p))));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) => resolve(payloads.map((p) => this.decodeOne(p))));
  }

  /** The payload compressed when it is large and compresses; otherwise as it is. */
  encodeOne(payload: Payload): Payload {
    if ((payload.data?.length ?? 0) < this.fromBytes || isCompressed(payload)) return payload;
    const whole = temporal.api.common.v1.Payload.encode(payload).finish();
    // Level 1: a 2.4 MB runbook of 10,000 VMs takes 5 ms and comes to 0.1 MB; higher levels gain some percent.
    const data = deflateSync(whole, { level: 1 });
    return data.length < whole.length ? { metadata: { [METADATA_ENCODING_KEY]: encodingBytes }, data } : payload;
  }

  /** The payload inflated when it is compressed; others as they are. */
  decodeOne(payload: Payload): Payload {
    if (!isCompressed(payload)) return payload;
    if (!payload.data) throw new ValueError(`a ${COMPRESSED_ENCODING} payload without data`);
    let whole: Buffer;
    try {
      whole = inflateSync(payload.data, { maxOutputLength: this.maxInflatedBytes });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new InflatesTooLarge(this.maxInflatedBytes);
      throw new ValueError(`a ${COMPRESSED_ENCODING} payload does not inflate: ${(error as Error).message}`);
    }
    const decoded = temporal.api.common.v1.Payload.decode(whole);
    return { metadata: decoded.metadata, data: decoded.data };
  }
}

export class InflatesTooLarge extends ValueError {
  constructor(readonly limit: number) {
    super(`a ${COMPRESSED_ENCODING} payload inflates to more than ${limit} bytes`);
  }
}

/** What every client, worker and replay of this product encodes and decodes payloads with. */
export const dataConverter: DataConverter = { payloadCodecs: [new PayloadCompression()] };
