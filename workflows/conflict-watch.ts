import { continueAsNew, setCurrentDetails, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { OpenConflict } from '../activities/split-brain';
import { failureMessage } from './failure-policy';
import { activitiesAt } from './phases/site-activities';
import { DR_CONFLICT, DR_OPERATION, DR_SITE } from './search-attributes';
import { workflowNow } from './clock';
import { someNames } from './listing';

export interface ConflictWatchInput {
  site: string;
  /** Time between detection passes; default 2 s, so a returning site's conflict shows within seconds. */
  intervalMs?: number;
  /** Passes per run before continue-as-new, so the history stays small however long the site lives. */
  passesPerRun?: number;
  /** The conflicts open at the end of the previous run. */
  open?: OpenConflict[];
}

/**
 * The split-brain detector of one site (id `conflict-watch/<site>`): every few seconds a pass on
 * the site's own task queue records a conflict for each domain whose VMs run there while another
 * site owns it. A workflow rather than a timer in the worker process: it outlives restarts of
 * every worker, keeps its schedule while the site (and its worker) is gone, runs its first pass
 * as soon as the site's worker polls again, and shows the open conflicts in the Web UI: its
 * current details name them, and its `DrConflict` search attribute lists their domains.
 */
export async function conflictWatch(input: ConflictWatchInput): Promise<never> {
  const { site, intervalMs = 2_000, passesPerRun = 300 } = input;
  // A pass that the site cannot run (site or worker down) is skipped, not queued: the next one asks afresh.
  const atSite = activitiesAt(site, { startToCloseTimeout: '20 seconds', scheduleToCloseTimeout: '30 seconds', retry: { maximumAttempts: 1 } });
  upsertSearchAttributes([
    { key: DR_OPERATION, value: 'conflict-watch' },
    { key: DR_SITE, value: site },
  ]);
  let open = input.open ?? [];
  let shown: string | undefined;
  const show = (lastPass: string) => {
    const domains = open.map((c) => c.domain);
    if (domains.join(',') !== shown) upsertSearchAttributes([{ key: DR_CONFLICT, value: domains.length > 0 ? domains : null }]);
    shown = domains.join(',');
    setCurrentDetails(
      `**split-brain watch of site ${site}**\n\n` +
        (open.length === 0
          ? 'no conflict: no domain VM runs here while another site owns its domain'
          : open.map((c) => `**conflict** in ${c.domain}: ${someNames(c.vms)} run at ${c.site} while ${c.owner.site} owns it (epoch ${c.owner.epoch}) since ${new Date(c.since).toISOString()}`).join('\n\n')) +
        `\n\nlast pass: ${lastPass}`,
    );
  };
  for (let pass = 0; pass < passesPerRun && !workflowInfo().continueAsNewSuggested; pass++) {
    try {
      open = await atSite.detectConflicts.executeWithOptions({ summary: `look for split-brain at ${site}` }, []);
      show(new Date(workflowNow()).toISOString());
    } catch (error) {
      show(`${new Date(workflowNow()).toISOString()}, the site did not answer (${failureMessage(error)})`);
    }
    await sleep(intervalMs);
  }
  return continueAsNew<typeof conflictWatch>({ ...input, open });
}
