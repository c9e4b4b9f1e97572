import { executeChild, isCancellation, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { failure } from '../common/failures';
import { powerOnOrder, PowerOnOrderError } from '../runbooks/power-on-order';
import type { Runbook, RunbookGroup } from '../runbooks/schema';
import type { OperationOutcome } from './operation-messages';
import { powerOnGroup, type PowerOnGroupResult } from './power-on-group';
import { powerOnPlanProgressQuery, type PowerOnPlanProgress } from './power-on-messages';
import { DR_DOMAIN, DR_OPERATION, DR_OUTCOME, DR_SITE } from './search-attributes';
import { powerOnGroupWorkflowId } from './workflow-ids';

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
  const parentId = workflowInfo().workflowId;
  const stateOf = (name: string) => progress.groups.find((g) => g.name === name)!;

  function run(group: RunbookGroup): Promise<PowerOnGroupResult> {
    let started = running.get(group.name);
    if (!started) {
      started = (async () => {
        await Promise.all(group.dependsOn.map((d) => run(byName.get(d)!)));
        const index = groups.indexOf(group) + 1;
        stateOf(group.name).state = 'running';
        const result = executeChild(powerOnGroup, {
          workflowId: powerOnGroupWorkflowId(parentId, group.name),
          args: [
            {
              domain: input.domain,
              site: input.site,
              group,
              maxParallel: Math.min(group.maxParallel, input.powerOn.maxParallel),
              leavePoweredOff: input.leavePoweredOff,
              position: { index, total: groups.length },
            },
          ],
          staticSummary: `Power on group ${group.name} of ${input.domain} at ${input.site}: ${group.vms.length} VM(s)${group.dependsOn.length ? `, after ${group.dependsOn.join(', ')}` : ''}`,
          typedSearchAttributes: [
            { key: DR_DOMAIN, value: input.domain },
            { key: DR_OPERATION, value: 'power-on-group' },
            { key: DR_SITE, value: input.site },
          ],
        });
        try {
          const finished = await result;
          stateOf(group.name).state = 'done';
          return finished;
        } catch (error) {
          stateOf(group.name).state = 'failed';
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
  return {
    groups: input.powerOn.groups.map((g) => ({ name: g.name, workflowId: powerOnGroupWorkflowId(parentId, g.name), dependsOn: g.dependsOn, state: 'waiting' })),
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
