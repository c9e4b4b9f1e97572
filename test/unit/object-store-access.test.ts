/** The object store's refusal of the worker's credentials, as the activities report it: not retryable, naming the bucket and key. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { classify } from '../../activities/datapath';
import { ObjectStore } from '../../datapath/object-store';

const settings = { endpoint: 'http://127.0.0.1:1', region: 'us-east-1', bucket: 'dr', prefix: 'site-a/', forcePathStyle: true, embedded: false };
const refusing = (name: string, status: number) =>
  new ObjectStore({ send: () => Promise.reject(new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: `${name} refused` })) } as unknown as S3Client, settings);

it('a 403 from any call, or a key refused inside a DeleteObjects answer, becomes a non-retryable ObjectStoreAccessDenied naming the bucket and key; other errors pass unchanged', async () => {
  for (const [name, call, key] of [
    ['AccessDenied', (store: ObjectStore) => store.put('site-a/domains/d/log/1/0', 'x'), 'site-a/domains/d/log/1/0'],
    ['InvalidAccessKeyId', (store: ObjectStore) => store.get('site-a/domains/d/manifest.json'), 'site-a/domains/d/manifest.json'],
    ['SignatureDoesNotMatch', (store: ObjectStore) => store.list('site-a/domains/d/log/'), 'site-a/domains/d/log/'],
    ['AccessDenied', (store: ObjectStore) => store.createIfAbsent('site-a/domains/d/ownership/2', '{}'), 'site-a/domains/d/ownership/2'],
  ] as const) {
    const error = await call(refusing(name, 403)).then(() => undefined, (e: unknown) => e);
    const classified = classify(error);
    assert.ok(classified instanceof ApplicationFailure, `${name}: ${String(error)}`);
    assert.equal(classified.type, 'ObjectStoreAccessDenied');
    assert.equal(classified.nonRetryable, true);
    assert.match(classified.message, new RegExp(`^the object store refused access to s3://dr/${key}: ${name}`));
  }
  const partlyRefusing = new ObjectStore({ send: () => Promise.resolve({ Errors: [{ Key: 'site-a/domains/d/log/1/7', Code: 'AccessDenied', Message: 'Access Denied.' }] }) } as unknown as S3Client, settings);
  const perKey = classify(await partlyRefusing.delete(['site-a/domains/d/log/1/6', 'site-a/domains/d/log/1/7']).then(() => undefined, (e: unknown) => e));
  assert.ok(perKey instanceof ApplicationFailure && perKey.type === 'ObjectStoreAccessDenied' && perKey.nonRetryable, `a key refused inside a DeleteObjects answer: ${String(perKey)}`);
  assert.match(perKey.message, /^the object store refused access to s3:\/\/dr\/site-a\/domains\/d\/log\/1\/7: AccessDenied \(Access Denied\.\)/);
  const unavailable = await refusing('SlowDown', 503).get('site-a/domains/d/manifest.json').then(() => undefined, (e: unknown) => e);
  assert.ok(unavailable instanceof S3ServiceException && classify(unavailable) === unavailable, 'a 503 stays retryable');
});
