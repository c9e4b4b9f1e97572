import { ApplicationFailure, isCancellation, proxyActivities, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { failureMessage } from './failure-policy';
import { DRILL_SKIPPED, scheduledRequester, type DrillRequested, type ScheduledDrillActivities, type ScheduledDrillInput } from './scheduled-drill-messages';
import { DR_DOMAIN, DR_OPERATION, DR_OUTCOME, DR_REQUESTED_BY } from './search-attributes';
import { ORCHESTRATION_TASK_QUEUE } from './task-queues';

const { requestDrill } = proxyActivities<ScheduledDrillActivities>({
  taskQueue: ORCHESTRATION_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
  // A storage site or Temporal briefly unreachable is retried; one that stays so skips this run, not the next ones.
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: [DRILL_SKIPPED] },
});

/**
 * One run of a domain's drill schedule: requests a drill through the domain's operations desk, as
 * `POST /domains/{domain}/drill` does, and ends once the desk has started it (the drill reports on
 * itself). When the domain cannot be drilled now, the run fails naming why, so that the schedule's
 * recent actions and the domain's drill history show it skipped.
 */
export async function scheduledDrill(input: ScheduledDrillInput): Promise<DrillRequested> {
  upsertSearchAttributes([
    { key: DR_DOMAIN, value: input.domain },
    { key: DR_OPERATION, value: 'scheduled-drill' },
    { key: DR_REQUESTED_BY, value: scheduledRequester(input.schedule) },
  ]);
  try {
    const requested = await requestDrill.executeWithOptions({ summary: `request a drill of ${input.domain} from its operations desk` }, [{ ...input, requestId: workflowInfo().workflowId }]);
    upsertMemo({ drill: requested.workflowId });
    upsertSearchAttributes([{ key: DR_OUTCOME, value: 'succeeded' }]);
    return requested;
  } catch (error) {
    if (isCancellation(error)) throw error;
    const why = failureMessage(error);
    upsertMemo({ skipped: why });
    upsertSearchAttributes([{ key: DR_OUTCOME, value: 'skipped' }]);
    throw ApplicationFailure.create({ type: DRILL_SKIPPED, message: `scheduled drill of ${input.domain} skipped: ${why}`, nonRetryable: true });
  }
}
