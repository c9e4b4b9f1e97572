import { defineQuery } from '@temporalio/workflow';
import type { DomainHoldings } from '../activities/permanent-failover';
import type { SideCopyRecord } from '../datapath/side-copy';
import type { CommitWindowStatus } from './commit-window-messages';
import type { Placement } from '../sites/provider';
import type { CompensationOutcome } from './compensation';
import type { OperationKind } from './workflow-ids';
import type { DrillReport, ResourceCounts } from './drill-messages';
import type { RestoreReport } from './restore-messages';
import type { OperationVmState } from './vm-state';

/**
 * How an operation ended; `running` until it has. `succeeded-with-failures`: it finished, but
 * runbook steps or VMs under the `continue` policy (or skipped by an operator) failed, or a step
 * past its goal did (`Operation.stepPastGoal`). The same
 * words in reports, the DrOutcome search attribute and the domain's operations desk.
 */
export type OperationOutcome = 'running' | 'succeeded' | 'succeeded-with-failures' | 'aborted' | 'cancelled';
/** Planned: the site the domain leaves takes part (shutdown, drain, handover). Forced: it is assumed lost and fenced. */
export type HandoverType = 'planned' | 'forced';

export type StepState = 'running' | 'done' | 'failed';

export interface OperationStep {
  name: string;
  state: StepState;
  startedAt: number;
  endedAt?: number;
  durationMs?: number;
  detail?: string;
  /** The stage the step belongs to when an operation has more than one (a continuous failover's completion). */
  stage?: string;
}

/**
 * A continuous operation's target disks as they follow the replication log: how far behind the
 * end of the log they are, where they stand, and what the recovery site holds.
 */
export interface FollowingStatus {
  mode: string;
  vms: number;
  disks: number;
  lag: { ms: number; bytes: number; segments: number };
  /** The newest write on the target disks: acknowledgement time and journal sequence. */
  appliedUpTo?: { timestamp: number; lastSequence: number; epoch: number };
  /** Why following stops short of the end of the log (an unfinished disk sync or resync). */
  heldAt?: string;
  /** Since when the recovery site holds a recoverable copy (the first catch-up). */
  recoverableSince?: number;
  followerRuns: number;
  segmentsApplied: number;
  bytesWritten: number;
  bytesRead: { base: number; log: number };
  /** Continue-as-new count: the operation may run for months. */
  generation: number;
}

export interface OperationProgress {
  operation: OperationKind;
  domain: string;
  type?: HandoverType;
  primarySite: string;
  /** Absent for an operation by a runbook without a recovery site. */
  recoverySite?: string;
  runbook: { name: string; version: number };
  requestedBy: string;
  outcome: OperationOutcome;
  phase: string;
  steps: OperationStep[];
  vms: Array<{ name: string; state: OperationVmState }>;
  bytesRehydrated: number;
  /** A continuous operation: its target disks following the log. */
  following?: FollowingStatus;
  /** Stages after the first (a continuous failover's completion), with when each was declared. */
  stages?: Array<{ name: string; declaredAt: number }>;
  /** A failover kept open for a commit or a rollback. */
  commitWindow?: CommitWindowStatus;
  /** Ownership of the domain once this operation holds it. */
  epoch?: number;
  recoveryPoint?: { description: string; dataFrom: number; lastJournalSequence?: number };
  /** What the operation created at the site it works at, counted by kind: each is recorded by name in the workflow before it is created (a drill's cleanup removes exactly those). */
  resources?: ResourceCounts;
  declaredAt: number;
  startedAt: number;
  /** As of the workflow's latest event. */
  elapsedMs: number;
  rtoSoFarMs: number;
}

export interface OperationReport extends Omit<OperationProgress, 'phase' | 'elapsedMs' | 'rtoSoFarMs'> {
  endedAt: number;
  /** Declaration until every VM the plan starts was running at its new site. */
  rtoMs?: number;
  /** A continuous failover's completion: the log tail it applied after ownership moved. */
  tail?: { segments: number; bytesRead: { base: number; log: number }; bytesWritten: number };
  /** Declaration minus the instant the recovered data is from (0: nothing acknowledged was lost). */
  rpoMs?: number;
  /** A resolved split-brain: where the stale copies' diverged writes were kept (readable with datapath/side-copy.ts). */
  sideCopy?: Omit<SideCopyRecord, 'segments'>;
  /** A failback: only the changes since the failover onto the original disks (delta), or all of them (full), and why. */
  rehydration?: { kind: 'delta' | 'full'; bytesWritten: number; why?: string };
  /** A failback: the VMs it rebuilt at the primary because they were no longer registered there, where and on which networks. */
  rebuilt?: Array<{ vm: string; placement: Placement; networks: string[]; diskIds: string[] }>;
  /** A permanent failover: the runbook version written for the domain's new direction. */
  newDirection?: { runbook: { name: string; version: number }; primary: string; recovery?: string };
  /** A permanent failover: the domain's removal from the retired primary, done or waiting for the site to return. */
  retirement?: Retirement;
  /** A drill: passed or failed, its checks, how long it was kept, and its cleanup. */
  drill?: DrillReport;
  /** A restore at the owning site: the point saved before it, the epochs, each VM's result. */
  restore?: RestoreReport;
  failure?: string;
  compensation?: CompensationOutcome;
  /** The operation the domain's desk starts next, as this one asked (a failover followed by a continuous failback). */
  followedBy?: FollowUp;
}

/** An operation an operation asks its desk to start as soon as it has succeeded, by the same requester. */
export interface FollowUp {
  operation: OperationKind;
  summary: string;
  input: unknown;
}

/** What a permanent failover did about the old primary: removed the domain there, or left that to a workflow that waits for the site. */
export interface Retirement {
  site: string;
  /** The workflow that removes the domain there (`retire/<domain>/<site>`). */
  workflowId: string;
  /** `failed`: the removal workflow failed (e.g. the site owns the domain again): nothing more is removed. */
  state: 'removed' | 'pending' | 'failed';
  /** Removed: the VMs and disks it removed. */
  removed?: DomainHoldings;
  /** Pending: why (the site did not answer, or the removal outlasted the wait); failed: the failure. */
  why?: string;
}

/** Answered by every operation while it runs (query name kept from the first operation, failover). */
export const operationProgressQuery = defineQuery<OperationProgress>('failoverProgress');
/** The failure type of an operation that aborted; its details carry the report (what was undone, what remains). */
export const OPERATION_ABORTED = 'OperationAborted';
