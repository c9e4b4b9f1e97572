/**
 * A failover's commit window against stub sites (fast tier): the policy decides when the window
 * ends (commit, or a rollback by planned failback), an operator decides before it ends, a second
 * decision is refused, and a cancellation during the window keeps the failover.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { COMMIT_REFUSED, decideCommitUpdate, type CommitPolicy } from '../../workflows/commit-window-messages';
import { failover } from '../../workflows/failover';
import type { HandoverType } from '../../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { failoverInput, storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { workflowTaskTimeoutSeconds } from '../harness/histories';
import { cancelsRequestedBy, progressOf } from './operation-sweep';

const t = useWorkflowEnv();

function startFailover(domain: string, commit: CommitPolicy, type: HandoverType = 'planned', workflowTaskTimeout?: string): Promise<WorkflowHandle<typeof failover>> {
  return t.client.workflow.start(failover, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: `failover/${domain}/test`,
    ...(workflowTaskTimeout ? { workflowTaskTimeout } : {}),
    // Named, as the API starts it: a rollback's failback names the runbook too.
    args: [{ ...failoverInput(domain, type), runbook: storedRunbook(t, domain), commit }],
  });
}

async function windowOpen(handle: WorkflowHandle): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await progressOf(handle))?.commitWindow?.state !== 'open') {
    if (Date.now() > deadline) throw new Error('the commit window never opened');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The domain is back where it started: owned by the primary, its VMs on, nothing of it at the recovery site. */
function assertRolledBack(domain: string): void {
  assert.equal(t.sites.domain(domain).owner, PRIMARY);
  assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
  assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain).vms, []);
  for (const [name, vm] of t.sites.inventoryOf(PRIMARY, domain).vms) assert.equal(vm.powerState, 'poweredOn', name);
}

describe('failover commit window (stub sites)', () => {
  it('commits by itself when the window ends with then: commit', async () => {
    const domain = newStubDomain(t, 'commit-policy', vmNames);
    const handle = await startFailover(domain, { afterMs: 1_500, then: 'commit' });
    await windowOpen(handle);
    assert.equal(t.sites.domain(domain).status?.mode, 'Running in Failover', 'the failover is done while the window is open');
    const report = await handle.result();
    assert.equal(report.commitWindow?.state, 'committed');
    assert.equal(report.commitWindow?.decidedBy, 'the commit policy');
    assert.ok(report.commitWindow.decidedAt! >= report.commitWindow.deadline, 'not before the deadline');
    assert.equal(t.sites.domain(domain).owner, RECOVERY);
  });

  it('rolls back by itself when the window ends with then: rollback, by a planned failback that takes the delta and has the failover\'s task timeout', async () => {
    const domain = newStubDomain(t, 'rollback-policy', vmNames);
    // As the API starts the failover of a domain of 10,000 VMs (workflows/task-timeout.ts).
    const handle = await startFailover(domain, { afterMs: 1_000, then: 'rollback' }, 'planned', '40 seconds');
    const report = await handle.result();
    assert.equal(report.commitWindow?.state, 'rolled back', JSON.stringify(report.commitWindow));
    assert.match(report.commitWindow.rollback?.workflowId ?? '', new RegExp(`^failback/${domain}/`));
    assert.equal(await workflowTaskTimeoutSeconds(t.client, report.commitWindow.rollback!.workflowId), 40, 'the rollback replays as much as the failover, and has as long for it');
    assert.equal(report.commitWindow.rollback?.rpoMs, 0, 'a planned failover rolls back with nothing lost');
    assert.equal(report.commitWindow.rollback?.rehydration?.kind, 'delta');
    assertRolledBack(domain);
  });

  it('rolls back at once when an operator asks before the window ends, and refuses a second decision', async () => {
    const domain = newStubDomain(t, 'rollback-asked', vmNames);
    const handle = await startFailover(domain, { afterMs: 10 * 60_000, then: 'commit' });
    await windowOpen(handle);
    const accepted = await handle.executeUpdate(decideCommitUpdate, { args: [{ decision: 'rollback', requestedBy: 'dr-lead' }] });
    assert.equal(accepted.state, 'open', 'accepted while the window was open');
    const refused = await handle.executeUpdate(decideCommitUpdate, { args: [{ decision: 'commit', requestedBy: 'someone-else' }] }).catch((e: unknown) => e);
    assert.ok(refused instanceof WorkflowUpdateFailedError && refused.cause instanceof ApplicationFailure && refused.cause.type === COMMIT_REFUSED, String(refused));
    const report = await handle.result();
    assert.equal(report.commitWindow?.decidedBy, 'dr-lead');
    assert.equal(report.commitWindow.state, 'rolled back');
    assertRolledBack(domain);
  });

  it('ends at once when an operator commits, and a cancellation during the window keeps the failover', async () => {
    const committed = newStubDomain(t, 'commit-asked', vmNames);
    const first = await startFailover(committed, { afterMs: 10 * 60_000, then: 'rollback' });
    await windowOpen(first);
    await first.executeUpdate(decideCommitUpdate, { args: [{ decision: 'commit', requestedBy: 'dr-lead' }] });
    assert.equal((await first.result()).commitWindow?.state, 'committed');

    const cancelled = newStubDomain(t, 'commit-cancelled', vmNames);
    const second = await startFailover(cancelled, { afterMs: 10 * 60_000, then: 'rollback' }, 'forced');
    await windowOpen(second);
    await second.cancel();
    const report = await second.result();
    assert.equal(report.commitWindow?.state, 'committed');
    assert.equal(report.commitWindow.decidedBy, 'the cancellation of the operation');
    assert.equal(t.sites.domain(cancelled).owner, RECOVERY);
    assert.equal(t.sites.domain(cancelled).status?.mode, 'Running in Failover');
    assert.ok(!(await cancelsRequestedBy(second)).includes(protectionWorkflowId(cancelled, RECOVERY, 2)), 'the cancel does not reach the protection resumed at the recovery site');
  });
});
