/**
 * Runbooks in the object store, where the recovery site can read them when the primary is gone:
 *   <prefix>runbooks/<name>/<version>.yaml   the submitted text, created only if absent
 *   <prefix>runbooks/<name>/index.json       every version's record, updated by compare-and-swap
 * A version number is claimed by creating its object with If-None-Match: *, so two concurrent
 * submitters can never overwrite each other; the loser moves on to the next number. The record
 * (who, when, sha256) travels in the object's own metadata, so the index is a convenience that
 * readers repair from the objects if a writer died between the two writes.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../common/config';
import { isConditionalConflict, isNotFound, isPreconditionFailed } from '../common/s3';

export const RUNBOOK_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_CLAIM_ATTEMPTS = 50;
const MAX_INDEX_ATTEMPTS = 20;

export interface RunbookVersionRecord {
  name: string;
  version: number;
  sha256: string;
  submittedBy: string;
  submittedAt: string;
  bytes: number;
}

export interface RunbookIndex {
  name: string;
  latest: number;
  versions: RunbookVersionRecord[];
}

export interface StoredRunbook {
  record: RunbookVersionRecord;
  text: string;
}

export const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

export class RunbookStore {
  constructor(
    private readonly s3: S3Client,
    private readonly settings: S3Settings,
  ) {}

  private folder(name: string): string {
    if (!RUNBOOK_NAME_PATTERN.test(name)) throw new Error(`invalid runbook name "${name}"`);
    return `${this.settings.prefix}runbooks/${name}/`;
  }
  private versionKey = (name: string, version: number) => `${this.folder(name)}${version}.yaml`;
  private indexKey = (name: string) => `${this.folder(name)}index.json`;

  /** Stores the text as the next version and returns its record. */
  async put(name: string, text: string, submittedBy: string, now: Date = new Date()): Promise<RunbookVersionRecord> {
    const index = await this.readIndex(name);
    let version = (await this.probeLatest(name, index?.index.latest ?? 0)) + 1;
    const base = { name, sha256: sha256(text), submittedBy, submittedAt: now.toISOString(), bytes: Buffer.byteLength(text, 'utf8') };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.settings.bucket,
            Key: this.versionKey(name, version),
            Body: text,
            ContentType: 'application/yaml; charset=utf-8',
            IfNoneMatch: '*',
            Metadata: { 'submitted-by': encodeURIComponent(submittedBy), 'submitted-at': base.submittedAt, sha256: base.sha256 },
          }),
        );
        break;
      } catch (error) {
        if (!(isPreconditionFailed(error) || isConditionalConflict(error)) || attempt >= MAX_CLAIM_ATTEMPTS) throw error;
        version++;
      }
    }
    const record = { ...base, version };
    await this.addToIndex(name, record);
    return record;
  }

  async get(name: string, version: number): Promise<StoredRunbook | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.versionKey(name, version), ChecksumMode: 'ENABLED' }));
      const text = (await object.Body?.transformToString('utf8')) ?? '';
      return { text, record: this.recordFrom(name, version, object.Metadata, Buffer.byteLength(text, 'utf8')) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async latest(name: string): Promise<StoredRunbook | undefined> {
    const versions = await this.versions(name);
    const newest = versions[versions.length - 1];
    return newest ? this.get(name, newest.version) : undefined;
  }

  /** All versions, oldest first, including any the index missed. */
  async versions(name: string): Promise<RunbookVersionRecord[]> {
    const index = await this.readIndex(name);
    const known = index?.index.versions ?? [];
    const latest = index?.index.latest ?? 0;
    const missed: RunbookVersionRecord[] = [];
    for (let version = latest + 1; ; version++) {
      const record = await this.head(name, version);
      if (!record) break;
      missed.push(record);
    }
    return [...known, ...missed];
  }

  /** Names of all stored runbooks with their newest version. */
  async list(): Promise<RunbookVersionRecord[]> {
    const root = `${this.settings.prefix}runbooks/`;
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: root, Delimiter: '/', ContinuationToken: token }));
      for (const p of page.CommonPrefixes ?? []) {
        const name = p.Prefix?.slice(root.length, -1);
        if (name && RUNBOOK_NAME_PATTERN.test(name)) names.push(name);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const newest: RunbookVersionRecord[] = [];
    for (const name of names.sort()) {
      const versions = await this.versions(name);
      if (versions.length > 0) newest.push(versions[versions.length - 1]);
    }
    return newest;
  }

  private recordFrom(name: string, version: number, metadata: Record<string, string> | undefined, bytes: number): RunbookVersionRecord {
    return {
      name,
      version,
      sha256: metadata?.sha256 ?? '',
      submittedBy: decodeURIComponent(metadata?.['submitted-by'] ?? ''),
      submittedAt: metadata?.['submitted-at'] ?? '',
      bytes,
    };
  }

  private async head(name: string, version: number): Promise<RunbookVersionRecord | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.versionKey(name, version) }));
      return this.recordFrom(name, version, head.Metadata, head.ContentLength ?? 0);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async probeLatest(name: string, fromIndex: number): Promise<number> {
    let latest = fromIndex;
    while (await this.head(name, latest + 1)) latest++;
    return latest;
  }

  private async readIndex(name: string): Promise<{ index: RunbookIndex; etag: string } | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.indexKey(name), ChecksumMode: 'ENABLED' }));
      const index = JSON.parse((await object.Body?.transformToString('utf8')) ?? '') as RunbookIndex;
      return { index, etag: object.ETag ?? '' };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async addToIndex(name: string, record: RunbookVersionRecord): Promise<void> {
    for (let attempt = 0; attempt < MAX_INDEX_ATTEMPTS; attempt++) {
      const current = await this.readIndex(name);
      const versions = current?.index.versions ?? [];
      if (versions.some((v) => v.version === record.version)) return;
      // Versions claimed by writers that have not reached the index yet are filled in from their objects.
      const filled = [...versions];
      for (let version = (current?.index.latest ?? 0) + 1; version < record.version; version++) {
        const missed = await this.head(name, version);
        if (missed) filled.push(missed);
      }
      filled.push(record);
      filled.sort((a, b) => a.version - b.version);
      const next: RunbookIndex = { name, latest: filled[filled.length - 1].version, versions: filled };
      try {
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.settings.bucket,
            Key: this.indexKey(name),
            Body: JSON.stringify(next),
            ContentType: 'application/json',
            ...(current ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
          }),
        );
        return;
      } catch (error) {
        if (!(isPreconditionFailed(error) || isConditionalConflict(error))) throw error;
      }
    }
    // The version itself is stored; readers find it from the objects even though the index lags.
  }
}
