import { defineUpdate } from '@temporalio/workflow';
import type { CompletionAccepted, CompletionRequest, ContinuousFailoverCarried, ContinuousFailoverInput } from './continuous-failover-messages';
import type { FollowStart } from './phases/follow';
import type { OriginalVms } from './phases/originals';

/**
 * As a continuous failover's input; the runbook is the one the domain failed over by: its primary is
 * where the original disks follow, its failback section places rebuilt VMs and powers on there.
 */
export type ContinuousFailbackInput = Omit<ContinuousFailoverInput, 'carried'> & { carried?: ContinuousFailbackCarried };

export type ContinuousFailbackCarried = ContinuousFailoverCarried & {
  /** What the original disks held when following began: the departure position, or older data. */
  start?: FollowStart;
  /** The original VMs found at the primary when it began. */
  originals: OriginalVms;
};

/** `POST /domains/{d}/failback` while a continuous failback runs: complete it, planned or forced. */
export const completeContinuousFailbackUpdate = defineUpdate<CompletionAccepted, [CompletionRequest]>('completeContinuousFailback');
