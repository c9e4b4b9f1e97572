import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { DatapathActivities } from '../../activities/datapath';
import type { DomainStatusActivities } from '../../activities/domain-status';
import type { FailbackDataActivities } from '../../activities/failback-data';
import type { HandoverActivities } from '../../activities/handover';
import type { PermanentFailoverActivities } from '../../activities/permanent-failover';
import type { PrimarySiteActivities, RecoverySiteActivities, ShutdownForHandoverInput } from '../../activities/recovery-site';
import type { RestoreActivities } from '../../activities/restore';
import type { SplitBrainActivities } from '../../activities/split-brain';
import type { CheckBatchActivities, VmPowerBatchActivities } from '../../activities/vm-batches';
import type { VmPowerActivities } from '../../activities/vm-power';
import { CANNOT_HEAL } from '../../common/failures';
import { siteTaskQueue } from '../task-queues';

type SiteActivities = RecoverySiteActivities & PrimarySiteActivities & VmPowerBatchActivities<ShutdownForHandoverInput> & CheckBatchActivities & HandoverActivities & DatapathActivities & DomainStatusActivities & VmPowerActivities & SplitBrainActivities & FailbackDataActivities & PermanentFailoverActivities & RestoreActivities;

/**
 * Retries for a site that may be briefly unreachable; what cannot heal fails at once. At most 10 s
 * between tries: a site back from an outage is used again within 10 s (with 30 s, a rehydration
 * resumed up to 30 s after the site answered again), and a try every 10 s costs an unreachable site nothing.
 */
export const SITE_RETRY = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', nonRetryableErrorTypes: CANNOT_HEAL };

/** The activities a site's worker runs, on that site's task queue. */
export function activitiesAt(site: string, options: Partial<ActivityOptions> = {}) {
  return proxyActivities<SiteActivities>({
    taskQueue: siteTaskQueue(site),
    // Site calls are short; a worker that dies mid-call is noticed after this long, and the call retried.
    startToCloseTimeout: '30 seconds',
    retry: SITE_RETRY,
    ...options,
  });
}

/** For long activities that heartbeat their position (drain, rehydration): a dead worker is noticed in seconds. */
export function longActivitiesAt(site: string, startToCloseTimeout: string) {
  return activitiesAt(site, { startToCloseTimeout, heartbeatTimeout: '10 seconds' });
}

/**
 * For activities over a batch of VMs (activities/vm-batches.ts), which heartbeat each VM done: a
 * dead worker is noticed as soon as a single VM's call would have timed out, and the retry resumes
 * where the heartbeat says.
 */
export function batchActivitiesAt(site: string, options: Partial<ActivityOptions> = {}) {
  return activitiesAt(site, { startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds', ...options });
}
