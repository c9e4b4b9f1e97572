/** The dry-run plan as an operator reads it: phases, groups in start order, critical path, RTO. */
import type { Plan, PlanNode } from './planner';
import { formatDuration } from './units';

const VMS_SHOWN_PER_GROUP = 10;
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
    `Plan for runbook ${plan.runbook}: domain ${plan.protectedDomain}, ${plan.sites.primary} -> ${plan.sites.recovery}`,
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
  for (const node of plan.nodes) if (node.group) nodesByGroup.set(node.group, [...(nodesByGroup.get(node.group) ?? []), node]);
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
  for (const id of plan.criticalPath) {
    const node = byId.get(id)!;
    if (node.expectedMs === 0 && (node.kind === 'group-start' || node.kind === 'group-end')) continue;
    lines.push(`  ${at(node.startMs).padEnd(14)} ${describeNode(node)}, ${formatDuration(node.expectedMs)}`);
  }
  return `${lines.join('\n')}\n`;
}
