import { defineUpdate } from '@temporalio/workflow';
import type { Runbook } from '../runbooks/schema';
import type { FollowCursor } from '../datapath/follower';
import type { FollowedVm } from './phases/follow';
import type { RunbookInInput } from './phases/runbook';
import type { FollowingStatus, HandoverType, OperationProgress } from './operation-messages';

export interface ContinuousFailoverInput {
  domain: string;
  /** Its name (each run reads it: `phases/runbook.ts`), or the validated runbook as stored: placement of the target disks, and the completion's plan unless it names another version. */
  runbook: RunbookInInput;
  runbookVersion: number;
  requestedBy: string;
  /** When the operator asked for it. */
  declaredAt: number;
  /** Follower runs per workflow run before continue-as-new (as well as when Temporal suggests it); tests set it small. */
  followerRunsPerExecution?: number;
  /** Carried across continue-as-new. */
  carried?: ContinuousFailoverCarried;
}

export interface ContinuousFailoverCarried {
  progress: OperationProgress;
  rocva: { name: string };
  vms: FollowedVm[];
  cursor?: FollowCursor;
  status: FollowingStatus;
}

/** `POST /domains/{d}/failover` while a continuous failover runs: complete it, planned or forced. */
export interface CompletionRequest {
  type: HandoverType;
  /** Forced only: the domain's name, confirming that the primary is lost. */
  forcedConfirmation?: string;
  requestedBy: string;
  /** When the disaster (or the move) was declared: the completion's RTO and RPO count from here. */
  declaredAt: number;
  /** The runbook version the completion registers and powers on by; absent: the one the continuous failover started with. */
  runbook?: { runbook: Runbook; version: number };
}

export interface CompletionAccepted {
  workflowId: string;
  type: HandoverType;
  requestedBy: string;
}

export const completeContinuousFailoverUpdate = defineUpdate<CompletionAccepted, [CompletionRequest]>('completeContinuousFailover');
/** The failure type of a completion the workflow refuses (already completing, confirmation missing). */
export const COMPLETION_REFUSED = 'CompletionRefused';
