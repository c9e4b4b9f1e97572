/**
 * Dry run: the DAG a recovery will execute for a runbook, scheduled twice, once with expected
 * durations and once with worst cases (every timeout and retry spent), giving the critical path
 * and the RTO estimate before anything runs. Linear in the number of VMs (a heap per group for
 * the parallelism limit), so a 10,000-VM domain plans in milliseconds.
 */
import type { FailurePolicy, Runbook, RunbookStep } from './schema';
import { powerOnOrder } from './power-on-order';
import { parseDuration } from './units';

export interface PlanEstimates {
  deployRocvaMs: number;
  rehydrateFixedMs: number;
  /** Time to rehydrate one GiB on one stream. */
  rehydratePerGiBMs: number;
  rehydrateStreams: number;
  registerVmMs: number;
  registerParallelism: number;
  powerOnMs: number;
  /** Expected time from power-on to the first guest heartbeat (capped by the runbook's timeout). */
  heartbeatMs: number;
  approvalMs: number;
  webhookMs: number;
  /** Disk size assumed for a VM whose size the caller does not know. */
  assumedDiskGiBPerVm: number;
}

export const DEFAULT_ESTIMATES: PlanEstimates = {
  deployRocvaMs: 180_000,
  rehydrateFixedMs: 30_000,
  rehydratePerGiBMs: 5_000,
  rehydrateStreams: 8,
  registerVmMs: 5_000,
  registerParallelism: 10,
  powerOnMs: 20_000,
  heartbeatMs: 60_000,
  approvalMs: 300_000,
  webhookMs: 2_000,
  assumedDiskGiBPerVm: 40,
};

export type PlanNodeKind = 'deploy-rocva' | 'rehydrate' | 'register-vms' | 'group-start' | 'approval' | 'webhook' | 'power-on' | 'delay' | 'heartbeat' | 'group-end';

export interface PlanNode {
  id: string;
  kind: PlanNodeKind;
  group?: string;
  vm?: string;
  dependsOn: string[];
  onFailure: FailurePolicy;
  expectedMs: number;
  worstMs: number;
  /** Offsets from the start of the operation in the expected schedule. */
  startMs: number;
  finishMs: number;
}

export interface PlanGroup {
  name: string;
  dependsOn: string[];
  vmCount: number;
  maxParallel: number;
  startMs: number;
  finishMs: number;
  worstFinishMs: number;
}

export interface Plan {
  runbook: string;
  protectedDomain: string;
  /** `recovery` absent: the runbook has none (the plan is the power-on plan at the primary). */
  sites: { primary: string; recovery?: string };
  estimates: PlanEstimates;
  rehydrateGiB: number;
  nodes: PlanNode[];
  groups: PlanGroup[];
  /** Node ids from the first phase to the node that finishes last, in the expected schedule. */
  criticalPath: string[];
  rtoEstimateMs: number;
  /** Every timeout and retry spent; operator pauses (onFailure: pause) are not bounded and not included. */
  rtoWorstCaseMs: number;
}

export interface PlanOptions {
  estimates?: Partial<PlanEstimates>;
  /** Disk sizes by VM name, from the domain's manifest when it is known. */
  diskGiBByVm?: Record<string, number>;
}

const ms = (duration: string) => parseDuration(duration) ?? 0;

/** Min-heap of slot release times, for list scheduling under a parallelism limit. */
class SlotHeap {
  private readonly times: number[] = [];
  private readonly owners: Array<string | undefined> = [];
  constructor(size: number, start: number) {
    for (let i = 0; i < size; i++) this.push(start, undefined);
  }
  private push(time: number, owner: string | undefined) {
    this.times.push(time);
    this.owners.push(owner);
    let i = this.times.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent] <= this.times[i]) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  private swap(a: number, b: number) {
    [this.times[a], this.times[b]] = [this.times[b], this.times[a]];
    [this.owners[a], this.owners[b]] = [this.owners[b], this.owners[a]];
  }
  /** Takes the earliest free slot and gives it back busy until `until`, held by `owner`. */
  take(until: (free: number) => number, owner: string): { free: number; previousOwner: string | undefined } {
    const free = this.times[0];
    const previousOwner = this.owners[0];
    this.times[0] = until(free);
    this.owners[0] = owner;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < this.times.length && this.times[left] < this.times[smallest]) smallest = left;
      if (right < this.times.length && this.times[right] < this.times[smallest]) smallest = right;
      if (smallest === i) break;
      this.swap(i, smallest);
      i = smallest;
    }
    return { free, previousOwner };
  }
}

const stepDurations = (step: RunbookStep, e: PlanEstimates) =>
  step.type === 'approval'
    ? { expected: Math.min(e.approvalMs, ms(step.timeout)), worst: ms(step.timeout) }
    : { expected: Math.min(e.webhookMs, ms(step.timeout)), worst: ms(step.timeout) * (step.retries + 1) };

export function planRunbook(runbook: Runbook, options: PlanOptions = {}): Plan {
  const e: PlanEstimates = { ...DEFAULT_ESTIMATES, ...options.estimates };
  const { spec } = runbook;
  const nodes: PlanNode[] = [];
  const byId = new Map<string, PlanNode>();
  /** For the critical path: which node's finish decided when a node could start. */
  const decidedBy = new Map<string, string | undefined>();
  const worstFinish = new Map<string, number>();

  const add = (node: Omit<PlanNode, 'startMs' | 'finishMs'>, start: { expected: number; worst: number; decidedBy: string | undefined }) => {
    const full: PlanNode = { ...node, startMs: start.expected, finishMs: start.expected + node.expectedMs };
    nodes.push(full);
    byId.set(full.id, full);
    decidedBy.set(full.id, start.decidedBy);
    worstFinish.set(full.id, start.worst + node.worstMs);
    return full;
  };
  /** The latest-finishing dependency decides the start. */
  const after = (ids: string[]) => {
    let expected = 0;
    let worst = 0;
    let decider: string | undefined;
    for (const id of ids) {
      const node = byId.get(id)!;
      if (node.finishMs >= expected) {
        expected = node.finishMs;
        decider = id;
      }
      worst = Math.max(worst, worstFinish.get(id)!);
    }
    return { expected, worst, decidedBy: decider };
  };

  const rehydrateGiB = spec.vms.reduce((sum, vm) => sum + (options.diskGiBByVm?.[vm.name] ?? e.assumedDiskGiBPerVm), 0);
  const rehydrateMs = e.rehydrateFixedMs + Math.ceil((rehydrateGiB * e.rehydratePerGiBMs) / Math.max(1, e.rehydrateStreams));
  const registerMs = Math.ceil(spec.vms.length / Math.max(1, e.registerParallelism)) * e.registerVmMs;
  const phase = (kind: PlanNodeKind, duration: number, dependsOn: string[]) =>
    add({ id: kind, kind, dependsOn, onFailure: 'abort', expectedMs: duration, worstMs: duration }, after(dependsOn));
  phase('deploy-rocva', e.deployRocvaMs, []);
  phase('rehydrate', rehydrateMs, ['deploy-rocva']);
  const registered = phase('register-vms', registerMs, ['rehydrate']);

  const groups: PlanGroup[] = [];
  for (const group of powerOnOrder(runbook.spec.powerOn.groups)) {
    const dependsOn = group.dependsOn.length > 0 ? group.dependsOn.map((d) => `group:${d}:end`) : [registered.id];
    const common = { group: group.name, onFailure: group.onFailure };
    const start = add({ id: `group:${group.name}:start`, kind: 'group-start', ...common, dependsOn, expectedMs: 0, worstMs: 0 }, after(dependsOn));
    let previous = start.id;
    const steps = (list: RunbookStep[], dependsOnIds: string[]) => {
      let deps = dependsOnIds;
      for (const step of list) {
        const { expected, worst } = stepDurations(step, e);
        const node = add({ id: `step:${step.name}`, kind: step.type, group: group.name, onFailure: step.onFailure, dependsOn: deps, expectedMs: expected, worstMs: worst }, after(deps));
        deps = [node.id];
        previous = node.id;
      }
    };
    steps(group.before, [previous]);
    const vmsStartAfter = previous;

    // Both schedules place VMs in the listed order on the earliest free slot.
    const parallel = Math.min(group.maxParallel, spec.powerOn.maxParallel);
    const base = after([vmsStartAfter]);
    const expectedSlots = new SlotHeap(parallel, base.expected);
    const worstSlots = new SlotHeap(parallel, base.worst);
    const vmEnds: string[] = [];
    for (const entry of group.vms) {
      const delay = ms(entry.delayAfterPowerOn);
      const heartbeatExpected = entry.waitForHeartbeat ? Math.min(e.heartbeatMs, ms(entry.heartbeatTimeout)) : 0;
      const heartbeatWorst = entry.waitForHeartbeat ? ms(entry.heartbeatTimeout) : 0;
      const chainExpected = e.powerOnMs + delay + heartbeatExpected;
      const chainWorst = e.powerOnMs + delay + heartbeatWorst;
      const chainEnd = entry.waitForHeartbeat ? `heartbeat:${entry.name}` : delay > 0 ? `delay:${entry.name}` : `power-on:${entry.name}`;
      const slot = expectedSlots.take((free) => free + chainExpected, chainEnd);
      const worstSlot = worstSlots.take((free) => free + chainWorst, chainEnd);
      const onFailure = entry.onFailure ?? group.onFailure;
      let link = add(
        { id: `power-on:${entry.name}`, kind: 'power-on', group: group.name, vm: entry.name, onFailure, dependsOn: [vmsStartAfter], expectedMs: e.powerOnMs, worstMs: e.powerOnMs },
        { expected: slot.free, worst: worstSlot.free, decidedBy: slot.previousOwner ?? vmsStartAfter },
      );
      if (delay > 0) link = add({ id: `delay:${entry.name}`, kind: 'delay', group: group.name, vm: entry.name, onFailure, dependsOn: [link.id], expectedMs: delay, worstMs: delay }, after([link.id]));
      if (entry.waitForHeartbeat) {
        link = add(
          { id: `heartbeat:${entry.name}`, kind: 'heartbeat', group: group.name, vm: entry.name, onFailure, dependsOn: [link.id], expectedMs: heartbeatExpected, worstMs: heartbeatWorst },
          after([link.id]),
        );
      }
      vmEnds.push(link.id);
    }
    previous = '';
    steps(group.after, vmEnds);
    const endDeps = previous ? [previous] : vmEnds;
    const end = add({ id: `group:${group.name}:end`, kind: 'group-end', ...common, dependsOn: endDeps, expectedMs: 0, worstMs: 0 }, after(endDeps));
    groups.push({
      name: group.name,
      dependsOn: group.dependsOn,
      vmCount: group.vms.length,
      maxParallel: parallel,
      startMs: start.startMs,
      finishMs: end.finishMs,
      worstFinishMs: worstFinish.get(end.id)!,
    });
  }

  let last = nodes[0];
  let rtoWorstCaseMs = 0;
  for (const node of nodes) {
    if (node.finishMs >= last.finishMs) last = node;
    rtoWorstCaseMs = Math.max(rtoWorstCaseMs, worstFinish.get(node.id)!);
  }
  const criticalPath: string[] = [];
  for (let id: string | undefined = last.id; id !== undefined; id = decidedBy.get(id)) criticalPath.push(id);
  criticalPath.reverse();

  return {
    runbook: runbook.metadata.name,
    protectedDomain: spec.protectedDomain,
    sites: spec.sites,
    estimates: e,
    rehydrateGiB,
    nodes,
    groups,
    criticalPath,
    rtoEstimateMs: last.finishMs,
    rtoWorstCaseMs,
  };
}
