import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import { failure } from '../common/failures';
import type { DrillResource } from '../common/resource-names';
import { powerOnPlanAt } from '../runbooks/power-on-plan';
import type { Runbook } from '../runbooks/schema';
import type { RunbookInInput, WithRunbook } from './phases/runbook';
import { workflowNow } from './clock';
import { describeCommitWindow, type CommitWindowStatus } from './commit-window-messages';
import { Compensations } from './compensation';
import { failureMessage } from './failure-policy';
import {
  OPERATION_ABORTED,
  operationProgressQuery,
  type HandoverType,
  type OperationProgress,
  type OperationReport,
  type OperationStep,
  type FollowingStatus,
} from './operation-messages';
import type { OperationVmState } from './vm-state';
import { powerOnPlanProgressQuery, type PowerOnPlanProgress } from './power-on-messages';
import { newPlanProgress, type PowerOnPlanInput } from './power-on-plan';
import { DR_DOMAIN, DR_FAILOVER_TYPE, DR_OPERATION, DR_OUTCOME, DR_PRIMARY_SITE, DR_RECOVERY_SITE, DR_REQUESTED_BY } from './search-attributes';
import type { OperationKind } from './workflow-ids';

export interface OperationStart {
  operation: OperationKind;
  domain: string;
  type?: HandoverType;
  /** The site the domain leaves: it shuts down and hands over, or is fenced. */
  from: string;
  /** The site the domain is rebuilt and powered on at. */
  to: string;
  runbook: Runbook;
  runbookVersion: number;
  requestedBy: string;
  /** When the disaster (or the move) was declared: RTO and RPO are measured from here. */
  declaredAt: number;
  /** Facts for the Web UI's memo, next to the runbook and the requester. */
  memo?: Record<string, unknown>;
  /** What the operation is about, in a line of the Web UI's current details (e.g. the conflict it resolves). */
  about?: string;
  /** The progress an earlier run of this operation carried across continue-as-new. */
  resumed?: OperationProgress;
}

/** What every operation request carries: the domain, the runbook it runs by, who asked and when. */
export interface RequestedOperation {
  domain: string;
  /** Its name (read when the operation starts: `phases/runbook.ts`), or the validated runbook as stored (requests from before). */
  runbook: RunbookInInput;
  runbookVersion: number;
  requestedBy: string;
  declaredAt: number;
}

/** An operation that moves the domain from its runbook's primary site to its recovery site. */
export function towardsRecoverySite(operation: OperationKind, request: WithRunbook<RequestedOperation>, more: Pick<OperationStart, 'type' | 'memo' | 'resumed'> = {}): Operation {
  const { domain, runbook, runbookVersion, requestedBy, declaredAt } = request;
  return new Operation({ operation, domain, from: runbook.spec.sites.primary, to: recoverySiteOf(operation, request), runbook, runbookVersion, requestedBy, declaredAt, ...more });
}

/** An operation that returns the domain from its runbook's recovery site to its primary site. */
export function towardsPrimarySite(operation: OperationKind, request: WithRunbook<RequestedOperation>, more: Pick<OperationStart, 'type' | 'memo' | 'resumed'> = {}): Operation {
  const { domain, runbook, runbookVersion, requestedBy, declaredAt } = request;
  return new Operation({ operation, domain, from: recoverySiteOf(operation, request), to: runbook.spec.sites.primary, runbook, runbookVersion, requestedBy, declaredAt, ...more });
}

/** An operation at the site that owns the domain, which stays there (a restore in place). */
export function atOwningSite(operation: OperationKind, request: WithRunbook<RequestedOperation>, site: string, more: Pick<OperationStart, 'memo'> = {}): Operation {
  const { domain, runbook, runbookVersion, requestedBy, declaredAt } = request;
  return new Operation({ operation, domain, from: site, to: site, runbook, runbookVersion, requestedBy, declaredAt, ...more });
}

/** The API refuses these operations for a runbook without a recovery site; a request that gets here anyway fails at once. */
function recoverySiteOf(operation: OperationKind, { domain, runbook, runbookVersion }: WithRunbook<RequestedOperation>): string {
  const site = runbook.spec.sites.recovery;
  if (site === undefined) throw failure('NoRecoverySite', `${operation} of ${domain} needs a recovery site, and runbook ${runbook.metadata.name} v${runbookVersion} names none: ${domain} is protected to the storage site only`);
  return site;
}

/** What a successful operation measured, for its report. */
export interface OperationMeasures {
  rtoMs?: number;
  rpoMs?: number;
  tail?: OperationReport['tail'];
  sideCopy?: OperationReport['sideCopy'];
  rehydration?: OperationReport['rehydration'];
  rebuilt?: OperationReport['rebuilt'];
  newDirection?: OperationReport['newDirection'];
  retirement?: OperationReport['retirement'];
  drill?: OperationReport['drill'];
  restore?: OperationReport['restore'];
}

/**
 * The bookkeeping every operation shares: its progress (answered to the progress query and shown
 * as the Web UI's current details), its steps with durations, its search attributes and memo,
 * the compensations its phases push, and its report. `run` executes the operation's procedure
 * and, when it fails or is cancelled, unwinds the compensations and ends the workflow with a
 * report of what was undone and what remains.
 */
export class Operation {
  readonly domain: string;
  readonly from: string;
  readonly to: string;
  runbook: Runbook;
  readonly undo = new Compensations();
  /** The runbook's power-on plan at the site the domain is rebuilt at (at the primary, its failback's). */
  planInput: PowerOnPlanInput;
  plan: PowerOnPlanProgress;
  private readonly progress: OperationProgress;
  /** The progress's VMs by name: a domain of 10,000 VMs updates each of them in every phase. */
  private readonly vmsByName: Map<string, OperationProgress['vms'][number]>;
  private readonly created: DrillResource[] = [];
  private readonly createdKeys = new Set<string>();
  private stageName?: string;

  constructor(private readonly start: OperationStart) {
    const { domain, runbook } = start;
    this.domain = domain;
    this.from = start.from;
    this.to = start.to;
    this.runbook = runbook;
    const startedAt = start.resumed?.startedAt ?? workflowNow();
    this.progress = start.resumed ?? {
      operation: start.operation,
      domain,
      ...(start.type ? { type: start.type } : {}),
      primarySite: runbook.spec.sites.primary,
      ...(runbook.spec.sites.recovery !== undefined ? { recoverySite: runbook.spec.sites.recovery } : {}),
      runbook: { name: runbook.metadata.name, version: start.runbookVersion },
      requestedBy: start.requestedBy,
      outcome: 'running',
      phase: 'starting',
      steps: [],
      vms: [],
      bytesRehydrated: 0,
      declaredAt: start.declaredAt,
      startedAt,
      elapsedMs: 0,
      rtoSoFarMs: 0,
    };
    this.vmsByName = new Map(this.progress.vms.map((vm) => [vm.name, vm]));
    this.planInput = powerOnPlanOf(runbook, domain, start.to);
    this.plan = newPlanProgress(this.planInput);
    setHandler(operationProgressQuery, () => ({ ...this.progress, elapsedMs: workflowNow() - startedAt, rtoSoFarMs: workflowNow() - this.progress.declaredAt }));
    setHandler(powerOnPlanProgressQuery, () => this.plan);
    const attributes: SearchAttributePair[] = [
      { key: DR_DOMAIN, value: domain },
      { key: DR_OPERATION, value: start.operation },
      { key: DR_PRIMARY_SITE, value: this.progress.primarySite },
      ...(this.progress.recoverySite !== undefined ? [{ key: DR_RECOVERY_SITE, value: this.progress.recoverySite }] : []),
      ...(start.type ? [{ key: DR_FAILOVER_TYPE, value: start.type }] : []),
      { key: DR_REQUESTED_BY, value: start.requestedBy },
      { key: DR_OUTCOME, value: 'running' },
    ];
    upsertSearchAttributes(attributes);
    upsertMemo({ runbook: `${runbook.metadata.name} v${start.runbookVersion}`, requestedBy: start.requestedBy, ...start.memo });
  }

  get epoch(): number | undefined {
    return this.progress.epoch;
  }

  set epoch(epoch: number) {
    this.progress.epoch = epoch;
  }

  /** Runs one named step of the procedure, recording its state and duration. */
  async step<T>(name: string, run: () => Promise<T>): Promise<T> {
    const record: OperationStep = { name, state: 'running', startedAt: workflowNow(), ...(this.stageName ? { stage: this.stageName } : {}) };
    this.progress.steps.push(record);
    this.progress.phase = name;
    this.show();
    try {
      const result = await run();
      record.state = 'done';
      return result;
    } catch (error) {
      record.state = 'failed';
      record.detail = failureMessage(error);
      throw error;
    } finally {
      record.endedAt = workflowNow();
      record.durationMs = record.endedAt - record.startedAt;
    }
  }

  /**
   * A step after the operation has reached its goal that no undo could reverse (a planned
   * failback's removal of the copies it returned from): a cancel no longer interrupts it, and its
   * failure, recorded on the step, ends the operation succeeded-with-failures instead of undoing
   * the goal it reached.
   */
  async stepPastGoal(name: string, run: () => Promise<void>): Promise<void> {
    try {
      await CancellationScope.nonCancellable(() => this.step(name, run));
    } catch (error) {
      log.warn('a step past the operation\'s goal failed; nothing is undone', { step: name, error: failureMessage(error) });
    }
  }

  vm(name: string, state: OperationVmState): void {
    const vm = this.vmsByName.get(name);
    if (vm) vm.state = state;
    else {
      const added = { name, state };
      this.progress.vms.push(added);
      this.vmsByName.set(name, added);
    }
  }

  vmState(name: string): OperationVmState | undefined {
    return this.vmsByName.get(name)?.state;
  }

  rehydrated(bytes: number): void {
    this.progress.bytesRehydrated = bytes;
    this.show();
  }

  recoveringTo(point: NonNullable<OperationProgress['recoveryPoint']>): void {
    this.progress.recoveryPoint = point;
  }

  /**
   * Records what the operation is about to create, before it does: a cleanup then finds it even if
   * the creation was cut short. The names stay in the workflow (its history replays them); the
   * progress and the report count them by kind, which stays small at 10,000 VMs.
   */
  creates(resources: DrillResource[]): void {
    const counts = (this.progress.resources ??= {});
    for (const r of resources) {
      const key = `${r.kind}:${r.name}`;
      if (this.createdKeys.has(key)) continue;
      this.createdKeys.add(key);
      this.created.push(r);
      counts[r.kind] = (counts[r.kind] ?? 0) + 1;
    }
  }

  get resources(): readonly DrillResource[] {
    return this.created;
  }

  /** Milliseconds since the disaster (or the move) was declared. */
  sinceDeclared(): number {
    return workflowNow() - this.progress.declaredAt;
  }

  /**
   * The steps from here on belong to a stage of their own (a continuous failover's completion):
   * the report groups them, and RTO counts from the stage's declaration.
   */
  beginStage(name: string, declaredAt: number, type?: HandoverType): void {
    this.stageName = name;
    this.progress.declaredAt = declaredAt;
    if (type) {
      this.progress.type = type;
      upsertSearchAttributes([{ key: DR_FAILOVER_TYPE, value: type }]);
    }
    this.progress.stages = [...(this.progress.stages ?? []), { name, declaredAt }];
  }

  /** Runs the rest of the operation by another runbook version (chosen when a later stage began). */
  useRunbook(runbook: Runbook, version: number): void {
    this.runbook = runbook;
    this.progress.runbook = { name: runbook.metadata.name, version };
    this.usePowerOnPlan(powerOnPlanOf(runbook, this.domain, this.to));
  }

  /** Powers on by another plan than the runbook's as it is written (a drill's, under the drill's VM names). */
  usePowerOnPlan(input: PowerOnPlanInput): void {
    this.planInput = input;
    this.plan = newPlanProgress(input);
    setHandler(powerOnPlanProgressQuery, () => this.plan);
  }

  /** A continuous operation's view of its target disks: lag, position, members. */
  following(status: FollowingStatus): void {
    this.progress.following = status;
    this.show();
  }

  get runbookVersion(): number {
    return this.progress.runbook.version;
  }

  /** A failover kept open after it succeeded: its commit window, as it stands. */
  commitWindow(status: CommitWindowStatus): void {
    this.progress.commitWindow = { ...status };
    this.progress.phase = status.state === 'open' ? 'commit window open' : `commit window: ${status.state}`;
    this.show();
  }

  /** What continue-as-new carries so that the next run reports the same operation. */
  snapshot(): OperationProgress {
    return this.progress;
  }

  /**
   * Runs the operation's procedure. Success: outcome `succeeded` and the report. Failure or
   * cancellation: the compensations are unwound, the VMs they removed are marked so, and the
   * workflow fails with OPERATION_ABORTED carrying the report (or is cancelled).
   */
  async run(procedure: () => Promise<OperationMeasures>): Promise<OperationReport> {
    let measures: OperationMeasures;
    try {
      measures = await procedure();
    } catch (error) {
      if (error instanceof ContinueAsNew) throw error;
      const cancelled = isCancellation(error) || CancellationScope.current().consideredCancelled;
      this.progress.outcome = cancelled ? 'cancelled' : 'aborted';
      this.progress.phase = `compensating after: ${failureMessage(error)}`;
      this.show();
      const compensation = await this.undo.unwind();
      for (const vm of this.progress.vms) if (vm.state !== 'protected' && vm.state !== 'shutDown') vm.state = 'removed';
      upsertSearchAttributes([{ key: DR_OUTCOME, value: this.progress.outcome }]);
      if (cancelled) throw error;
      const report = this.report({ failure: failureMessage(error), compensation });
      throw ApplicationFailure.create({
        type: OPERATION_ABORTED,
        nonRetryable: true,
        message: `${this.title()} aborted (${report.failure}); undone: ${compensation.undone.join('; ') || 'nothing'}; remains: ${compensation.remains.join('; ') || 'nothing'}`,
        details: [report],
      });
    }
    const failed = this.progress.vms.some((vm) => vm.state === 'failed') || this.progress.steps.some((step) => step.state === 'failed');
    this.progress.outcome = failed ? 'succeeded-with-failures' : 'succeeded';
    this.progress.phase = 'done';
    this.show();
    upsertSearchAttributes([{ key: DR_OUTCOME, value: this.progress.outcome }]);
    return this.report(measures);
  }

  title(): string {
    return `${this.progress.type ? `${this.progress.type} ` : ''}${this.start.operation} of ${this.domain}`;
  }

  private show(): void {
    const { runbook, phase, steps, bytesRehydrated, following, commitWindow } = this.progress;
    setCurrentDetails(
      `**${this.title()}**: ${this.from} → ${this.to} (runbook ${runbook.name} v${runbook.version})\n\n` +
        (this.start.about ? `${this.start.about}\n\n` : '') +
        `phase: **${phase}** (${steps.length} step(s) so far), ${bytesRehydrated} bytes rehydrated` +
        (following ? `\n\n${describeFollowing(following)}` : '') +
        (commitWindow ? `\n\ncommit window: **${describeCommitWindow(commitWindow)}**` : ''),
    );
  }

  private report(extra: Partial<OperationReport>): OperationReport {
    const { phase: _phase, elapsedMs: _elapsed, rtoSoFarMs: _rto, ...rest } = this.progress;
    return { ...rest, endedAt: workflowNow(), ...extra };
  }
}

function powerOnPlanOf(runbook: Runbook, domain: string, site: string): PowerOnPlanInput {
  return { domain, site, ...powerOnPlanAt(runbook, site) };
}

function describeFollowing(f: FollowingStatus): string {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return (
    `mode: **${f.mode}** · ${f.vms} VM(s), ${f.disks} disk(s) at the recovery site\n\n` +
    `lag: **${seconds(f.lag.ms)}**, ${f.lag.bytes} bytes in ${f.lag.segments} segment(s) behind the end of the log` +
    (f.heldAt ? ` (held: ${f.heldAt})` : '')
  );
}
