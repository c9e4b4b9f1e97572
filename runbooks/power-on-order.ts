import type { RunbookGroup } from './schema';

export class PowerOnOrderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PowerOnOrderError';
  }
}

/**
 * The runbook's power-on groups in waves: first every group without dependencies, then every
 * group whose dependencies are all in earlier waves, each wave in the runbook's own order. Pure,
 * so the planner, the power-on plan and a shutdown in reverse order all use the same order.
 * A dependency on an unknown group or a cycle is refused by name instead of looping.
 */
export function powerOnOrder<G extends Pick<RunbookGroup, 'name' | 'dependsOn'>>(groups: G[]): G[] {
  const names = new Set(groups.map((g) => g.name));
  for (const group of groups) {
    const unknown = group.dependsOn.find((d) => !names.has(d));
    if (unknown) throw new PowerOnOrderError(`power-on group ${group.name} depends on ${unknown}, which is not a group of the plan`);
  }
  const ordered: G[] = [];
  const placed = new Set<string>();
  while (ordered.length < groups.length) {
    const wave = groups.filter((g) => !placed.has(g.name) && g.dependsOn.every((d) => placed.has(d)));
    if (wave.length === 0) {
      const stuck = groups.filter((g) => !placed.has(g.name)).map((g) => g.name);
      throw new PowerOnOrderError(`the power-on groups ${stuck.join(', ')} depend on each other in a cycle`);
    }
    for (const group of wave) {
      ordered.push(group);
      placed.add(group.name);
    }
  }
  return ordered;
}
