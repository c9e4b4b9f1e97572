import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../common/config';
import { ACCESS_DENIED_CODES, isAccessDenied, isNotFound, isPreconditionFailed } from '../common/s3';

/** The store refused the worker's credentials for this bucket and key (`AccessDenied`, `InvalidAccessKeyId`, `SignatureDoesNotMatch`). */
export class ObjectStoreAccessDeniedError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    cause: Error,
  ) {
    super(`the object store refused access to s3://${bucket}/${key}: ${cause.name} (${cause.message}); check the site worker's S3 credentials`, { cause });
    this.name = 'ObjectStoreAccessDeniedError';
  }
}

/** The few S3 calls the data path makes, bound to one bucket. */
export class ObjectStore {
  constructor(
    readonly s3: S3Client,
    readonly settings: S3Settings,
  ) {}

  get prefix(): string {
    return this.settings.prefix;
  }

  /** Sends the request for `key` (a prefix for a list), naming the bucket and key when the credentials are refused. */
  private async send<T>(key: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (isAccessDenied(error)) throw new ObjectStoreAccessDeniedError(this.settings.bucket, key, error as Error);
      throw error;
    }
  }

  /** Creates the object only if the key is free; false when it already exists (the 412 answer). */
  async createIfAbsent(key: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<boolean> {
    try {
      await this.send(key, () => this.s3.send(new PutObjectCommand({ Bucket: this.settings.bucket, Key: key, Body: body, ContentType: contentType, IfNoneMatch: '*' })));
      return true;
    } catch (error) {
      if (isPreconditionFailed(error)) return false;
      throw error;
    }
  }

  async put(key: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<void> {
    await this.send(key, () => this.s3.send(new PutObjectCommand({ Bucket: this.settings.bucket, Key: key, Body: body, ContentType: contentType })));
  }

  /** The object's bytes, checked against the checksum the store keeps for it (when it keeps one). */
  get(key: string): Promise<Buffer | undefined> {
    return this.fetch(key, 'ENABLED');
  }

  /**
   * An object that carries its own SHA-256, which its reader checks (a log segment, a base chunk):
   * fetched without the SDK's CRC of the answer, a second pass over every byte on the thread that
   * applies them (4.5% of a rehydration's main thread in a profile).
   */
  getFramed(key: string): Promise<Buffer | undefined> {
    return this.fetch(key, undefined);
  }

  private async fetch(key: string, checksumMode: 'ENABLED' | undefined): Promise<Buffer | undefined> {
    try {
      const bytes = await this.send(key, async () => {
        const result = await this.s3.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: key, ChecksumMode: checksumMode }));
        return result.Body!.transformToByteArray();
      });
      // A view, not a copy: objects are megabytes and this is the readers' hot path.
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Deletes the keys, 1000 per request; a key already gone is no error, so a repeated delete is harmless. */
  async delete(keys: string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000);
      const result = await this.send(batch[0], () => this.s3.send(new DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })));
      const failed = result.Errors ?? [];
      // A refusal can come per key inside a successful answer, as a policy may deny some keys only.
      const refused = failed.find((e) => e.Code !== undefined && ACCESS_DENIED_CODES.has(e.Code));
      if (refused) throw new ObjectStoreAccessDeniedError(this.settings.bucket, refused.Key ?? batch[0], Object.assign(new Error(refused.Message ?? refused.Code), { name: refused.Code }));
      if (failed.length > 0) throw new Error(`deleting ${failed.length} object(s) failed, first ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message}`);
    }
  }

  /** Every key under the prefix (the first `limit` if given), in lexical order, with its size in `sizes` (how far behind a reader is, in bytes). */
  async list(prefix: string, options: { delimiter?: string; startAfter?: string; limit?: number } = {}): Promise<{ keys: string[]; sizes: Map<string, number>; prefixes: string[] }> {
    const keys: string[] = [];
    const sizes = new Map<string, number>();
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.send(prefix, () => this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.settings.bucket,
          Prefix: prefix,
          Delimiter: options.delimiter,
          StartAfter: token ? undefined : options.startAfter,
          ContinuationToken: token,
          MaxKeys: options.limit === undefined ? undefined : Math.min(1000, options.limit - keys.length),
        }),
      ));
      for (const item of page.Contents ?? []) {
        if (!item.Key) continue;
        keys.push(item.Key);
        sizes.set(item.Key, item.Size ?? 0);
      }
      for (const item of page.CommonPrefixes ?? []) if (item.Prefix) prefixes.push(item.Prefix);
      token = page.IsTruncated && (options.limit === undefined || keys.length < options.limit) ? page.NextContinuationToken : undefined;
    } while (token);
    return { keys, sizes, prefixes };
  }
}
