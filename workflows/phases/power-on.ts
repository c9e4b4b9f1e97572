import type { Operation } from '../operation';
import { runPowerOnPlan } from '../power-on-plan';

/**
 * The runbook's power-on plan at the site the domain was rebuilt at: each group a child workflow,
 * or for small groups that need no operator, part of the operation's own (`groupsPoweredOnInOperation`).
 * `vmOf`: the domain's name of a VM the plan names (a drill's plan names the drill's copies).
 */
export async function powerOnByPlan(op: Operation, vmOf: (planned: string) => string = (planned) => planned): Promise<void> {
  const groups = await op.step('power on by the runbook', () => runPowerOnPlan(op.planInput, op.plan));
  for (const vm of groups.flatMap((g) => g.vms)) {
    op.vm(vmOf(vm.name), vm.state === 'leftPoweredOff' ? 'leftPoweredOff' : vm.state === 'failed' || vm.state === 'skipped' ? 'failed' : 'poweredOn');
  }
}
