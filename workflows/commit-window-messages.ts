import { defineUpdate } from '@temporalio/workflow';

/**
 * A failover that stays open after it succeeded: until the window ends, the operator may commit
 * it or roll it back (a planned failback by the same runbook); when it ends, `then` is done.
 */
export interface CommitPolicy {
  /** How long the window stays open after the failover succeeded, in milliseconds. */
  afterMs: number;
  then: CommitDecision;
}

export type CommitDecision = 'commit' | 'rollback';

export interface CommitRequest {
  decision: CommitDecision;
  requestedBy: string;
}

export interface CommitWindowStatus {
  state: 'open' | 'committed' | 'rolling back' | 'rolled back' | 'rollback failed';
  /** When the policy decides by itself. */
  deadline: number;
  then: CommitDecision;
  decision?: CommitDecision;
  /** The operator who decided, or `the commit policy` when the window ran out. */
  decidedBy?: string;
  decidedAt?: number;
  /** A rollback: the failback workflow and, once it ended, its outcome and measures. */
  rollback?: { workflowId: string; outcome?: string; rtoMs?: number; rpoMs?: number; rehydration?: { kind: 'delta' | 'full'; bytesWritten: number; why?: string }; failure?: string };
}

/** `POST /operations/{id}/commit` and `/rollback` while a failover's commit window is open. */
export const decideCommitUpdate = defineUpdate<CommitWindowStatus, [CommitRequest]>('decideCommit');
/** The failure type of a commit or rollback the workflow refuses (no window open, already decided). */
export const COMMIT_REFUSED = 'CommitRefused';

/** The window in words, for the Web UI's current details and refusals. */
export function describeCommitWindow(status: CommitWindowStatus): string {
  const at = (ms: number) => new Date(ms).toISOString();
  switch (status.state) {
    case 'open':
      return `open until ${at(status.deadline)}, then ${status.then}; POST /operations/{id}/commit or /rollback decides now`;
    case 'committed':
      return `committed by ${status.decidedBy} at ${at(status.decidedAt ?? status.deadline)}`;
    default:
      return `${status.state} (decided by ${status.decidedBy} at ${at(status.decidedAt ?? status.deadline)})${status.rollback ? `: ${status.rollback.workflowId}${status.rollback.failure ? `, ${status.rollback.failure}` : ''}` : ''}`;
  }
}
