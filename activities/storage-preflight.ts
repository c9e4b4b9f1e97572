import { DeleteObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { activityInfo } from '@temporalio/activity';
import type { S3Settings } from '../common/config';
import { isPreconditionFailed } from '../common/s3';

export interface ConditionalWriteCheck {
  name: string;
  expected: 'accepted' | 'rejected';
  observed: 'accepted' | 'rejected' | 'error';
  detail?: string;
}

export interface ConditionalWriteReport {
  endpoint: string;
  bucket: string;
  /** If-None-Match: * refuses to overwrite: ownership epochs and log segments rely on it. */
  createIfAbsentEnforced: boolean;
  /** If-Match refuses a stale ETag. */
  compareAndSwapEnforced: boolean;
  checks: ConditionalWriteCheck[];
}

export interface StoragePreflightDependencies {
  s3: S3Client;
  s3Settings: S3Settings;
}

/**
 * Proves, against the configured storage site, the primitives that IO fencing depends on. A store
 * that silently ignores conditional headers (some S3 look-alikes do) would let two sites both
 * believe they own a domain, so this runs before anything trusts the store.
 */
export function createStoragePreflightActivities({ s3, s3Settings }: StoragePreflightDependencies) {
  async function put(key: string, body: string, condition: { IfNoneMatch: '*' } | { IfMatch: string }) {
    try {
      const result = await s3.send(new PutObjectCommand({ Bucket: s3Settings.bucket, Key: key, Body: body, ...condition }));
      return { observed: 'accepted' as const, etag: result.ETag };
    } catch (error) {
      if (isPreconditionFailed(error)) return { observed: 'rejected' as const };
      return { observed: 'error' as const, detail: (error as Error).message };
    }
  }

  return {
    async checkConditionalWrites(): Promise<ConditionalWriteReport> {
      // A fresh key per attempt: a retried activity must not trip over its own earlier probe.
      const info = activityInfo();
      const owner = info.workflowExecution ? `${info.workflowExecution.workflowId}/${info.workflowExecution.runId}` : info.activityId;
      const key = `${s3Settings.prefix}preflight/${owner}/attempt-${info.attempt}`;
      const checks: ConditionalWriteCheck[] = [];
      const record = (name: string, expected: ConditionalWriteCheck['expected'], r: { observed: ConditionalWriteCheck['observed']; detail?: string }) =>
        checks.push({ name, expected, observed: r.observed, ...(r.detail ? { detail: r.detail } : {}) });

      const created = await put(key, 'v1', { IfNoneMatch: '*' });
      record('create an absent key with If-None-Match: *', 'accepted', created);
      const recreated = await put(key, 'v2', { IfNoneMatch: '*' });
      record('create the same key again with If-None-Match: *', 'rejected', recreated);
      const swapped = created.etag ? await put(key, 'v3', { IfMatch: created.etag }) : { observed: 'error' as const, detail: 'no ETag' };
      record('update with If-Match and the current ETag', 'accepted', swapped);
      const stale = created.etag ? await put(key, 'v4', { IfMatch: created.etag }) : { observed: 'error' as const, detail: 'no ETag' };
      record('update with If-Match and a stale ETag', 'rejected', stale);

      await s3.send(new DeleteObjectsCommand({ Bucket: s3Settings.bucket, Delete: { Objects: [{ Key: key }], Quiet: true } }));
      const ok = (c: ConditionalWriteCheck | undefined) => c !== undefined && c.observed === c.expected;
      return {
        endpoint: s3Settings.endpoint,
        bucket: s3Settings.bucket,
        createIfAbsentEnforced: ok(checks[0]) && ok(checks[1]),
        compareAndSwapEnforced: ok(checks[2]) && ok(checks[3]),
        checks,
      };
    },
  };
}

export type StoragePreflightActivities = ReturnType<typeof createStoragePreflightActivities>;
