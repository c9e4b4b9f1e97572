import { executeChild, isCancellation, patched, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { failure } from '../common/failures';
import { powerOnOrder, PowerOnOrderError } from '../runbooks/power-on-order';
import type { Runbook, RunbookGroup } from '../runbooks/schema';
import type { OperationOutcome } from './operation-messages';
import { powerOnGroup } from './power-on-group';
import { PowerOnGroupRun, type PowerOnGroupInput, type PowerOnGroupResult } from './power-on-group-run';
import { powerOnPlanProgressQuery, type PowerOnPlanProgress } from './power-on-messages';
import { DR_DOMAIN, DR_OPERATION, DR_OUTCOME, DR_SITE } from './search-attributes';
import { powerOnBatchWorkflowId, powerOnGroupWorkflowId } from './workflow-ids';

export interface PowerOnPlanInput {
  domain: string;
  site: string;
  powerOn: Runbook['spec']['powerOn'];
  leavePoweredOff: string[];
}

/**
 * Runs a runbook's power-on plan from inside an operation's workflow: each group starts as soon
 * as every group it depends on has finished, groups without a mutual dependency run side by
 * side, and a group that aborts fails the plan (the operation then compensates). The plan's
 * global parallelism caps each group's own.
 */
export async function runPowerOnPlan(input: PowerOnPlanInput, progress: PowerOnPlanProgress = newPlanProgress(input)): Promise<PowerOnGroupResult[]> {
  const { groups } = input.powerOn;
  refuseBadOrder(groups);
  const byName = new Map(groups.map((g) => [g.name, g]));
  const running = new Map<string, Promise<PowerOnGroupResult>>();
  const stateOf = (name: string) => progress.groups.find((g) => g.name === name)!;
  const inOperation = patched('small-groups-power-on-in-operation') ? groupsPoweredOnInOperation(groups) : asChildrenAsBefore(progress);

  function run(group: RunbookGroup): Promise<PowerOnGroupResult> {
    let started = running.get(group.name);
    if (!started) {
      started = (async () => {
        await Promise.all(group.dependsOn.map((d) => run(byName.get(d)!)));
        const state = stateOf(group.name);
        state.state = 'running';
        try {
          const position = { index: groups.indexOf(group) + 1, total: groups.length };
          const finished = inOperation.has(group.name) ? await powerOnGroupInOperation(input, group, position, state) : await powerOnGroupAsChildren(input, group, position, state);
          state.state = 'done';
          return finished;
        } catch (error) {
          state.state = 'failed';
          throw error;
        }
      })();
      running.set(group.name, started);
    }
    return started;
  }

  const results = await Promise.all(groups.map(run));
  return results;
}

/**
 * VMs an operation powers on inside its own workflow rather than in a child per group: a child
 * costs Temporal some 20 history events and 5 workflow tasks (its own and its parent's) above its
 * VMs' activities: fifty 20-VM domains of 4 groups failing over at once took 2,480 workflow tasks
 * with a child per group, 1,800 without (bench/results/README.md, concurrent-domains). A hundred
 * VMs' power-ons (at most some 10 events each with a delay and a heartbeat wait) keep the
 * operation's history bounded.
 */
export const VMS_POWERED_ON_IN_OPERATION = 100;

/**
 * The groups powered on inside the operation's workflow: those that need nobody (no approval or
 * webhook steps, no VM or group paused on failure, so no operator message to address), in the
 * runbook's order while their VMs fit VMS_POWERED_ON_IN_OPERATION. Every other group is a child,
 * its own timeline in the Web UI.
 */
export function groupsPoweredOnInOperation(groups: RunbookGroup[]): Set<string> {
  const needsNobody = (group: RunbookGroup) => !group.before.length && !group.after.length && group.onFailure !== 'pause' && group.vms.every((vm) => vm.onFailure !== 'pause');
  return fillingTheOperation(groups.filter(needsNobody));
}

/** Of groups that need nobody, those whose VMs fit VMS_POWERED_ON_IN_OPERATION, in order. */
export function fillingTheOperation(groups: Array<{ name: string; vms: unknown[] }>): Set<string> {
  const chosen = new Set<string>();
  let room = VMS_POWERED_ON_IN_OPERATION;
  for (const group of groups) {
    if (group.vms.length > room) continue;
    chosen.add(group.name);
    room -= group.vms.length;
  }
  return chosen;
}

/** Runs from before groups powered on inside the operation replay with a child for each group. */
function asChildrenAsBefore(progress: PowerOnPlanProgress): Set<string> {
  const parentId = workflowInfo().workflowId;
  for (const state of progress.groups) Object.assign(state, { workflowId: powerOnGroupWorkflowId(parentId, state.name) });
  return new Set();
}

/** A group that needs nobody, powered on by the operation itself; its progress is part of the plan's (there is no child to ask). */
async function powerOnGroupInOperation(input: PowerOnPlanInput, group: RunbookGroup, position: PowerOnGroupInput['position'], state: PowerOnPlanProgress['groups'][number]): Promise<PowerOnGroupResult> {
  const maxParallel = Math.min(group.maxParallel, input.powerOn.maxParallel);
  const run = new PowerOnGroupRun({ domain: input.domain, site: input.site, group, maxParallel, leavePoweredOff: input.leavePoweredOff, position }, workflowInfo().workflowId, () => undefined);
  state.inOperation = run.progress;
  return run.run();
}

/**
 * VMs per power-on child: a bigger group runs as batches of this many, one child after the other
 * (`…/power-on/<group>/batch-<i>-of-<n>`), so that no child's history grows with the group (with
 * delays and heartbeat waits some 10 events per VM: 5,000 a batch, where Temporal ends a history at
 * 51,200). One after the other keeps the group's order and its `maxParallel`.
 */
export const POWER_ON_BATCH_VMS = 500;

/**
 * A group's VMs powered on by one child workflow, or (more than POWER_ON_BATCH_VMS) by a child per
 * batch: the first runs the group's `before` steps, the last its `after` steps, and the group is
 * done when the last is. `state`: the group's entry in the plan's progress, which names the
 * batch under way (operators' approvals and decisions go to it). Runs from before batching start
 * one child per group, as they did.
 */
async function powerOnGroupAsChildren(input: PowerOnPlanInput, group: RunbookGroup, position: PowerOnGroupInput['position'], state: PowerOnPlanProgress['groups'][number]): Promise<PowerOnGroupResult> {
  const parentId = workflowInfo().workflowId;
  const maxParallel = Math.min(group.maxParallel, input.powerOn.maxParallel);
  const after = group.dependsOn.length ? `, after ${group.dependsOn.join(', ')}` : '';
  const searchAttributes = [
    { key: DR_DOMAIN, value: input.domain },
    { key: DR_OPERATION, value: 'power-on-group' },
    { key: DR_SITE, value: input.site },
  ];
  if (!patched('power-on-in-batches') || group.vms.length <= POWER_ON_BATCH_VMS) {
    return executeChild(powerOnGroup, {
      workflowId: powerOnGroupWorkflowId(parentId, group.name),
      args: [{ domain: input.domain, site: input.site, group, maxParallel, leavePoweredOff: input.leavePoweredOff, position }],
      staticSummary: `Power on group ${group.name} of ${input.domain} at ${input.site}: ${group.vms.length} VM(s)${after}`,
      typedSearchAttributes: searchAttributes,
    });
  }
  const total = Math.ceil(group.vms.length / POWER_ON_BATCH_VMS);
  const results: PowerOnGroupResult[] = [];
  for (let index = 1; index <= total; index++) {
    const vmsBefore = (index - 1) * POWER_ON_BATCH_VMS;
    const vms = group.vms.slice(vmsBefore, vmsBefore + POWER_ON_BATCH_VMS);
    const names = new Set(vms.map((vm) => vm.name));
    const part: RunbookGroup = { ...group, vms, before: index === 1 ? group.before : [], after: index === total ? group.after : [] };
    const workflowId = powerOnBatchWorkflowId(parentId, group.name, { index, total });
    Object.assign(state, { workflowId, batch: { index, total } });
    results.push(
      await executeChild(powerOnGroup, {
        workflowId,
        args: [{ domain: input.domain, site: input.site, group: part, maxParallel, leavePoweredOff: input.leavePoweredOff.filter((vm) => names.has(vm)), position, batch: { index, total, vmsBefore, groupVms: group.vms.length } }],
        staticSummary: `Power on group ${group.name} of ${input.domain} at ${input.site}: VMs ${vmsBefore + 1}–${vmsBefore + vms.length} of ${group.vms.length} (batch ${index} of ${total})${after}`,
        typedSearchAttributes: searchAttributes,
      }),
    );
  }
  return { group: group.name, workflowId: powerOnGroupWorkflowId(parentId, group.name), vms: results.flatMap((r) => r.vms), steps: results.flatMap((r) => r.steps) };
}

/** The runbook was validated when stored; a plan that still names an unknown group or a cycle fails the operation by name. */
function refuseBadOrder(groups: RunbookGroup[]): void {
  try {
    powerOnOrder(groups);
  } catch (error) {
    if (error instanceof PowerOnOrderError) throw failure('RunbookMismatch', error.message);
    throw error;
  }
}

export function newPlanProgress(input: PowerOnPlanInput): PowerOnPlanProgress {
  const parentId = workflowInfo().workflowId;
  const inOperation = groupsPoweredOnInOperation(input.powerOn.groups);
  return {
    groups: input.powerOn.groups.map((g) => ({ name: g.name, workflowId: inOperation.has(g.name) ? parentId : powerOnGroupWorkflowId(parentId, g.name), dependsOn: g.dependsOn, state: 'waiting' })),
  };
}

/**
 * Power on a domain's VMs at a site by its runbook's plan, on its own (e.g. after VMs were
 * registered by hand). Failover and the other operations run the same plan inside themselves.
 */
export async function powerOnPlan(input: PowerOnPlanInput): Promise<PowerOnGroupResult[]> {
  upsertSearchAttributes([
    { key: DR_DOMAIN, value: input.domain },
    { key: DR_OPERATION, value: 'power-on' },
    { key: DR_SITE, value: input.site },
  ]);
  setCurrentDetails(`powering on ${input.domain} at ${input.site}: ${input.powerOn.groups.length} group(s)`);
  const progress = newPlanProgress(input);
  setHandler(powerOnPlanProgressQuery, () => progress);
  try {
    const results = await runPowerOnPlan(input, progress);
    const failed = results.some((g) => g.vms.some((v) => v.state === 'failed' || v.state === 'skipped') || g.steps.some((s) => s.state === 'failed' || s.state === 'skipped'));
    upsertSearchAttributes([{ key: DR_OUTCOME, value: (failed ? 'succeeded-with-failures' : 'succeeded') satisfies OperationOutcome }]);
    return results;
  } catch (error) {
    upsertSearchAttributes([{ key: DR_OUTCOME, value: (isCancellation(error) ? 'cancelled' : 'aborted') satisfies OperationOutcome }]);
    throw error;
  }
}
