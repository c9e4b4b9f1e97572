import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ObjectStore } from '../datapath/object-store';
import type { Logger } from '../common/logger';
import type { RunbookStore } from '../runbooks/store';
import { DRILL_SKIPPED, scheduledRequester, type ScheduledDrillActivities } from '../workflows/scheduled-drill-messages';
import { RequestRefused, startThroughDesk } from './desk';
import { drillRequest } from './drill';

export interface ScheduledDrillDependencies {
  client: Client;
  runbooks: RunbookStore;
  /** The storage site: the domain's mode. */
  store: ObjectStore;
  log: Logger;
}

/** The orchestration worker's activities for drill schedules, built from its clients. */
export function createScheduledDrillActivities({ client, runbooks, store, log }: ScheduledDrillDependencies): ScheduledDrillActivities {
  return {
    /** The checks and the desk's request of `POST /domains/{domain}/drill`; what they refuse is not retried: it skips this run. */
    async requestDrill({ domain, schedule, runbook, version, keepFor, requestId }) {
      const requestedBy = scheduledRequester(schedule);
      try {
        const { request } = await drillRequest({ runbooks, store }, domain, { runbook, version, keepFor, requestedBy });
        const started = await startThroughDesk(client, domain, request, requestId);
        log.info({ domain, schedule, workflowId: started.workflowId }, 'scheduled drill started');
        return { workflowId: started.workflowId, requestedBy };
      } catch (error) {
        if (!(error instanceof RequestRefused)) throw error;
        log.warn({ domain, schedule, why: error.message }, 'scheduled drill skipped');
        throw ApplicationFailure.nonRetryable(error.message, DRILL_SKIPPED);
      }
    },
  };
}
