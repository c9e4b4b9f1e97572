/**
 * The protect workflow against stub sites (fast tier) while the object store refuses the site
 * worker's credentials: it neither ends nor retries at the activity's pace; it shows the refusal,
 * waits, tries the same run again, and clears the refusal once a run succeeds.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { protect, protectStatusQuery, stopProtectionSignal } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';

const t = useWorkflowEnv();
const ACCESS_RETRY_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('records a refused replicator run in the status and the details, tries again after accessRetryMs, and resumes once the store admits it', async () => {
  const domain = newStubDomain(t, 'protect refused', vmNames);
  const refusal = `the object store refused access to s3://dr/domains/${domain}/log/1/0: AccessDenied (Access Denied.); check the site worker's S3 credentials`;
  let refusing = true;
  const refusedAt: number[] = [];
  t.sites.intercept(domain, (call, proceed) => {
    if (call.name !== 'replicateJournal' || !refusing) return proceed();
    refusedAt.push(Date.now());
    throw ApplicationFailure.nonRetryable(refusal, 'ObjectStoreAccessDenied');
  });
  const handle = await t.client.workflow.start(protect, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: protectionWorkflowId(domain, PRIMARY, 1),
    args: [{ domain, site: PRIMARY, vms: vmNames(domain), protectionWindowMs: 3_600_000, restorePointIntervalMs: 60_000, replicatorRunMs: 200, accessRetryMs: ACCESS_RETRY_MS }],
  });
  for (let waited = 0; refusedAt.length < 3; waited += 100) {
    assert.ok(waited < 20_000, `the refused run was tried ${refusedAt.length} times`);
    await sleep(100);
  }
  const failing = await handle.query(protectStatusQuery);
  assert.equal(failing.failing?.reason, 'ObjectStoreAccessDenied');
  assert.equal(failing.failing.message, refusal, 'the status names the bucket and key');
  assert.ok(failing.failing.retryAt > failing.failing.since, JSON.stringify(failing.failing));
  for (let i = 1; i < refusedAt.length; i++) assert.ok(refusedAt[i] - refusedAt[i - 1] >= ACCESS_RETRY_MS - 100, `tries ${refusedAt.join(', ')} are accessRetryMs apart, not retried at once`);
  const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  assert.match(currentDetails ?? '', /Failing since .*ObjectStoreAccessDenied.*s3:\/\/dr\/domains/s, 'the Web UI details say why');
  const calls = t.sites.calls.filter((c) => c.domain === domain && c.name === 'replicateJournal');
  assert.deepEqual(new Set(calls.map((c) => c.attempt)), new Set([1]), 'each refused run is tried once by the activity, not retried at its pace');

  refusing = false;
  for (let waited = 0; ; waited += 100) {
    const status = await handle.query(protectStatusQuery);
    if (status.failing === undefined && status.mode === 'log') break;
    assert.ok(waited < 10_000, `protection did not resume: ${JSON.stringify(status.failing)}`);
    await sleep(100);
  }
  await handle.signal(stopProtectionSignal);
  const ended = await handle.result();
  assert.equal(ended.failing, undefined);
});

it('waits out a refusal met while following the domain\'s membership (its manifest is written then) instead of ending protection', async () => {
  const domain = newStubDomain(t, 'protect refused membership', vmNames);
  const refusal = `the object store refused access to s3://dr/domains/${domain}/manifest.json: AccessDenied (Access Denied.); check the site worker's S3 credentials`;
  let refusing = false;
  let refused = 0;
  t.sites.intercept(domain, (call, proceed) => {
    if (call.name !== 'refreshMembership' || !refusing) return proceed();
    refused++;
    throw ApplicationFailure.nonRetryable(refusal, 'ObjectStoreAccessDenied');
  });
  const handle = await t.client.workflow.start(protect, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: protectionWorkflowId(domain, PRIMARY, 1),
    args: [{ domain, site: PRIMARY, vms: vmNames(domain), protectionWindowMs: 3_600_000, restorePointIntervalMs: 60_000, replicatorRunMs: 200, accessRetryMs: ACCESS_RETRY_MS }],
  });
  for (let waited = 0; (await handle.query(protectStatusQuery)).mode !== 'log'; waited += 100) {
    assert.ok(waited < 20_000, 'protection reached log mode');
    await sleep(100);
  }
  refusing = true;
  for (let waited = 0; refused < 2; waited += 100) {
    assert.ok(waited < 20_000, `the refused membership refresh was tried ${refused} times`);
    await sleep(100);
  }
  const failing = await handle.query(protectStatusQuery);
  assert.equal(failing.failing?.reason, 'ObjectStoreAccessDenied');
  assert.equal(failing.failing.message, refusal);

  refusing = false;
  for (let waited = 0; ; waited += 100) {
    const status = await handle.query(protectStatusQuery);
    if (status.failing === undefined) break;
    assert.ok(waited < 10_000, `protection did not resume: ${JSON.stringify(status.failing)}`);
    await sleep(100);
  }
  await handle.signal(stopProtectionSignal);
  assert.equal((await handle.result()).failing, undefined, 'protection ended by its stop signal, not by the refusal');
});
