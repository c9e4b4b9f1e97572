import { HeadBucketCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { S3Settings } from './config';
import { describeError, OperatorError } from './errors';

/** How long a request may go without an answer, how often it is tried, and how many may be in flight. */
export interface S3Patience {
  requestTimeoutMs: number;
  maxAttempts: number;
  /**
   * Connections to the store at most. The request timeout counts the wait for a free one, so a pool
   * smaller than the requests a process makes at once turns a busy process into timeouts of a store that answers.
   */
  maxSockets: number;
}

/** Workers move segments and base chunks: a minute of silence before a request is given up, three tries. */
export const WORKER_S3_PATIENCE: S3Patience = { requestTimeoutMs: 60_000, maxAttempts: 3, maxSockets: 50 };
/**
 * The API answers people: a stalled store must turn into an answer within seconds, not a hang. Its
 * pool fits 200 clients at once, each call reading its token and writing its audit record besides its own requests.
 */
export const API_S3_PATIENCE: S3Patience = { requestTimeoutMs: 3_000, maxAttempts: 2, maxSockets: 512 };

export function createS3Client(s3: S3Settings, patience: S3Patience = WORKER_S3_PATIENCE): S3Client {
  // The SDK version is pinned and supports Node 20; its notice about future releases is noise in every log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials ? { credentials: s3.credentials } : {}),
    // Fail fast on a dead endpoint instead of hanging for the socket default. Without
    // throwOnRequestTimeout the handler only logs a warning and a stalled server hangs the request forever.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: patience.requestTimeoutMs, throwOnRequestTimeout: true, httpAgent: { maxSockets: patience.maxSockets } },
    maxAttempts: patience.maxAttempts,
    // Answers are checked where a request asks for it (ChecksumMode), not always: log segments and
    // base chunks carry their own SHA-256 (ObjectStore.getFramed); every other read asks.
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The store did not answer (refused, timed out, reset) or answered it is failing (5xx): nothing is wrong with the request. */
export function isS3Unavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return false;
  const { name, code } = error as { name?: string; code?: string };
  const status = (error as { $metadata: { httpStatusCode?: number } }).$metadata.httpStatusCode;
  return (status !== undefined && status >= 500) || name === 'TimeoutError' || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH'].includes(code ?? '');
}

/** S3's codes for refused credentials, as an error's name or a DeleteObjects answer's per-key code. */
export const ACCESS_DENIED_CODES: ReadonlySet<string> = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch']);

/** The store refuses the credentials (revoked, rotated, a policy changed): retrying with the same ones cannot help. */
export function isAccessDenied(error: unknown): boolean {
  return error instanceof S3ServiceException && (ACCESS_DENIED_CODES.has(error.name) || error.$metadata.httpStatusCode === 403);
}

/** True when the error is S3's answer to a failed If-None-Match / If-Match precondition. */
export function isPreconditionFailed(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'PreconditionFailed' || error.$metadata.httpStatusCode === 412)
  );
}

/** A concurrent conflicting conditional write (AWS answers 409); the caller may retry. */
export function isConditionalConflict(error: unknown): boolean {
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 409;
}

export function isNotFound(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NoSuchKey' || error.name === 'NotFound' || error.$metadata.httpStatusCode === 404)
  );
}

/** Checks that the bucket answers with these credentials; the error names the endpoint and bucket. */
export async function checkS3Reachable(client: S3Client, s3: S3Settings): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
  } catch (error) {
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    const reason =
      status === 404
        ? `bucket "${s3.bucket}" does not exist`
        : status === 403
          ? `access to bucket "${s3.bucket}" denied (check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY)`
          : describeError(error);
    throw new OperatorError(`S3 at ${s3.endpoint} is unreachable: ${reason}`, { cause: error });
  }
}
