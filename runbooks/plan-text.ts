/** The dry-run plan as an operator reads it: phases, groups in start order, critical path, RTO. */
import type { Plan, PlanNode } from './planner';
import { formatDuration } from './units';

const VMS_SHOWN_PER_GROUP = 10;
const CRITICAL_VMS_SHOWN = 3;
const at = (ms: number) => `T+${formatDuration(ms)}`;

function describeNode(node: PlanNode): string {
  switch (node.kind) {
    case 'approval':
      return `approval ${node.id.slice('step:'.length)}`;
    case 'webhook':
      return `webhook ${node.id.slice('step:'.length)}`;
    case 'power-on':
    case 'delay':
    case 'heartbeat':
      return `${node.kind} ${node.vm ?? ''}`;
    case 'group-start':
      return `group ${node.group ?? ''} starts`;
    case 'group-end':
      return `group ${node.group ?? ''} done`;
    default:
      return node.kind;
  }
}

export function renderPlan(plan: Plan): string {
  const byId = new Map(plan.nodes.map((n) => [n.id, n]));
  const lines = [
    `Plan for runbook ${plan.runbook}: domain ${plan.protectedDomain}, ${plan.sites.primary} -> ${plan.sites.recovery ?? '(no recovery site: protected to the storage site only)'}`,
    `RTO estimate ${formatDuration(plan.rtoEstimateMs)} (worst case ${formatDuration(plan.rtoWorstCaseMs)}, not counting operator pauses)`,
    '',
    'Recovery phases:',
  ];
  for (const id of ['deploy-rocva', 'rehydrate', 'register-vms']) {
    const node = byId.get(id)!;
    const note = id === 'rehydrate' ? ` (${plan.rehydrateGiB} GiB)` : '';
    lines.push(`  ${at(node.startMs).padEnd(14)} ${id}${note}, ${formatDuration(node.expectedMs)}`);
  }
  lines.push('', 'Power-on groups:');
  const nodesByGroup = new Map<string, PlanNode[]>();
  for (const node of plan.nodes) {
    if (!node.group) continue;
    const list = nodesByGroup.get(node.group);
    if (list) list.push(node);
    else nodesByGroup.set(node.group, [node]);
  }
  for (const group of plan.groups) {
    const deps = group.dependsOn.length > 0 ? `after ${group.dependsOn.join(', ')}` : 'after register-vms';
    lines.push(
      `  ${at(group.startMs).padEnd(14)} ${group.name}: ${group.vmCount} VM(s), ${group.maxParallel} at a time, ${deps}; done ${at(group.finishMs)} (worst ${at(group.worstFinishMs)})`,
    );
    const shownVms = new Set<string>();
    let vmsHidden = 0;
    for (const node of nodesByGroup.get(group.name) ?? []) {
      if (node.kind === 'group-start' || node.kind === 'group-end') continue;
      if (node.vm !== undefined && !shownVms.has(node.vm)) {
        if (shownVms.size >= VMS_SHOWN_PER_GROUP) {
          if (node.kind === 'power-on') vmsHidden++;
          continue;
        }
        shownVms.add(node.vm);
      }
      lines.push(`    ${at(node.startMs).padEnd(14)} ${describeNode(node)}, ${formatDuration(node.expectedMs)} (worst ${formatDuration(node.worstMs)}), on failure ${node.onFailure}`);
    }
    if (vmsHidden > 0) lines.push(`    ... and ${vmsHidden} more VM(s)`);
  }
  lines.push('', 'Critical path:');
  const path = plan.criticalPath.map((id) => byId.get(id)!).filter((n) => !(n.expectedMs === 0 && (n.kind === 'group-start' || n.kind === 'group-end')));
  for (let i = 0; i < path.length; ) {
    // A long run of VM steps in one group is VMs queued for the group's parallelism slots: one line says it.
    let end = i;
    while (end + 1 < path.length && path[end + 1].vm !== undefined && path[i].vm !== undefined && path[end + 1].group === path[i].group) end++;
    const run = path.slice(i, end + 1);
    const vms = [...new Set(run.map((n) => n.vm))];
    if (vms.length > CRITICAL_VMS_SHOWN) {
      const last = run[run.length - 1];
      lines.push(`  ${at(run[0].startMs).padEnd(14)} group ${run[0].group ?? ''}: ${vms.length} VMs one after another in a parallelism slot (${vms[0] ?? ''} ... ${vms[vms.length - 1] ?? ''}), ${formatDuration(last.finishMs - run[0].startMs)}`);
    } else {
      for (const node of run) lines.push(`  ${at(node.startMs).padEnd(14)} ${describeNode(node)}, ${formatDuration(node.expectedMs)}`);
    }
    i = end + 1;
  }
  return `${lines.join('\n')}\n`;
}
