import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DatapathActivities } from '../activities/datapath/activities';
import type { RestorePoint } from '../activities/datapath/records';
import { workflowNow } from './clock';
import { siteTaskQueue } from './task-queues';

export interface ProtectInput {
  domain: string;
  /** The protected site: the replicator runs on its task queue and drains its journal. */
  site: string;
  vms: string[];
  protectionWindowMs: number;
  restorePointIntervalMs: number;
  /** Length of one replicator activity run; the status refreshes after each. */
  replicatorRunMs?: number;
  /** Replicator runs per workflow execution before continue-as-new (history stays bounded). */
  runsPerExecution?: number;
  /** Carried across continue-as-new. */
  carried?: { epoch: number; cursor: number; lastRestorePoint?: { id: string; timestamp: number } };
}

export interface ProtectStatus {
  domain: string;
  site: string;
  epoch: number;
  cursor: number;
  lagMs: number;
  backlogEntries: number;
  segmentsWritten: number;
  lastRestorePoint?: { id: string; timestamp: number };
  stopping: boolean;
}

export const protectStatusQuery = defineQuery<ProtectStatus>('protectStatus');
/** An on-demand restore point at the current end of the log; returns the point. */
export const restorePointNowUpdate = defineUpdate<RestorePoint>('restorePointNow');
/** Ends protection after the current replicator run (planned failover drains first, then stops it). */
export const stopProtectionSignal = defineSignal('stopProtection');

/**
 * Protection of one domain: claims it for the protected site, snapshots its manifest, then keeps
 * a replicator activity running on the site's queue and records restore points on a policy and
 * on demand, continuing as new to keep history bounded.
 */
export async function protect(input: ProtectInput): Promise<ProtectStatus> {
  const taskQueue = siteTaskQueue(input.site);
  const acts = proxyActivities<DatapathActivities>({ taskQueue, startToCloseTimeout: '1 minute', retry: { maximumInterval: '10 seconds' } });
  const runMs = input.replicatorRunMs ?? 10_000;
  const { replicateJournal } = proxyActivities<DatapathActivities>({
    taskQueue,
    startToCloseTimeout: runMs + 60_000,
    heartbeatTimeout: '5 seconds',
    retry: { initialInterval: '200 milliseconds', maximumInterval: '5 seconds', nonRetryableErrorTypes: ['StaleEpoch', 'JournalGap', 'CorruptSegment'] },
  });

  const status: ProtectStatus = {
    domain: input.domain,
    site: input.site,
    epoch: input.carried?.epoch ?? 0,
    cursor: input.carried?.cursor ?? 0,
    lagMs: 0,
    backlogEntries: 0,
    segmentsWritten: 0,
    lastRestorePoint: input.carried?.lastRestorePoint,
    stopping: false,
  };
  setHandler(protectStatusQuery, () => status);
  setHandler(stopProtectionSignal, () => {
    status.stopping = true;
  });

  if (!input.carried) {
    const claim = await acts.claimDomain.executeWithOptions({ summary: `claim ${input.domain} for ${input.site}` }, [{ domain: input.domain, site: input.site, takeover: false }]);
    if (!claim.won) throw ApplicationFailure.nonRetryable(`domain ${input.domain} is owned by site ${claim.ownerSite} (epoch ${claim.epoch})`, 'DomainOwnedElsewhere');
    status.epoch = claim.epoch;
    await acts.recordManifest({ domain: input.domain, site: input.site, vms: input.vms, protectionWindowMs: input.protectionWindowMs });
  }

  const makePoint = async (reason: RestorePoint['reason']): Promise<RestorePoint> => {
    const point = await acts.createRestorePoint.executeWithOptions({ summary: `${reason} restore point` }, [{ domain: input.domain, reason }]);
    status.lastRestorePoint = { id: point.id, timestamp: point.timestamp };
    return point;
  };
  setHandler(restorePointNowUpdate, () => makePoint('on-demand'), {
    validator: () => {
      if (status.cursor === 0) throw new Error(`domain ${input.domain} has no replicated writes yet`);
    },
  });

  let runs = 0;
  const executionDone = () => status.stopping || runs >= (input.runsPerExecution ?? 200) || workflowInfo().continueAsNewSuggested;

  const replicatorLoop = async () => {
    while (!executionDone()) {
      setCurrentDetails(`replicating ${input.domain} from ${input.site} (epoch ${status.epoch}, cursor ${status.cursor}, lag ${status.lagMs} ms)`);
      const progress = await replicateJournal.executeWithOptions({ summary: `replicate from cursor ${status.cursor}` }, [
        { domain: input.domain, site: input.site, epoch: status.epoch, cursor: status.cursor, vms: input.vms, runForMs: runMs },
      ]);
      runs++;
      status.cursor = progress.cursor;
      status.lagMs = progress.lagMs;
      status.backlogEntries = progress.backlogEntries;
      status.segmentsWritten += progress.segmentsWritten;
    }
  };
  const policyLoop = async () => {
    let nextPointAt = (status.lastRestorePoint?.timestamp ?? workflowNow()) + input.restorePointIntervalMs;
    while (!(await condition(executionDone, Math.max(1, nextPointAt - workflowNow())))) {
      if (status.cursor > 0) await makePoint('policy');
      nextPointAt = workflowNow() + input.restorePointIntervalMs;
    }
  };
  await Promise.all([replicatorLoop(), policyLoop()]);
  await condition(allHandlersFinished);
  if (status.stopping) return status;
  return continueAsNew<typeof protect>({ ...input, carried: { epoch: status.epoch, cursor: status.cursor, lastRestorePoint: status.lastRestorePoint } });
}
