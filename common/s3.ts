import { HeadBucketCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { S3Settings } from './config';
import { describeError, OperatorError } from './errors';

export function createS3Client(s3: S3Settings): S3Client {
  // The SDK version is pinned and supports Node 20; its notice about future releases is noise in every log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials ? { credentials: s3.credentials } : {}),
    // Fail fast on a dead endpoint instead of hanging for the socket default.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 60_000 },
    maxAttempts: 3,
  });
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
