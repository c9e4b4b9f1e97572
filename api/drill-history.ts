/**
 * A domain's drills as Temporal's visibility knows them: each drill workflow (its search
 * attributes, its memo `drillOutcome`, its report once closed) and each scheduled run that could
 * not start one (its memo `skipped`). Nothing is kept elsewhere: the history is as long as the
 * namespace's retention.
 */
import { WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { describeError } from '../common/errors';
import type { DrillReport } from '../workflows/drill-messages';
import type { OperationReport } from '../workflows/operation-messages';
import { DR_REQUESTED_BY } from '../workflows/search-attributes';

export const DRILL_STATUSES = ['running', 'passed', 'failed', 'aborted', 'cancelled', 'skipped'] as const;
export type DrillStatus = (typeof DRILL_STATUSES)[number];

export interface DrillHistoryEntry {
  workflowId: string;
  startedAt: string;
  endedAt: string | null;
  requestedBy: string | null;
  status: DrillStatus;
  /** Skipped: why the scheduled run could not start a drill; aborted: the failure that ended it. */
  reason?: string;
  rtoMs?: number;
  rpoMs?: number;
  /** The point of the log the drill rebuilt from. */
  recoveryPoint?: OperationReport['recoveryPoint'];
  /** The checks that failed, and VMs that did not come up. */
  failedBecause?: string[];
  /** The cleanup left the recovery site's inventory exactly as before the drill. */
  cleanupAsBefore?: boolean;
}

const drillsOf = (domain: string) => `DrDomain = '${domain}' AND DrOperation = 'drill'`;
/** Scheduled runs that ended without starting a drill; those that started one are listed as that drill. */
const skippedRunsOf = (domain: string) => `DrDomain = '${domain}' AND DrOperation = 'scheduled-drill' AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed'`;

async function firstOf(client: Client, query: string, limit: number): Promise<WorkflowExecutionInfo[]> {
  const found: WorkflowExecutionInfo[] = [];
  if (limit <= 0) return found;
  for await (const workflow of client.workflow.list({ query, pageSize: limit })) {
    found.push(workflow);
    if (found.length >= limit) break;
  }
  return found;
}

/** A workflow as visibility lists it or as describe answers. */
type Visible = Omit<WorkflowExecutionInfo, 'raw'>;

const newestFirst = (a: WorkflowExecutionInfo, b: WorkflowExecutionInfo) => b.startTime.getTime() - a.startTime.getTime();

/** The domain's drills and skipped scheduled runs, newest first, at most `limit`. */
export async function drillHistory(client: Client, domain: string, limit: number): Promise<DrillHistoryEntry[]> {
  const [drills, skipped] = await Promise.all([firstOf(client, drillsOf(domain), limit), firstOf(client, skippedRunsOf(domain), limit)]);
  const newest = [...drills, ...skipped].sort(newestFirst).slice(0, limit);
  return Promise.all(newest.map((workflow) => historyEntry(client, workflow)));
}

/** One drill or skipped scheduled run, with the drill's report when it has ended. */
export async function historyEntry(client: Client, workflow: Visible): Promise<DrillHistoryEntry> {
  const entry: DrillHistoryEntry = {
    workflowId: workflow.workflowId,
    startedAt: workflow.startTime.toISOString(),
    endedAt: workflow.closeTime?.toISOString() ?? null,
    requestedBy: workflow.typedSearchAttributes.get(DR_REQUESTED_BY) ?? null,
    status: statusOf(workflow),
  };
  if (workflow.type === 'scheduledDrill') {
    return { ...entry, status: 'skipped', reason: typeof workflow.memo?.skipped === 'string' ? workflow.memo.skipped : `the scheduled run ended ${workflow.status.name}` };
  }
  const handle = client.workflow.getHandle(workflow.workflowId, workflow.runId);
  if (workflow.status.name === 'FAILED') {
    const reason = await handle.result().then(
      () => undefined,
      (error: unknown) => describeError(error instanceof WorkflowFailedError && error.cause ? error.cause : error),
    );
    return { ...entry, ...(reason ? { reason } : {}) };
  }
  if (workflow.status.name !== 'COMPLETED') return entry;
  // Listed by visibility a moment after retention removed its history: what visibility said is all there is.
  const report = (await handle.result().catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  })) as (OperationReport & { drill?: DrillReport }) | undefined;
  if (!report) return entry;
  return {
    ...entry,
    ...(report.drill ? { status: report.drill.outcome } : {}),
    ...(report.rtoMs !== undefined ? { rtoMs: report.rtoMs } : {}),
    ...(report.rpoMs !== undefined ? { rpoMs: report.rpoMs } : {}),
    ...(report.recoveryPoint ? { recoveryPoint: report.recoveryPoint } : {}),
    ...(report.drill?.failedBecause ? { failedBecause: report.drill.failedBecause } : {}),
    ...(report.drill ? { cleanupAsBefore: report.drill.cleanup.inventory.asBefore } : {}),
  };
}

/** From visibility alone: a completed drill's outcome is its memo's `drillOutcome`. */
function statusOf(workflow: Visible): DrillStatus {
  switch (workflow.status.name) {
    case 'RUNNING':
      return 'running';
    case 'COMPLETED':
      return workflow.memo?.drillOutcome === 'failed' ? 'failed' : 'passed';
    case 'CANCELLED':
      return 'cancelled';
    default:
      return 'aborted';
  }
}

export interface LastDrill {
  workflowId: string;
  outcome: Exclude<DrillStatus, 'running' | 'skipped'>;
  endedAt: string;
}

/**
 * The domain's latest ended drill and, when it did not pass, a warning: what `GET /domains/{domain}`
 * shows at a glance. Visibility unreachable (or its search attributes missing) shows no drill.
 */
export async function drillAtAGlance(client: Client, domain: string): Promise<{ lastDrill: LastDrill | null; warnings?: string[] }> {
  const ended = await firstOf(client, `${drillsOf(domain)} AND ExecutionStatus != 'Running'`, 20).catch(() => []);
  const last = ended.sort((a, b) => (b.closeTime?.getTime() ?? 0) - (a.closeTime?.getTime() ?? 0))[0];
  if (!last?.closeTime) return { lastDrill: null };
  const lastDrill: LastDrill = { workflowId: last.workflowId, outcome: statusOf(last) as LastDrill['outcome'], endedAt: last.closeTime.toISOString() };
  if (lastDrill.outcome === 'passed') return { lastDrill };
  return { lastDrill, warnings: [`the last drill of ${domain}, ${lastDrill.workflowId}, ${lastDrill.outcome} at ${lastDrill.endedAt}: see GET /domains/${domain}/drills`] };
}
