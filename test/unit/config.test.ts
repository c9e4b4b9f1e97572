import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSettings } from '../../common/config';
import { OperatorError } from '../../common/errors';

describe('configuration from the environment', () => {
  it('uses the embedded servers on loopback when no address is given', () => {
    const s = loadSettings({});
    assert.equal(s.temporal.embedded, true);
    assert.equal(s.temporal.address, '127.0.0.1:7233');
    assert.equal(s.s3.embedded, true);
    assert.equal(s.s3.endpoint, 'http://127.0.0.1:8333');
    assert.equal(s.s3.bucket, 'dr-storage');
  });

  it('points at an external Temporal cluster and S3 store', () => {
    const s = loadSettings({
      TEMPORAL_ADDRESS: 'temporal.example.com:7233',
      TEMPORAL_NAMESPACE: 'dr',
      TEMPORAL_API_KEY: 'k',
      S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com',
      S3_REGION: 'eu-west-1',
      S3_BUCKET: 'acme-dr',
      S3_ACCESS_KEY_ID: 'AKIA',
      S3_SECRET_ACCESS_KEY: 'secret',
    });
    assert.equal(s.temporal.embedded, false);
    assert.equal(s.temporal.namespace, 'dr');
    assert.equal(s.temporal.apiKey, 'k');
    assert.equal(s.s3.embedded, false);
    assert.deepEqual(s.s3.credentials, { accessKeyId: 'AKIA', secretAccessKey: 'secret' });
  });

  it('reports every invalid variable by name, without echoing secrets', () => {
    assert.throws(
      () => loadSettings({ TEMPORAL_ADDRESS: 'no-port', S3_ENDPOINT: 'ftp://x', S3_BUCKET: 'Bad_Bucket', DR_API_PORT: '70000' }),
      (e: unknown) => {
        assert.ok(e instanceof OperatorError);
        for (const name of ['TEMPORAL_ADDRESS', 'S3_ENDPOINT', 'S3_BUCKET', 'DR_API_PORT']) assert.match(e.message, new RegExp(name));
        assert.match(e.message, /got "no-port"/);
        return true;
      },
    );
  });

  it('takes a worker\'s capacity from DR_WORKER_*, leaving what is unset to the SDK, and names a bad value', () => {
    assert.deepEqual(loadSettings({}).workerCapacity, {});
    assert.deepEqual(loadSettings({ DR_WORKER_MAX_CACHED_WORKFLOWS: '2000', DR_WORKER_MAX_CONCURRENT_ACTIVITIES: '50' }).workerCapacity, {
      maxCachedWorkflows: 2000,
      maxConcurrentActivityTaskExecutions: 50,
    });
    assert.throws(() => loadSettings({ DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '1', DR_WORKER_MAX_CONCURRENT_ACTIVITIES: 'many' }), (e: unknown) => {
      assert.ok(e instanceof OperatorError);
      assert.match(e.message, /DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: .*got "1"/);
      assert.match(e.message, /DR_WORKER_MAX_CONCURRENT_ACTIVITIES: .*got "many"/);
      return true;
    });
  });

  it("takes a site worker's memory bounds (staging ahead, rehydrations at once), leaving the defaults when unset, and names a bad value", () => {
    const unset = loadSettings({});
    assert.deepEqual([unset.segmentWriting, unset.rehydrationsAtOnce], [{}, undefined]);
    const set = loadSettings({ DR_REPLICATION_STAGING_MIB: '16', DR_REHYDRATIONS_AT_ONCE: '2', DR_SEGMENT_INLINE_MAX_BYTES: '4096' });
    assert.deepEqual(set.segmentWriting, { inlineMaxBytes: 4096, stagingAheadBytes: 16 * 1024 * 1024 });
    assert.equal(set.rehydrationsAtOnce, 2);
    assert.equal(loadSettings({ DR_REPLICATION_STAGING_MIB: '0' }).segmentWriting.stagingAheadBytes, 0, 'nothing staged ahead');
    assert.throws(() => loadSettings({ DR_REHYDRATIONS_AT_ONCE: '0', DR_REPLICATION_STAGING_MIB: '-1' }), (e: unknown) => {
      assert.ok(e instanceof OperatorError);
      assert.match(e.message, /DR_REHYDRATIONS_AT_ONCE: .*got "0"/);
      assert.match(e.message, /DR_REPLICATION_STAGING_MIB: .*got "-1"/);
      return true;
    });
  });

  it('refuses half-configured credentials', () => {
    assert.throws(() => loadSettings({ S3_ACCESS_KEY_ID: 'AKIA' }), /S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together/);
    assert.throws(() => loadSettings({ TEMPORAL_API_KEY: 'k' }), /need TEMPORAL_ADDRESS/);
  });
});
