import { ApplicationFailure, condition, executeChild, isCancellation, ParentClosePolicy, setHandler, workflowInfo } from '@temporalio/workflow';
import { workflowNow } from '../clock';
import { COMMIT_REFUSED, decideCommitUpdate, describeCommitWindow, type CommitPolicy, type CommitRequest, type CommitWindowStatus } from '../commit-window-messages';
import type { failback } from '../failback';
import type { FailbackInput } from '../failback-messages';
import { failureMessage } from '../failure-policy';
import type { Operation } from '../operation';
import type { OperationReport } from '../operation-messages';
import { operationWorkflowId } from '../workflow-ids';

/**
 * After a failover succeeded, its commit window: the operation stays open (the domain's desk
 * refuses other operations meanwhile) until an operator commits or rolls back, or the window
 * ends and the policy decides. The deadline is a Temporal timer, so it holds across worker and
 * server restarts. A rollback is a planned failback by the same runbook, run as a child workflow
 * with an id of its own; it takes only the changes since the failover when the primary's disks
 * are intact. A cancellation during the window ends it and keeps the failover.
 */
export async function holdCommitWindow(op: Operation, policy: CommitPolicy, report: OperationReport): Promise<OperationReport> {
  const status: CommitWindowStatus = { state: 'open', deadline: workflowNow() + policy.afterMs, then: policy.then };
  op.commitWindow(status);
  let request: CommitRequest | undefined;
  setHandler(
    decideCommitUpdate,
    (decided) => {
      request = decided;
      return Promise.resolve(status);
    },
    {
      validator: (decided: CommitRequest) => {
        if (request) throw ApplicationFailure.create({ type: COMMIT_REFUSED, message: `the ${op.title()} is already being decided: ${request.decision}, requested by ${request.requestedBy}` });
        if (status.state !== 'open') throw ApplicationFailure.create({ type: COMMIT_REFUSED, message: `the commit window of ${op.title()} is closed: ${describeCommitWindow(status)}` });
        if (decided.decision !== 'commit' && decided.decision !== 'rollback') throw ApplicationFailure.create({ type: COMMIT_REFUSED, message: `unknown decision "${String(decided.decision)}"` });
      },
    },
  );
  let decision: CommitRequest;
  try {
    const decidedInTime = await condition(() => request !== undefined, policy.afterMs);
    decision = decidedInTime && request ? { ...request } : { decision: policy.then, requestedBy: 'the commit policy' };
  } catch (error) {
    if (!isCancellation(error)) throw error;
    decision = { decision: 'commit', requestedBy: 'the cancellation of the operation' };
  }
  Object.assign(status, { decision: decision.decision, decidedBy: decision.requestedBy, decidedAt: workflowNow() });
  if (decision.decision === 'commit') {
    status.state = 'committed';
  } else {
    status.state = 'rolling back';
    op.commitWindow(status);
    await rollBack(op, status, decision.requestedBy);
  }
  op.commitWindow(status);
  return { ...report, commitWindow: status, endedAt: workflowNow() };
}

async function rollBack(op: Operation, status: CommitWindowStatus, requestedBy: string): Promise<void> {
  const declaredAt = workflowNow();
  const workflowId = operationWorkflowId('failback', op.domain, declaredAt);
  status.rollback = { workflowId };
  const input: FailbackInput = { domain: op.domain, type: 'planned', runbook: { name: op.runbook.metadata.name }, runbookVersion: op.runbookVersion, requestedBy, declaredAt };
  try {
    const rolledBack = await executeChild<typeof failback>('failback', {
      workflowId,
      args: [input],
      // Terminating the failover asks the rollback to stop, and it undoes what it did.
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      // It replays as much as the failover it undoes.
      workflowTaskTimeout: workflowInfo().taskTimeoutMs,
      staticSummary: `Rollback of the ${op.title()}: planned failback of ${op.domain} from ${op.to} to ${op.from}, requested by ${requestedBy}`,
    });
    status.state = 'rolled back';
    Object.assign(status.rollback, {
      outcome: rolledBack.outcome,
      ...(rolledBack.rtoMs !== undefined ? { rtoMs: rolledBack.rtoMs } : {}),
      ...(rolledBack.rpoMs !== undefined ? { rpoMs: rolledBack.rpoMs } : {}),
      ...(rolledBack.rehydration ? { rehydration: rolledBack.rehydration } : {}),
    });
  } catch (error) {
    if (isCancellation(error)) throw error;
    status.state = 'rollback failed';
    Object.assign(status.rollback, { outcome: 'aborted', failure: failureMessage(error) });
  }
}
