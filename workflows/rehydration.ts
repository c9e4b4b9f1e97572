import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { DatapathActivities, RehydrateInput } from '../activities/datapath';
import type { RehydrationResult } from '../datapath/rehydrate';
import { siteTaskQueue } from './task-queues';
import { CANNOT_HEAL } from '../common/failures';

/** Rebuilds a domain's disks at a site from the replication log, as one resumable activity there. */
export async function rehydration(input: RehydrateInput): Promise<RehydrationResult> {
  const { rehydrateDomain } = proxyActivities<DatapathActivities>({
    taskQueue: siteTaskQueue(input.targetSite),
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '5 seconds',
    retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds', nonRetryableErrorTypes: CANNOT_HEAL },
  });
  setCurrentDetails(`rehydrating ${input.domain} at ${input.targetSite}`);
  return rehydrateDomain.executeWithOptions({ summary: `rehydrate ${input.domain} to ${input.upTo.kind}` }, [input]);
}
