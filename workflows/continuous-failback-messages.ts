import { defineUpdate } from '@temporalio/workflow';
import type { Runbook } from '../runbooks/schema';
import type { FollowCursor } from '../datapath/follower';
import type { CompletionAccepted, CompletionRequest } from './continuous-failover-messages';
import type { OperationProgress, FollowingStatus } from './operation-messages';
import type { FollowedVm, FollowStart } from './phases/follow';
import type { OriginalVms } from './phases/originals';

export interface ContinuousFailbackInput {
  domain: string;
  /** The runbook the domain failed over by: its primary is where the original disks follow, its failback section places rebuilt VMs and powers on. */
  runbook: Runbook;
  runbookVersion: number;
  requestedBy: string;
  /** When the operator (or the failover that asked for it) started it. */
  declaredAt: number;
  /** Follower runs per workflow run before continue-as-new (as well as when Temporal suggests it); tests set it small. */
  followerRunsPerExecution?: number;
  /** Carried across continue-as-new. */
  carried?: ContinuousFailbackCarried;
}

export interface ContinuousFailbackCarried {
  progress: OperationProgress;
  rocva: { name: string };
  vms: FollowedVm[];
  cursor?: FollowCursor;
  start?: FollowStart;
  status: FollowingStatus;
  /** The original VMs found at the primary when it began. */
  originals: OriginalVms;
}

/** `POST /domains/{d}/failback` while a continuous failback runs: complete it, planned or forced. */
export const completeContinuousFailbackUpdate = defineUpdate<CompletionAccepted, [CompletionRequest]>('completeContinuousFailback');
