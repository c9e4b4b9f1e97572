/**
 * An operation whose input names its runbook (as the API starts every operation) against stub
 * sites (fast tier): the orchestration worker reads the stored version once per run and the
 * history holds only the name; a runbook carried whole (a request from before) is not read; a
 * named version that is not stored fails the operation before anything happens at a site.
 * The other operations' tests name their runbooks too (`storedRunbook`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { failover } from '../../workflows/failover';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { failoverInput, storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import { newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { runbookInHistory } from './operation-sweep';
import type { FailoverInput } from '../../workflows/failover-messages';

const t = useWorkflowEnv();

function startFailover(domain: string, input: FailoverInput) {
  return t.client.workflow.start(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `failover/${domain}/test`, args: [input] });
}

describe('an operation that names its runbook', () => {
  it('reads the stored version once, and its history holds only the name', async () => {
    const domain = newStubDomain(t, 'named', vmNames);
    const handle = await startFailover(domain, { ...failoverInput(domain, 'planned'), runbook: storedRunbook(t, domain) });
    assert.equal((await handle.result()).outcome, 'succeeded');
    assert.deepEqual(await runbookInHistory(handle), { input: { name: domain }, reads: [`read runbook ${domain} v1`] });
  });

  it('carried whole, as requests from before the runbook was named, it is run as it is, with nothing read', async () => {
    const domain = newStubDomain(t, 'carried', vmNames);
    const handle = await startFailover(domain, failoverInput(domain, 'planned'));
    assert.equal((await handle.result()).outcome, 'succeeded');
    const { input, reads } = await runbookInHistory(handle);
    assert.equal((input as { metadata: { name: string } }).metadata.name, domain);
    assert.deepEqual(reads, []);
  });

  it('a named version that is not stored fails the operation at once, before anything happens at a site', async () => {
    const domain = newStubDomain(t, 'unstored', vmNames);
    const handle = await startFailover(domain, { ...failoverInput(domain, 'planned'), runbook: { name: domain }, runbookVersion: 7 });
    const error = await handle.result().catch((e: unknown) => e);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ActivityFailure && error.cause.cause instanceof ApplicationFailure, String(error));
    assert.equal(error.cause.cause.type, 'UnknownRunbook');
    assert.match(error.cause.cause.message, new RegExp(`runbook ${domain} version 7 is not in the runbook store`));
    assert.deepEqual(t.sites.callsOf(domain), []);
  });
});
