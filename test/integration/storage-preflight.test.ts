import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PutObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createStoragePreflightActivities } from '../../activities/storage-preflight';
import { isPreconditionFailed } from '../../common/s3';
import { storagePreflight } from '../../workflows/storage-preflight';
import { DR_OPERATION, DR_OUTCOME, DR_SITE } from '../../workflows/search-attributes';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { useTestStack } from '../harness/stack';
import { createInProcessWorkers } from '../harness/workers';

describe('substrate: a workflow on the real Temporal server drives conditional writes on the real S3 server', () => {
  const { stack } = useTestStack();

  it('runs the storage preflight through a site task queue and reports enforcement and search attributes', async () => {
    const { orchestration, site } = await createInProcessWorkers(stack, 'primary', createStoragePreflightActivities({ s3: stack.s3Client, s3Settings: stack.s3Settings }));
    const workflowId = `storage-preflight/primary/${Date.now()}`;
    const report = await orchestration.runUntil(
      site.runUntil(
        stack.client.workflow.execute(storagePreflight, {
          taskQueue: ORCHESTRATION_TASK_QUEUE,
          workflowId,
          args: [{ site: 'primary' }],
        }),
      ),
    );

    assert.equal(report.createIfAbsentEnforced, true, JSON.stringify(report.checks));
    assert.equal(report.compareAndSwapEnforced, true, JSON.stringify(report.checks));
    assert.deepEqual(
      report.checks.map((c) => [c.expected, c.observed]),
      [
        ['accepted', 'accepted'],
        ['rejected', 'rejected'],
        ['accepted', 'accepted'],
        ['rejected', 'rejected'],
      ],
    );

    const description = await stack.client.workflow.getHandle(workflowId).describe();
    assert.equal(description.status.name, 'COMPLETED');
    assert.equal(description.typedSearchAttributes.get(DR_OPERATION), 'storage-preflight');
    assert.equal(description.typedSearchAttributes.get(DR_SITE), 'primary');
    assert.equal(description.typedSearchAttributes.get(DR_OUTCOME), 'passed');

    // The probe cleans up after itself.
    const left = await stack.s3Client.send(new ListObjectsV2Command({ Bucket: stack.s3Settings.bucket, Prefix: 'preflight/' }));
    assert.equal(left.KeyCount ?? 0, 0);
  });

  it('admits exactly one of many concurrent create-if-absent writers, every time', async () => {
    const { bucket } = stack.s3Settings;
    // SeaweedFS serialises contending conditional writes on one key with ~1 s lock waits, so
    // most rounds race two writers (the ownership case) and a few race eight.
    for (let round = 0; round < 43; round++) {
      const key = `race/${round}`;
      const writers = round < 40 ? 2 : 8;
      const outcomes = await Promise.all(
        Array.from({ length: writers }, (_, writer) =>
          stack.s3Client
            .send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `writer-${writer}`, IfNoneMatch: '*' }))
            .then(() => 'won' as const)
            .catch((error: unknown) => {
              if (isPreconditionFailed(error)) return 'refused' as const;
              throw error;
            }),
        ),
      );
      assert.equal(outcomes.filter((o) => o === 'won').length, 1, `round ${round}: ${outcomes.join(',')}`);
      const head = await stack.s3Client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      assert.ok(head.ETag);
    }
  });

  it('refuses requests without valid credentials', async () => {
    const response = await fetch(`${stack.s3Settings.endpoint}/${stack.s3Settings.bucket}/anonymous`, { method: 'PUT', body: 'x' });
    assert.equal(response.status, 403);
  });
});
