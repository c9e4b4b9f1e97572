import { ApplicationFailure, condition, proxyActivities, setCurrentDetails, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { VmPowerActivities } from '../activities/vm-power';
import type { RunbookGroup, RunbookStep, RunbookWebhookStep } from '../runbooks/schema';
import { parseDuration } from '../runbooks/units';
import { workflowNow } from './clock';
import { FailurePolicyRunner } from './failure-policy';
import { callWebhookStep } from './webhook-step';
import {
  approveUpdate,
  NOT_AN_APPROVER,
  NOT_WAITING,
  operatorDecisionUpdate,
  powerOnGroupProgressQuery,
  type ApprovalInput,
  type OperatorDecisionInput,
  type PowerOnGroupProgress,
} from './power-on-messages';
import { siteTaskQueue } from './task-queues';
import { CANNOT_HEAL, failure } from '../common/failures';

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
 * guest heartbeats), then its `after` steps. Runs as a child workflow so that the Web UI shows
 * every group as its own timeline; operators approve and decide through updates sent to it.
 */
export async function powerOnGroup(input: PowerOnGroupInput): Promise<PowerOnGroupResult> {
  const { group, site } = input;
  const progress: PowerOnGroupProgress = {
    group: group.name,
    workflowId: workflowInfo().workflowId,
    vms: group.vms.map((vm) => ({ name: vm.name, state: 'pending' })),
    steps: [...group.before, ...group.after].map((s) => ({ name: s.name, type: s.type, state: 'pending' })),
    pausedOn: [],
  };
  const policy = new FailurePolicyRunner();
  let approval: ApprovalInput | undefined;
  const vmStates = new Map(progress.vms.map((v) => [v.name, v]));
  const vmState = (name: string) => vmStates.get(name)!;
  const leftPoweredOff = new Set(input.leavePoweredOff);
  const stepState = (name: string) => progress.steps.find((s) => s.name === name)!;

  setHandler(powerOnGroupProgressQuery, () => ({ ...progress, pausedOn: policy.pausedTargets() }));
  setHandler(
    approveUpdate,
    (decision) => {
      approval = decision;
      return { accepted: true };
    },
    {
      validator: (decision: ApprovalInput) => {
        const waiting = progress.waitingForApproval;
        if (!waiting || waiting.step !== decision.step) {
          throw ApplicationFailure.create({ type: NOT_WAITING, message: `step "${decision.step}" of group ${group.name} is not waiting for approval` });
        }
        if (!waiting.approvers.includes(decision.approver)) {
          throw ApplicationFailure.create({
            type: NOT_AN_APPROVER,
            message: `"${decision.approver}" may not approve step "${decision.step}"; approvers: ${waiting.approvers.join(', ')}`,
          });
        }
      },
    },
  );
  setHandler(
    operatorDecisionUpdate,
    (decision) => {
      policy.decide(decision.target, decision.action);
      return { accepted: true };
    },
    {
      validator: (decision: OperatorDecisionInput) => {
        if (!policy.isPaused(decision.target)) {
          throw ApplicationFailure.create({ type: NOT_WAITING, message: `"${decision.target}" in group ${group.name} is not paused` });
        }
      },
    },
  );

  const power = proxyActivities<VmPowerActivities>({
    taskQueue: siteTaskQueue(site),
    // A power-on is one short site call; a worker that dies during it is noticed after this long.
    startToCloseTimeout: '30 seconds',
    retry: UNTIL_THE_SITE_ANSWERS,
  });

  const { batch } = input;
  const inBatch = batch ? `, batch ${batch.index} of ${batch.total}` : '';
  const show = (what: string) => setCurrentDetails(`**group ${group.name}** (${input.position.index}/${input.position.total}${inBatch}) — ${what}`);

  async function approvalStep(step: Extract<RunbookStep, { type: 'approval' }>): Promise<void> {
    approval = undefined;
    const since = workflowNow();
    progress.waitingForApproval = { step: step.name, approvers: step.approvers, since, ...(step.message ? { message: step.message } : {}) };
    stepState(step.name).state = 'waitingForApproval';
    show(`waiting for approval of **${step.name}** by ${step.approvers.join(' or ')}`);
    try {
      const answered = await condition(() => approval !== undefined, durationMs(step.timeout));
      if (!answered) throw failure('ApprovalTimedOut', `nobody approved within ${step.timeout}`);
      const given = approval!;
      if (given.decision === 'reject') {
        throw failure('ApprovalRejected', `rejected by ${given.approver}${given.comment ? `: ${given.comment}` : ''}`);
      }
      stepState(step.name).approvedBy = given.approver;
    } finally {
      progress.waitingForApproval = undefined;
    }
  }

  async function webhookStep(step: RunbookWebhookStep): Promise<void> {
    show(`webhook **${step.name}**`);
    await callWebhookStep(site, step, `${workflowInfo().workflowId}/${step.name}`);
  }

  async function runSteps(steps: RunbookStep[]): Promise<void> {
    for (const step of steps) {
      const state = stepState(step.name);
      state.state = 'running';
      const outcome = await policy.run(
        step.name,
        step.onFailure,
        () => (step.type === 'approval' ? approvalStep(step) : webhookStep(step)),
        (message) => {
          state.state = 'failed';
          state.error = message;
        },
      );
      state.state = outcome;
    }
  }

  async function startVm(vm: RunbookGroup['vms'][number], ordinal: number): Promise<void> {
    const state = vmState(vm.name);
    if (leftPoweredOff.has(vm.name)) {
      state.state = 'leftPoweredOff';
      return;
    }
    const outcome = await policy.run(
      vm.name,
      vm.onFailure ?? group.onFailure,
      async () => {
        state.state = 'poweringOn';
        state.error = undefined;
        show(`powering on ${vm.name}`);
        await power.powerOnVm.executeWithOptions({ summary: `power on ${vm.name} (group ${group.name}, ${ordinal + (batch?.vmsBefore ?? 0)}/${batch?.groupVms ?? group.vms.length})` }, [{ vm: vm.name }]);
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

  await runSteps(group.before);
  const queue = group.vms.map((vm, i) => ({ vm, ordinal: i + 1 }));
  const lanes = Array.from({ length: Math.min(input.maxParallel, queue.length) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await startVm(next.vm, next.ordinal);
  });
  await Promise.all(lanes);
  await runSteps(group.after);
  show('done');
  return { group: progress.group, workflowId: progress.workflowId, vms: progress.vms, steps: progress.steps };
}
