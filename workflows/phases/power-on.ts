import type { Operation } from '../operation';
import { runPowerOnPlan } from '../power-on-plan';

/** The runbook's power-on plan at the site the domain was rebuilt at; each group a child workflow. */
export async function powerOnByPlan(op: Operation): Promise<void> {
  const groups = await op.step('power on by the runbook', () => runPowerOnPlan(op.planInput, op.plan));
  for (const vm of groups.flatMap((g) => g.vms)) {
    op.vm(vm.name, vm.state === 'leftPoweredOff' ? 'leftPoweredOff' : vm.state === 'failed' || vm.state === 'skipped' ? 'failed' : 'poweredOn');
  }
}
