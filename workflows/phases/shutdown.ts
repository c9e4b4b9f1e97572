import type { RunbookGroup } from '../../runbooks/schema';
import type { ShutdownOutcome } from '../../sites/provider';
import { parseDuration } from '../../runbooks/units';
import { powerOnOrder } from '../../runbooks/power-on-order';
import type { Operation } from '../operation';
import { forEachVm } from '../vm-fan-out';
import { activitiesAt, SITE_RETRY } from './site-activities';

/** Shutdown batches: VMs outside the power-on plan first, then its groups in reverse power-on order. */
export function shutdownBatches(groups: RunbookGroup[], domainVms: string[]): string[][] {
  const planned = new Set(groups.flatMap((g) => g.vms.map((v) => v.name)));
  const batches = powerOnOrder(groups)
    .reverse()
    .map((g) => g.vms.map((v) => v.name).filter((vm) => domainVms.includes(vm)));
  return [domainVms.filter((vm) => !planned.has(vm)), ...batches].filter((batch) => batch.length > 0);
}

/**
 * Planned: the domain's VMs shut down gracefully at the site it leaves, in reverse power-on order,
 * so that their last writes reach the journal. A guest that does not stop within the runbook's
 * timeout is powered off or aborts the operation, as `primaryShutdown.onTimeout` says. Undo: every
 * VM this phase stopped is powered on again (also after a shutdown that failed half-way).
 */
export async function shutDownInReverseOrder(op: Operation, vms: string[]): Promise<void> {
  const atFrom = activitiesAt(op.from, { retry: { ...SITE_RETRY, maximumInterval: '10 seconds', maximumAttempts: 5 } });
  const stopped: string[] = [];
  op.undo.push(`the VMs shut down at ${op.from} powered on again`, async () => {
    for (const vm of stopped) await atFrom.powerOnVm.executeWithOptions({ summary: `power ${vm} on again at ${op.from}` }, [{ vm }]);
  });
  await op.step(`shut down VMs at ${op.from}`, () =>
    shutDown(op, op.from, vms, (vm, outcome) => {
      if (outcome !== 'alreadyOff') stopped.push(vm);
      op.vm(vm, 'shutDown');
    }),
  );
}

/**
 * The undo of a power-on at the site a failback returns to, pushed before the plan starts: the
 * VMs it may have started are shut down again as a planned shutdown is, before an earlier undo
 * powers the copies at the site the domain left on again, so that no site runs a second active
 * copy. They were all off when the failback began (the domain ran at the other site, and a copy
 * running at both is a split-brain that failback refuses), so this stops only what the plan started.
 */
export function undoPowerOn(op: Operation, vms: string[]): void {
  op.undo.push(`the VMs powered on at ${op.to} powered off again`, () => shutDown(op, op.to, vms));
}

/** Shuts `vms` down at `site` in reverse power-on order, as the runbook's primaryShutdown says. */
async function shutDown(op: Operation, site: string, vms: string[], onShutDown?: (vm: string, outcome: ShutdownOutcome | 'poweredOff') => void): Promise<void> {
  const { timeout, onTimeout } = op.runbook.spec.primaryShutdown;
  const timeoutMs = parseDuration(timeout) ?? 300_000;
  const shutdown = activitiesAt(site, { startToCloseTimeout: timeoutMs + 30_000, retry: { ...SITE_RETRY, maximumAttempts: 5 } });
  let ordinal = 0;
  for (const batch of shutdownBatches(op.runbook.spec.powerOn.groups, vms)) {
    await forEachVm(batch, async (vm) => {
      const n = ++ordinal;
      const { outcome } = await shutdown.shutdownForHandover.executeWithOptions({ summary: `shut down ${vm} at ${site} (${n}/${vms.length})` }, [{ vm, timeoutMs, onTimeout }]);
      onShutDown?.(vm, outcome);
    });
  }
}
