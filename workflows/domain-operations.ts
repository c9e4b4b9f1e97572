import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  isCancellation,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { workflowNow } from './clock';
import type { CompensationOutcome } from './compensation';
import { failureMessage } from './failure-policy';
import { OPERATION_ABORTED, type FollowUp, type OperationOutcome, type OperationReport } from './operation-messages';
import { DR_DOMAIN, DR_OPERATION } from './search-attributes';
import { ORCHESTRATION_TASK_QUEUE } from './task-queues';
import { operationTaskTimeoutMs } from './task-timeout';
import { domainOperationsWorkflowId, operationWorkflowId, type OperationKind } from './workflow-ids';

/**
 * The operations a protected domain can undergo, each a workflow type. Only one runs per domain
 * at a time: two failovers of one domain racing would fight over ownership and over the same VMs at
 * the recovery site. A drill is the exception (see `deskRefusal`): it owns nothing and names all it
 * creates with its own prefix.
 */
export const OPERATION_WORKFLOW_TYPES: Record<OperationKind, string> = {
  'power-on': 'powerOnPlan',
  failover: 'failover',
  'continuous-failover': 'continuousFailover',
  failback: 'failback',
  'continuous-failback': 'continuousFailback',
  'resolve-conflict': 'resolveConflict',
  'permanent-failover': 'permanentFailover',
  drill: 'drill',
  restore: 'restore',
};

export interface OperationRequest {
  operation: OperationKind;
  requestedBy: string;
  /** Shown in the Web UI's summary of the operation. */
  summary: string;
  /** The operation workflow's input. */
  input: unknown;
  /** The API call's request id: the operation's memo keeps it, linking its Web UI history to its audit record. */
  requestId?: string;
  /** The VMs of the runbook the operation goes by: they size its workflow task timeout (`operationTaskTimeoutMs`). */
  vms?: number;
}

/** A request as the API makes it: sized by the runbook it names. */
export type SizedByRunbook = Required<Pick<OperationRequest, 'vms'>>;

export interface OperationRecord {
  workflowId: string;
  operation: OperationKind;
  requestedBy: string;
  startedAt: string;
  endedAt?: string;
  outcome?: Exclude<OperationOutcome, 'running'>;
  /** Aborted: why, in the words of the failure that ended the operation. */
  failure?: string;
  /** An aborted operation: its report in short (the whole report is at `GET /operations/{id}`). */
  report?: AbortSummary;
  /** A drill: the operation it was cancelled (and cleaned up) for. */
  gaveWayTo?: string;
  /** An operation that a running drill gave way to: that drill, cleaning up beside it. */
  drillGivingWay?: string;
}

export interface AbortSummary {
  /** The failure that made the operation abort. */
  failure?: string;
  /** The step that failed. */
  failedStep?: string;
  /** What compensation undid and what remains, at most SUMMARY_ENTRIES of each. */
  compensation: CompensationOutcome;
}

export interface DomainOperationsState {
  domain: string;
  running?: OperationRecord;
  /** A drill runs in a slot of its own: beside a continuous failover or failback, or alone. */
  drill?: OperationRecord;
  /** Most recent first, bounded. */
  recent: OperationRecord[];
  /**
   * Continue as new once this many events have been added to a run's history since it began, as
   * well as when Temporal suggests it. Absent: only when Temporal suggests it (thousands of
   * events). Tests set a small bound to reach continue-as-new in a few operations.
   */
  maxEventsPerRun?: number;
}

type OperationWorkflow = (input: unknown) => Promise<unknown>;

export const startOperationUpdate = defineUpdate<OperationRecord, [OperationRequest]>('startOperation');
export const domainOperationsQuery = defineQuery<DomainOperationsState>('domainOperations');
/**
 * A request that ends a disaster without a new operation (the completion of a continuous failover
 * or failback) clears a running drill out of its way; answers the drill, if there was one.
 */
export const drillGivesWayUpdate = defineUpdate<OperationRecord | null, [{ to: string }]>('drillGivesWay');

/**
 * Operations a drill may run beside: they follow the log for days, and the domain must stay
 * drillable meanwhile. The drill's copies, appliance and disks carry its prefix, so they collide
 * with nothing these create.
 */
const DRILL_RUNS_BESIDE: OperationKind[] = ['continuous-failover', 'continuous-failback'];

/**
 * The running operation that refuses `operation`, if any. A drill never refuses anything: a
 * disaster takes precedence over its rehearsal, so the drill is cleaned up while the operation
 * starts beside it.
 */
export function deskRefusal(state: Pick<DomainOperationsState, 'running' | 'drill'>, operation: OperationKind): OperationRecord | undefined {
  if (operation !== 'drill') return state.running;
  return state.drill ?? (state.running && !DRILL_RUNS_BESIDE.includes(state.running.operation) ? state.running : undefined);
}

export const OPERATION_ALREADY_RUNNING = 'OperationAlreadyRunning';
const RECENT_KEPT = 20;
/** Records are kept in the desk's state across continue-as-new: a 1,000-VM abort's lists stay short. */
const SUMMARY_ENTRIES = 10;

/** How every client starts the desk of a domain (update-with-start): once, kept across requests. */
export function deskStartOptions(domain: string) {
  return {
    workflowId: domainOperationsWorkflowId(domain),
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
    args: [{ domain, recent: [] }] as [DomainOperationsState],
    staticSummary: `Operations desk of protected domain ${domain}: one operation at a time`,
  };
}

/**
 * A domain's operations desk: a long-lived workflow (id `domain/<name>`) that starts each
 * operation as a child with a readable id (`<operation>/<domain>/<start time>`) and refuses a
 * second one while the first runs. The refusal happens in the update's validator, so it is
 * atomic with respect to every other request and leaves no trace in history.
 *
 * A cancel of the desk (a click in the Web UI) changes nothing: it must not cancel the operation
 * it started, as the SDK would cancel a child started in a cancelled scope whatever its parent
 * close policy, and a desk that ended would forget the operation that runs and let a second start
 * beside it. An operation is cancelled by its own workflow id.
 */
export async function domainOperations(state: DomainOperationsState): Promise<never> {
  const outlivesACancel = patched('desk-outlives-a-cancel');
  const shieldedFromCancel = <T>(fn: () => Promise<T>): Promise<T> => (outlivesACancel ? CancellationScope.nonCancellable(fn) : fn());
  upsertSearchAttributes([
    { key: DR_DOMAIN, value: state.domain },
    { key: DR_OPERATION, value: 'domain-operations' },
  ]);
  const firstEvent = workflowInfo().historyLength;
  const runIsLong = () =>
    workflowInfo().continueAsNewSuggested || (state.maxEventsPerRun !== undefined && workflowInfo().historyLength - firstEvent >= state.maxEventsPerRun);
  const slotOf = (operation: OperationKind) => (operation === 'drill' ? 'drill' : 'running');

  /** Claims the desk's slot before the first await, so that a concurrent request's validator already sees it. */
  const start = async (request: OperationRequest): Promise<OperationRecord> => {
    const now = workflowNow();
    const workflowId = operationWorkflowId(request.operation, state.domain, now);
    const record: OperationRecord = { workflowId, operation: request.operation, requestedBy: request.requestedBy, startedAt: new Date(now).toISOString() };
    const slot = slotOf(request.operation);
    const drillInTheWay = slot === 'running' ? state.drill : undefined;
    state[slot] = record;
    let child: ChildWorkflowHandle<OperationWorkflow>;
    try {
      child = await shieldedFromCancel(() =>
        startChild<OperationWorkflow>(OPERATION_WORKFLOW_TYPES[request.operation], {
          workflowId,
          args: [request.input],
          // The operation must outlive this desk's continue-as-new and any termination of it.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          staticSummary: request.summary,
          ...(request.requestId ? { memo: { requestId: request.requestId } } : {}),
          ...(request.vms ? { workflowTaskTimeout: operationTaskTimeoutMs(request.vms) } : {}),
        }),
      );
    } catch (error) {
      state[slot] = undefined;
      throw error;
    }
    void watch(slot, child, request.vms);
    if (drillInTheWay) record.drillGivingWay = await giveWay(drillInTheWay, workflowId);
    return record;
  };

  /** Cancels the drill, whose cancellation is its cleanup; answers its workflow id. */
  async function giveWay(drill: OperationRecord, to: string): Promise<string> {
    if (!drill.gaveWayTo) {
      drill.gaveWayTo = to;
      await shieldedFromCancel(() => getExternalWorkflowHandle(drill.workflowId).cancel());
    }
    return drill.workflowId;
  }

  /** Records how the operation in `slot` ended, and starts the operation it asked to be followed by (over the same `vms`). */
  async function watch(slot: 'running' | 'drill', child: ChildWorkflowHandle<OperationWorkflow>, vms: number | undefined): Promise<void> {
    let end: Pick<OperationRecord, 'outcome' | 'failure' | 'report'>;
    let next: FollowUp | undefined;
    try {
      const result = (await child.result()) as Partial<OperationReport> | undefined;
      end = { outcome: result?.outcome === 'succeeded-with-failures' ? 'succeeded-with-failures' : 'succeeded' };
      next = result?.followedBy;
    } catch (error) {
      end = howItEnded(error);
    }
    const ended: OperationRecord = { ...state[slot]!, endedAt: new Date(workflowNow()).toISOString(), ...end };
    state.recent = [ended, ...state.recent].slice(0, RECENT_KEPT);
    state[slot] = undefined;
    if (next) await startFollowUp(next, ended, vms);
  }

  setHandler(domainOperationsQuery, () => state);
  setHandler(startOperationUpdate, start, {
    validator: (request: OperationRequest) => {
      if (!(request.operation in OPERATION_WORKFLOW_TYPES)) throw new Error(`unknown operation "${String(request.operation)}"`);
      // Refused here, leaving no trace: a start with a timeout of NaN would fail inside the desk's workflow task.
      if (request.vms !== undefined && !(Number.isInteger(request.vms) && request.vms >= 0)) throw new Error(`vms must be the runbook's number of VMs, not ${String(request.vms)}`);
      const refusing = deskRefusal(state, request.operation);
      if (refusing) {
        throw ApplicationFailure.create({
          type: OPERATION_ALREADY_RUNNING,
          message: `${refusing.operation} ${refusing.workflowId} (requested by ${refusing.requestedBy}) is running for domain ${state.domain}`,
          details: [refusing],
        });
      }
    },
  });
  setHandler(drillGivesWayUpdate, async ({ to }) => {
    const drill = state.drill;
    if (!drill) return null;
    await giveWay(drill, to);
    return drill;
  });

  // Continue as new only when the desk is idle: no operation running and no request in flight.
  // A request accepted in this very workflow task has claimed its slot but not started its child
  // yet; continuing as new then would lose the request (its caller is told the workflow
  // completed) and carry a running record whose child never starts, refusing every later request.
  await shieldedFromCancel(() => condition(() => runIsLong() && !state.running && !state.drill && allHandlersFinished()));
  return continueAsNew<typeof domainOperations>(state);

  /** A follow-up that cannot start (e.g. its workflow id is taken) is recorded as aborted; the desk goes on. */
  async function startFollowUp(next: FollowUp, after: OperationRecord, vms: number | undefined): Promise<void> {
    try {
      await start({ ...next, requestedBy: after.requestedBy, ...(vms ? { vms } : {}) });
    } catch (error) {
      const failed: OperationRecord = { workflowId: `${next.operation} after ${after.workflowId}`, operation: next.operation, requestedBy: after.requestedBy, startedAt: new Date(workflowNow()).toISOString(), endedAt: new Date(workflowNow()).toISOString(), outcome: 'aborted', failure: failureMessage(error) };
      state.recent = [failed, ...state.recent].slice(0, RECENT_KEPT);
    }
  }
}

/** A failed child: cancelled, or aborted with the failure's words and, for an aborted operation, its report in short. */
function howItEnded(error: unknown): Pick<OperationRecord, 'outcome' | 'failure' | 'report'> {
  if (isCancellation(error)) return { outcome: 'cancelled' };
  const ended: Pick<OperationRecord, 'outcome' | 'failure' | 'report'> = { outcome: 'aborted', failure: failureMessage(error) };
  const cause = error instanceof ChildWorkflowFailure ? error.cause : error;
  const report = cause instanceof ApplicationFailure && cause.type === OPERATION_ABORTED ? (cause.details?.[0] as OperationReport | undefined) : undefined;
  if (report) {
    const failedStep = report.steps.find((s) => s.state === 'failed')?.name;
    ended.report = {
      ...(report.failure !== undefined ? { failure: report.failure } : {}),
      ...(failedStep !== undefined ? { failedStep } : {}),
      compensation: { undone: firstEntries(report.compensation?.undone ?? []), remains: firstEntries(report.compensation?.remains ?? []) },
    };
  }
  return ended;
}

function firstEntries(entries: string[]): string[] {
  if (entries.length <= SUMMARY_ENTRIES) return entries;
  return [...entries.slice(0, SUMMARY_ENTRIES - 1), `... and ${entries.length - SUMMARY_ENTRIES + 1} more`];
}
