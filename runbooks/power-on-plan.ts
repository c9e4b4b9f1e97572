import type { Runbook, RunbookPowerOnPlan } from './schema';

/**
 * The runbook's power-on plan at one of its sites: at the primary the failback section's plan when
 * it gives one, else `spec.powerOn`. VMs whose startup action is poweredOff stay off at either site.
 */
export function powerOnPlanAt(runbook: Runbook, site: string): { powerOn: RunbookPowerOnPlan; leavePoweredOff: string[] } {
  const failbackPlan = site === runbook.spec.sites.primary ? runbook.spec.failback?.powerOn : undefined;
  return {
    powerOn: failbackPlan ?? runbook.spec.powerOn,
    leavePoweredOff: runbook.spec.vms.filter((vm) => vm.startupAction === 'poweredOff').map((vm) => vm.name),
  };
}
