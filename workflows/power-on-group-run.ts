import { ApplicationFailure, condition, proxyActivities, sleep, type ActivityInterfaceFor } from '@temporalio/workflow';
import type { VmPowerActivities } from '../activities/vm-power';
import { CANNOT_HEAL, failure } from '../common/failures';
import type { RunbookGroup, RunbookStep, RunbookWebhookStep } from '../runbooks/schema';
import { parseDuration } from '../runbooks/units';
import { workflowNow } from './clock';
import { FailurePolicyRunner } from './failure-policy';
import { NOT_AN_APPROVER, NOT_WAITING, type ApprovalInput, type OperatorDecisionInput, type PowerOnGroupProgress } from './power-on-messages';
import { siteTaskQueue } from './task-queues';
import { callWebhookStep } from './webhook-step';

export interface PowerOnGroupInput {
  domain: string;
  /** The site whose VMs are powered on (its worker runs the activities). */
  site: string;
  group: RunbookGroup;
  /** The group's own limit, already capped by the plan's global limit. */
  maxParallel: number;
  /** VMs whose runbook startup action is poweredOff: registered, never started. */
  leavePoweredOff: string[];
  position: { index: number; total: number };
  /**
   * A group too big for one child runs in batches (`runPowerOnPlan`): `group` is then this batch's
   * part (its VMs; the `before` steps in the first batch, the `after` steps in the last), and VMs
   * are numbered in the whole group.
   */
  batch?: { index: number; total: number; vmsBefore: number; groupVms: number };
}

export type PowerOnGroupResult = Omit<PowerOnGroupProgress, 'waitingForApproval' | 'pausedOn'>;

const durationMs = (text: string) => parseDuration(text) ?? 0;

/**
 * A VM's power-on and heartbeat wait retry what can heal for at least five minutes (1 s, doubling
 * to 10 s between tries): a site unreachable for a while delays the VM, and only an outage that
 * long fails it under the runbook's policy (with five tries, 15 s of outage aborted a failover).
 */
const UNTIL_THE_SITE_ANSWERS = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 32, nonRetryableErrorTypes: CANNOT_HEAL };

/**
 * One power-on group of a runbook: its `before` steps in order, then its VMs (at most
 * `maxParallel` at a time; each powered on, given its delay, and optionally awaited until the
 * guest heartbeats), then its `after` steps. `workflowId`: the workflow it runs in (the group's
 * child, or the operation itself for a group `runsInOperation` allows); `show` tells the Web UI
 * what it is doing. Approvals and operator decisions reach it through the methods below.
 */
export class PowerOnGroupRun {
  readonly progress: PowerOnGroupProgress;
  private readonly policy = new FailurePolicyRunner();
  private approval: ApprovalInput | undefined;
  private readonly vmStates: Map<string, PowerOnGroupProgress['vms'][number]>;
  private readonly leftPoweredOff: Set<string>;
  private readonly power: ActivityInterfaceFor<VmPowerActivities>;

  constructor(
    private readonly input: PowerOnGroupInput,
    workflowId: string,
    private readonly show: (what: string) => void,
  ) {
    const { group } = input;
    this.progress = {
      group: group.name,
      workflowId,
      vms: group.vms.map((vm) => ({ name: vm.name, state: 'pending' })),
      steps: [...group.before, ...group.after].map((s) => ({ name: s.name, type: s.type, state: 'pending' })),
      pausedOn: [],
    };
    this.vmStates = new Map(this.progress.vms.map((v) => [v.name, v]));
    this.leftPoweredOff = new Set(input.leavePoweredOff);
    this.power = proxyActivities<VmPowerActivities>({
      taskQueue: siteTaskQueue(input.site),
      // A power-on is one short site call; a worker that dies during it is noticed after this long.
      startToCloseTimeout: '30 seconds',
      retry: UNTIL_THE_SITE_ANSWERS,
    });
  }

  /** What the group's progress query answers. */
  snapshot(): PowerOnGroupProgress {
    return { ...this.progress, pausedOn: this.policy.pausedTargets() };
  }

  refuseApprovalUnlessWaiting(decision: ApprovalInput): void {
    const waiting = this.progress.waitingForApproval;
    if (!waiting || waiting.step !== decision.step) {
      throw ApplicationFailure.create({ type: NOT_WAITING, message: `step "${decision.step}" of group ${this.input.group.name} is not waiting for approval` });
    }
    if (!waiting.approvers.includes(decision.approver)) {
      throw ApplicationFailure.create({
        type: NOT_AN_APPROVER,
        message: `"${decision.approver}" may not approve step "${decision.step}"; approvers: ${waiting.approvers.join(', ')}`,
      });
    }
  }

  approve(decision: ApprovalInput): void {
    this.approval = decision;
  }

  refuseDecisionUnlessPaused(decision: OperatorDecisionInput): void {
    if (!this.policy.isPaused(decision.target)) {
      throw ApplicationFailure.create({ type: NOT_WAITING, message: `"${decision.target}" in group ${this.input.group.name} is not paused` });
    }
  }

  decide(decision: OperatorDecisionInput): void {
    this.policy.decide(decision.target, decision.action);
  }

  async run(): Promise<PowerOnGroupResult> {
    const { group, maxParallel } = this.input;
    await this.runSteps(group.before);
    const queue = group.vms.map((vm, i) => ({ vm, ordinal: i + 1 }));
    const lanes = Array.from({ length: Math.min(maxParallel, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await this.startVm(next.vm, next.ordinal);
    });
    await Promise.all(lanes);
    await this.runSteps(group.after);
    this.show('done');
    const { progress } = this;
    return { group: progress.group, workflowId: progress.workflowId, vms: progress.vms, steps: progress.steps };
  }

  private stepState(name: string) {
    return this.progress.steps.find((s) => s.name === name)!;
  }

  private async approvalStep(step: Extract<RunbookStep, { type: 'approval' }>): Promise<void> {
    this.approval = undefined;
    const since = workflowNow();
    this.progress.waitingForApproval = { step: step.name, approvers: step.approvers, since, ...(step.message ? { message: step.message } : {}) };
    this.stepState(step.name).state = 'waitingForApproval';
    this.show(`waiting for approval of **${step.name}** by ${step.approvers.join(' or ')}`);
    try {
      const answered = await condition(() => this.approval !== undefined, durationMs(step.timeout));
      if (!answered) throw failure('ApprovalTimedOut', `nobody approved within ${step.timeout}`);
      const given = this.approval!;
      if (given.decision === 'reject') {
        throw failure('ApprovalRejected', `rejected by ${given.approver}${given.comment ? `: ${given.comment}` : ''}`);
      }
      this.stepState(step.name).approvedBy = given.approver;
    } finally {
      this.progress.waitingForApproval = undefined;
    }
  }

  private async webhookStep(step: RunbookWebhookStep): Promise<void> {
    this.show(`webhook **${step.name}**`);
    await callWebhookStep(this.input.site, step, `${this.progress.workflowId}/${step.name}`);
  }

  private async runSteps(steps: RunbookStep[]): Promise<void> {
    for (const step of steps) {
      const state = this.stepState(step.name);
      state.state = 'running';
      const outcome = await this.policy.run(
        step.name,
        step.onFailure,
        () => (step.type === 'approval' ? this.approvalStep(step) : this.webhookStep(step)),
        (message) => {
          state.state = 'failed';
          state.error = message;
        },
      );
      state.state = outcome;
    }
  }

  private async startVm(vm: RunbookGroup['vms'][number], ordinal: number): Promise<void> {
    const { group, batch, site } = this.input;
    const state = this.vmStates.get(vm.name)!;
    if (this.leftPoweredOff.has(vm.name)) {
      state.state = 'leftPoweredOff';
      return;
    }
    const outcome = await this.policy.run(
      vm.name,
      vm.onFailure ?? group.onFailure,
      async () => {
        state.state = 'poweringOn';
        state.error = undefined;
        this.show(`powering on ${vm.name}`);
        await this.power.powerOnVm.executeWithOptions({ summary: `power on ${vm.name} (group ${group.name}, ${ordinal + (batch?.vmsBefore ?? 0)}/${batch?.groupVms ?? group.vms.length})` }, [{ vm: vm.name }]);
        state.startedAt = workflowNow();
        const delay = durationMs(vm.delayAfterPowerOn);
        if (delay > 0) {
          state.state = 'delaying';
          await sleep(delay, { summary: `${vm.name}: delay ${vm.delayAfterPowerOn} after power-on` });
        }
        if (vm.waitForHeartbeat) {
          state.state = 'waitingForHeartbeat';
          const timeout = durationMs(vm.heartbeatTimeout);
          const { waitForGuestHeartbeat } = proxyActivities<VmPowerActivities>({
            taskQueue: siteTaskQueue(site),
            startToCloseTimeout: timeout + 30_000,
            heartbeatTimeout: '20s',
            retry: UNTIL_THE_SITE_ANSWERS,
          });
          await waitForGuestHeartbeat.executeWithOptions(
            { summary: `wait for ${vm.name} guest heartbeat (up to ${vm.heartbeatTimeout})` },
            [{ vm: vm.name, notAfter: workflowNow() + timeout }],
          );
        }
      },
      (message) => {
        state.state = 'failed';
        state.error = message;
      },
    );
    state.state = outcome === 'done' ? 'poweredOn' : outcome;
  }
}
