/**
 * The limit of bench/failover-overhead.ts: the DAG of a forced failover (workflows/failover.ts
 * with its power-on plan, workflows/power-on-plan.ts and power-on-group.ts), scheduled as it
 * schedules it (same activity types, order, parallelism, task queue per site, child workflow per
 * power-on group, abandoned protection child, cancelled primary protection) but with activities
 * that do nothing (bench/workflows/noop-worker.ts). Bench-only: never part of workflows/index.ts.
 * Workflow code: the same sandbox rules as workflows/ apply (no Node built-ins, no client/worker).
 */
import { executeChild, getExternalWorkflowHandle, ParentClosePolicy, proxyActivities, condition, startChild, workflowInfo, setHandler, defineSignal, type ActivityOptions } from '@temporalio/workflow';
import { RECOVERY_POINT_VMS_PER_PAGE } from '../../workflows/phases/rebuild';
import { fillingTheOperation, POWER_ON_BATCH_VMS } from '../../workflows/power-on-plan';
import { forEachBatch } from '../../workflows/vm-fan-out';

export interface NoopGroup {
  name: string;
  dependsOn: string[];
  vms: string[];
  /** The group's own limit already capped by the plan's, as runPowerOnPlan computes it. */
  maxParallel: number;
}

export interface NoopFailoverInput {
  domain: string;
  /** Site names: activities run on their task queues (`site.<name>`), served by no-op workers. */
  recoverySite: string;
  vms: Array<{ name: string; diskIds: string[] }>;
  groups: NoopGroup[];
  /** The primary's (no-op) protection workflow, cancelled as a forced failover cancels the fenced one. */
  primaryProtectionId: string;
  /** The stored runbook's name and the length of its JSON: the failover reads it page by page (workflows/phases/runbook.ts), so does the DAG. */
  runbook: { name: string; chars: number };
}

/** The no-op activities: the failover's activity type names, so that histories compare by type. */
export interface NoopActivities {
  readRunbookPage(input: { name: string; version: number; page: number; chars: number }): Promise<{ text: string; pages: number }>;
  describeDomain(input: { domain: string }): Promise<{ vms: string[] }>;
  claimDomain(input: { domain: string; site: string; takeover: boolean }): Promise<{ won: boolean; epoch: number }>;
  recordDeparture(input: { domain: string }): Promise<void>;
  resolveRecoveryPoint(input: { domain: string }): Promise<{ ok: true }>;
  readRecoveryPointVms(input: { domain: string; from: number; count: number }): Promise<void>;
  deployRocva(input: { name: string }): Promise<void>;
  findExisting(input: { vms: string[] }): Promise<void>;
  prepareTargetDisksOfBatch(input: { vms: Array<{ vm: string; disks: string[] }> }): Promise<void>;
  rehydrateDomain(input: { domain: string }): Promise<{ bytesWritten: number }>;
  removeRepresentationVmsOfBatch(input: { vms: Array<{ vm: string }> }): Promise<void>;
  registerRecoveredVmsOfBatch(input: { vms: Array<{ vm: string }> }): Promise<void>;
  protectRecoveredDisks(input: { diskIds: string[] }): Promise<{ cursor: number }>;
  recordArrival(input: { domain: string }): Promise<void>;
  powerOnVm(input: { vm: string }): Promise<void>;
  destroyRocva(input: { name: string }): Promise<void>;
  setDomainStatus(input: { domain: string }): Promise<void>;
}

const siteQueue = (site: string) => `site.${site}`;

/** The same options as the failover's activitiesAt(recovery), batchActivitiesAt(recovery) and the power-on group's proxy. */
function activitiesAt(site: string, timeouts: Pick<ActivityOptions, 'startToCloseTimeout' | 'heartbeatTimeout'> = { startToCloseTimeout: '30 seconds' }) {
  return proxyActivities<NoopActivities>({
    taskQueue: siteQueue(site),
    ...timeouts,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
}

const stopSignal = defineSignal('stopNoopProtection');

/** Stands in for a protect workflow: idles until cancelled or signalled. */
export async function noopProtect(): Promise<void> {
  let stop = false;
  setHandler(stopSignal, () => {
    stop = true;
  });
  await condition(() => stop);
}

export async function noopPowerOnGroup(input: { site: string; group: NoopGroup }): Promise<number> {
  const power = proxyActivities<NoopActivities>({
    taskQueue: siteQueue(input.site),
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
  });
  const queue = input.group.vms.map((vm, i) => ({ vm, ordinal: i + 1 }));
  const total = queue.length;
  let started = 0;
  const lanes = Array.from({ length: Math.min(input.group.maxParallel, queue.length) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      await power.powerOnVm.executeWithOptions({ summary: `power on ${next.vm} (group ${input.group.name}, ${next.ordinal}/${total})` }, [{ vm: next.vm }]);
      started++;
    }
  });
  await Promise.all(lanes);
  return started;
}

export async function noopFailover(input: NoopFailoverInput): Promise<{ poweredOn: number }> {
  const { domain, recoverySite: recovery } = input;
  const { workflowId, runId } = workflowInfo();
  const at = activitiesAt(recovery);

  // readRunbook: the orchestration worker serves the pages, each as long as the runbook's.
  const { readRunbookPage } = proxyActivities<NoopActivities>({ startToCloseTimeout: '1 minute', retry: { initialInterval: '1 second', maximumInterval: '10 seconds' } });
  const { name, chars } = input.runbook;
  const read = (page: number) => readRunbookPage.executeWithOptions({ summary: `read runbook ${name} v1${page > 0 ? ` (page ${page + 1})` : ''}` }, [{ name, version: 1, page, chars }]);
  const first = await read(0);
  for (let page = 1; page < first.pages; page++) await read(page);

  await at.describeDomain.executeWithOptions({ summary: `read ${domain}'s ownership` }, [{ domain }]);
  const claimed = await at.claimDomain.executeWithOptions({ summary: `take ${domain} over` }, [{ domain, site: recovery, takeover: true }]);
  await getExternalWorkflowHandle(input.primaryProtectionId).cancel().catch(() => undefined);
  await at.recordDeparture.executeWithOptions({ summary: `record where ${domain}'s chain was sealed` }, [{ domain }]);
  await at.resolveRecoveryPoint.executeWithOptions({ summary: `resolve the recovery point of ${domain}` }, [{ domain }]);
  for (let from = 0; from < input.vms.length; from += RECOVERY_POINT_VMS_PER_PAGE) {
    await at.readRecoveryPointVms.executeWithOptions({ summary: `read VMs from ${from + 1} of the recovery point of ${domain}` }, [{ domain, from, count: RECOVERY_POINT_VMS_PER_PAGE }]);
  }

  const rocva = `rocva-${domain}-${runId.slice(0, 8)}`;
  await at.deployRocva.executeWithOptions({ summary: `deploy RocVA ${rocva}` }, [{ name: rocva }]);
  const inBatches = activitiesAt(recovery, { startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds' });
  await at.findExisting.executeWithOptions({ summary: `what ${recovery} holds already of ${input.vms.length} VM(s)` }, [{ vms: input.vms.map((vm) => vm.name) }]);
  await forEachBatch(input.vms, async (batch, range) => {
    await inBatches.prepareTargetDisksOfBatch.executeWithOptions({ summary: `create representation VMs ${range} at ${recovery}` }, [{ vms: batch.map((vm) => ({ vm: vm.name, disks: vm.diskIds })) }]);
  });
  await activitiesAt(recovery, { startToCloseTimeout: '6 hours', heartbeatTimeout: '10 seconds' }).rehydrateDomain.executeWithOptions({ summary: `rehydrate ${domain}` }, [{ domain }]);
  await forEachBatch(input.vms, async (batch, range) => {
    await inBatches.removeRepresentationVmsOfBatch.executeWithOptions({ summary: `remove representation VMs ${range} at ${recovery}` }, [{ vms: batch.map((vm) => ({ vm: vm.name })) }]);
  });
  await forEachBatch(input.vms, async (batch, range) => {
    await inBatches.registerRecoveredVmsOfBatch.executeWithOptions({ summary: `register VMs ${range} at ${recovery}` }, [{ vms: batch.map((vm) => ({ vm: vm.name })) }]);
  });

  await at.protectRecoveredDisks.executeWithOptions({ summary: `journal the recovered disks of ${domain}` }, [{ diskIds: input.vms.flatMap((vm) => vm.diskIds) }]);
  await at.recordArrival.executeWithOptions({ summary: `record where ${domain}'s arrival at ${recovery} starts` }, [{ domain }]);
  await startChild(noopProtect, { workflowId: `${workflowId}/protect/epoch-${claimed.epoch}`, parentClosePolicy: ParentClosePolicy.ABANDON });

  // runPowerOnPlan: each group starts once every group it depends on has finished.
  const byName = new Map(input.groups.map((g) => [g.name, g]));
  const running = new Map<string, Promise<number>>();
  // groupsPoweredOnInOperation: the DAG's groups need nobody, so those that fit run in the operation itself.
  const inOperation = fillingTheOperation(input.groups);
  const run = (group: NoopGroup): Promise<number> => {
    let started = running.get(group.name);
    if (!started) {
      started = (async () => {
        await Promise.all(group.dependsOn.map((d) => run(byName.get(d)!)));
        if (inOperation.has(group.name)) return noopPowerOnGroup({ site: recovery, group });
        // powerOnGroupAsChildren: a group over POWER_ON_BATCH_VMS runs as a child per batch, one after the other.
        if (group.vms.length <= POWER_ON_BATCH_VMS) return executeChild(noopPowerOnGroup, { workflowId: `${workflowId}/power-on/${group.name}`, args: [{ site: recovery, group }] });
        const total = Math.ceil(group.vms.length / POWER_ON_BATCH_VMS);
        let poweredOn = 0;
        for (let index = 1; index <= total; index++) {
          const vms = group.vms.slice((index - 1) * POWER_ON_BATCH_VMS, index * POWER_ON_BATCH_VMS);
          poweredOn += await executeChild(noopPowerOnGroup, { workflowId: `${workflowId}/power-on/${group.name}/batch-${index}-of-${total}`, args: [{ site: recovery, group: { ...group, vms } }] });
        }
        return poweredOn;
      })();
      running.set(group.name, started);
    }
    return started;
  };
  const counts = await Promise.all(input.groups.map(run));

  await at.destroyRocva.executeWithOptions({ summary: `remove RocVA ${rocva}` }, [{ name: rocva }]);
  await at.setDomainStatus.executeWithOptions({ summary: `${domain}: Running in Failover` }, [{ domain }]);
  return { poweredOn: counts.reduce((a, b) => a + b, 0) };
}
