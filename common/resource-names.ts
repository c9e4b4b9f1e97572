/**
 * Names of what operations create at a site, one place for each: deterministic, so that a retried
 * activity or a replayed workflow finds what an earlier attempt created.
 */

/**
 * A drill's id: the last eight hex digits of its run id, short enough to prefix every name it
 * creates. The last, because run ids are time-ordered UUIDs whose leading digits are shared by runs
 * started close together.
 */
export const drillId = (runId: string) => runId.replace(/-/g, '').slice(-8);

/** Everything a drill creates at a site is `drill-<id>-<name>`: told apart from production, and from other drills, by name alone. */
export const drillResourceName = (id: string, name: string) => `drill-${id}-${name}`;

const DRILL_NAME = /^(drill-[0-9a-f]{8}-)(.+)$/;
export const isDrillResourceName = (name: string) => DRILL_NAME.test(name);

/**
 * The representation VM that holds a VM's target disks while they are rehydrated. A drill VM's
 * keeps the drill prefix in front, so that it too is found and cleaned up by it.
 */
export const representationVmName = (vm: string) => {
  const drill = DRILL_NAME.exec(vm);
  return drill ? `${drill[1]}repr-${drill[2]}` : `repr-${vm}`;
};

/** What a drill creates at a site, by kind, each recorded before it is created: its cleanup removes VMs before the disks they hold. */
export type DrillResourceKind = 'rocva' | 'representation' | 'vm' | 'disk';

export interface DrillResource {
  kind: DrillResourceKind;
  name: string;
}
