/**
 * What the fast tier's operation tests share: steps derived from a happy path's activity calls,
 * failing or holding one step of one operation, and reading how the operation ended (its report,
 * its outcome attribute, the protection workflows it started or stopped).
 */
import assert from 'node:assert/strict';
import { QueryNotRegisteredError, WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { OPERATION_ABORTED, operationProgressQuery, type OperationProgress, type OperationReport } from '../../workflows/operation-messages';
import { DR_OUTCOME } from '../../workflows/search-attributes';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { holdUntilCancelled, type StubCall, type StubSites } from '../harness/stub-sites';

/** How many operations of the step-by-step tests run at once (each on a domain of its own). */
export const PARALLEL = 6;

/** A step of an operation: one activity at one site, called by the operation itself or by one of its power-on groups. */
export interface Step {
  key: string;
  /** How many calls of it the happy path made. */
  calls: number;
}

/** `<site>:<activity>` plus, for a power-on group's calls, ` in <group>`. */
export function stepKey(call: StubCall): string {
  const group = call.workflowId.split('/power-on/')[1];
  return `${call.site}:${call.name}${group ? ` in ${group}` : ''}`;
}

/** The calls an operation (its workflow id) and its power-on groups made: not those of a protection it started, nor of an earlier operation of the domain. */
export function callsOfOperation(sites: StubSites, domain: string, workflowId: string): StubCall[] {
  return sites.callsOf(domain).filter((c) => c.workflowId === workflowId || c.workflowId.startsWith(`${workflowId}/`));
}

export function stepsOf(calls: StubCall[]): Step[] {
  const steps = new Map<string, Step>();
  for (const call of calls) {
    const key = stepKey(call);
    const step = steps.get(key) ?? { key, calls: 0 };
    step.calls++;
    steps.set(key, step);
  }
  return [...steps.values()];
}

export const argOf = (call: StubCall) => call.args[0] as Record<string, unknown>;

/** What a batch activity's call (activities/vm-batches.ts) passes for each of its VMs. */
export const argsOfBatch = (call: StubCall) => argOf(call).vms as Array<Record<string, unknown>>;

export const sorted = (items: string[]) => [...new Set(items)].sort();

/**
 * The last call of `step` by the operation `workflowId` fails (non-retryable), so that its
 * earlier calls (other VMs) have done their work; every other call proceeds.
 */
export function failLastCallOf(sites: StubSites, domain: string, workflowId: string, step: Step): void {
  let seen = 0;
  sites.intercept(domain, async (call, proceed) => {
    if (isCallOf(call, workflowId) && stepKey(call) === step.key && ++seen === step.calls) throw ApplicationFailure.nonRetryable(`injected failure of ${step.key}`, 'InjectedFailure');
    return proceed();
  });
}

/** The first call of `step` by the operation `workflowId` is held until cancelled; resolves once it is. */
export function holdFirstCallOf(sites: StubSites, domain: string, workflowId: string, step: Step): Promise<void> {
  let held = false;
  return new Promise((reached) => {
    sites.intercept(domain, async (call, proceed) => {
      if (!held && isCallOf(call, workflowId) && stepKey(call) === step.key) {
        held = true;
        reached();
        return holdUntilCancelled();
      }
      return proceed();
    });
  });
}

/** Cancels the operation once `reached` (a held step) resolves; fails if the operation ends first. */
export async function cancelWhenReached(handle: WorkflowHandle, reached: Promise<void>, step: Step): Promise<void> {
  await Promise.race([
    reached,
    handle.result().then(() => {
      throw new Error(`the operation ended before ${step.key}`);
    }),
  ]);
  await handle.cancel();
  await assertCancelled(handle);
}

function isCallOf(call: StubCall, workflowId: string): boolean {
  return call.workflowId === workflowId || call.workflowId.startsWith(`${workflowId}/`);
}

async function failureOf(handle: WorkflowHandle): Promise<WorkflowFailedError> {
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, `${handle.workflowId} ended with ${String(error)}, not a failure`);
  return error;
}

export async function outcomeAttribute(handle: WorkflowHandle): Promise<unknown> {
  return (await handle.describe()).typedSearchAttributes.get(DR_OUTCOME);
}

/** The report an aborted operation fails with. */
export async function abortReport(handle: WorkflowHandle): Promise<OperationReport> {
  const error = await failureOf(handle);
  assert.ok(error.cause instanceof ApplicationFailure, `${handle.workflowId} failed with ${String(error.cause)}`);
  assert.equal(error.cause.type, OPERATION_ABORTED);
  const report = error.cause.details?.[0] as OperationReport;
  assert.equal(report.outcome, 'aborted');
  assert.ok(report.compensation, 'the report says what was undone');
  assert.equal(await outcomeAttribute(handle), 'aborted');
  return report;
}

export async function assertCancelled(handle: WorkflowHandle): Promise<void> {
  const error = await failureOf(handle);
  assert.ok(error.cause instanceof CancelledFailure, `${handle.workflowId} failed with ${String(error.cause)}, not a cancellation`);
  assert.equal(await outcomeAttribute(handle), 'cancelled');
}

/** The protection workflow's handle, or undefined when nothing started it. */
export async function protection(client: Client, domain: string, site: string, epoch: number): Promise<WorkflowHandle | undefined> {
  const handle = client.workflow.getHandle(protectionWorkflowId(domain, site, epoch));
  try {
    await handle.describe();
    return handle;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  }
}

/** A protection that an operation's undo stopped ends cancelled. */
export async function assertProtectionCancelled(handle: WorkflowHandle, where: string): Promise<void> {
  const ended = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(ended instanceof WorkflowFailedError && ended.cause instanceof CancelledFailure, `protection at ${where} is cancelled (it ended with ${String(ended)})`);
}

/**
 * The undo of a planned handover, for an operation from `from` to `to` that aborted: when the
 * handover was tried (the leaving site's protection had stopped for it) or done, ownership is with
 * `from` again in one new epoch, keeping what it drained only if the domain never moved; otherwise
 * nothing is handed back. Returns whether ownership was handed back.
 */
export function assertHandoverUndone(calls: StubCall[], { from, to }: { from: string; to: string }): boolean {
  const ended = (name: StubCall['name'], site: string) => calls.filter((c) => c.name === name && c.site === site && c.ended === 'ok');
  const handedOver = ended('releaseDomain', from).length > 0;
  const stoppedForHandover = calls.some((c) => c.name === 'releaseDomain' && c.site === from);
  const returned = ended('releaseDomain', to);
  if (!handedOver && !stoppedForHandover) {
    assert.equal(calls.filter((c) => c.name === 'releaseDomain' && c.site === to).length, 0, 'no handback without a handover');
    return false;
  }
  assert.equal(returned.length, 1, `ownership is with ${from} again, in a new epoch`);
  assert.equal(argOf(returned[0]).nextSite, from);
  const drained = (ended('drainReplication', from)[0]?.result as { lastSegment: number | null }).lastSegment;
  assert.equal(argOf(returned[0]).lastSegment, handedOver ? null : drained, `nothing ${to} wrote joins ${from}'s chain, and what ${from} drained stays in it`);
  return true;
}


/** What a run's history holds of its runbook: the `runbook` of its input, and the summaries of the activities that read it. */
export async function runbookInHistory(handle: WorkflowHandle): Promise<{ input: unknown; reads: unknown[] }> {
  const { events } = await handle.fetchHistory();
  const decoded = (payload: { data?: Uint8Array | null } | null | undefined): unknown => JSON.parse(Buffer.from(payload?.data ?? []).toString('utf8'));
  const input = decoded(events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]) as { runbook: unknown };
  const reads = (events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'readRunbookPage').map((e) => decoded(e.userMetadata?.summary));
  return { input: input.runbook, reads };
}

/** The operation's progress; none while it reads the runbook its input names, before which it answers no query (as the API shows it). */
export async function progressOf(handle: WorkflowHandle): Promise<OperationProgress | undefined> {
  try {
    return await handle.query(operationProgressQuery);
  } catch (error) {
    if (error instanceof QueryNotRegisteredError) return undefined;
    throw error;
  }
}

/**
 * The workflows an operation asked to cancel (children or not), read from its history: its undo
 * stops the protection it started, but a cancel that keeps its goal (past the goal, or during a
 * commit window) must leave that protection running.
 */
export async function cancelsRequestedBy(handle: WorkflowHandle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).flatMap((e) => e.requestCancelExternalWorkflowExecutionInitiatedEventAttributes?.workflowExecution?.workflowId ?? []);
}
