import { ActivityCancellationType, patched } from '@temporalio/workflow';
import type { RunbookGroup } from '../../runbooks/schema';
import type { ShutdownOutcome } from '../../sites/provider';
import { parseDuration } from '../../runbooks/units';
import { powerOnOrder } from '../../runbooks/power-on-order';
import type { Operation } from '../operation';
import { forEachBatch, forEachVm, VMS_PER_BATCH } from '../vm-fan-out';
import { activitiesAt, batchActivitiesAt, SITE_RETRY } from './site-activities';

/** Operations recorded before shutdowns ran in batches replay their activity per VM. */
const SHUTDOWN_IN_BATCHES = 'shutdown-in-batches';

/** Shutdown batches: VMs outside the power-on plan first, then its groups in reverse power-on order. */
export function shutdownBatches(groups: RunbookGroup[], domainVms: string[]): string[][] {
  const planned = new Set(groups.flatMap((g) => g.vms.map((v) => v.name)));
  const inDomain = new Set(domainVms);
  const batches = powerOnOrder(groups)
    .reverse()
    .map((g) => g.vms.map((v) => v.name).filter((vm) => inDomain.has(vm)));
  return [domainVms.filter((vm) => !planned.has(vm)), ...batches].filter((batch) => batch.length > 0);
}

/**
 * Planned: the domain's VMs shut down gracefully at the site it leaves, in reverse power-on order,
 * so that their last writes reach the journal. A guest that does not stop within the runbook's
 * timeout is powered off or aborts the operation, as `primaryShutdown.onTimeout` says. Undo: every
 * VM this phase stopped is powered on again (also after a shutdown that failed half-way).
 */
export async function shutDownInReverseOrder(op: Operation, vms: string[]): Promise<void> {
  if (!patched(SHUTDOWN_IN_BATCHES)) return shutDownOneByOne(op, vms);
  const atFrom = activitiesAt(op.from, { retry: { ...SITE_RETRY, maximumInterval: '10 seconds', maximumAttempts: 5 } });
  await op.step(`shut down VMs at ${op.from}`, async () => {
    // Read first, so that the undo knows what to power on again wherever a cancel or a crash cuts a batch.
    const running = await atFrom.runningAmong.executeWithOptions({ summary: `which of the ${vms.length} VMs run at ${op.from}` }, [{ vms }]);
    op.undo.push(`the VMs shut down at ${op.from} powered on again`, () => powerOnAgain(op, op.from, running));
    await shutDownInBatches(op, op.from, vms, (batch) => {
      for (const vm of batch) op.vm(vm, 'shutDown');
    });
  });
}

/** As operations recorded before the batches ran it: an activity per VM in the operation's history. */
async function shutDownOneByOne(op: Operation, vms: string[]): Promise<void> {
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
  op.undo.push(`the VMs powered on at ${op.to} powered off again`, () => (patched(SHUTDOWN_IN_BATCHES) ? shutDownInBatches(op, op.to, vms) : shutDown(op, op.to, vms)));
}

/**
 * Shuts `vms` down at `site` in reverse power-on order, as the runbook's primaryShutdown says: the
 * order's groups one after the other, each by batch activities of VMS_PER_BATCH (the operation's
 * history grows by batch, not by VM). Each guest has the runbook's timeout; a batch's heartbeat
 * comes as each of its VMs is done, so the heartbeat timeout is one guest's.
 */
async function shutDownInBatches(op: Operation, site: string, vms: string[], onBatchDone?: (batch: string[]) => void): Promise<void> {
  const { timeout, onTimeout } = op.runbook.spec.primaryShutdown;
  const timeoutMs = parseDuration(timeout) ?? 300_000;
  const perGuestMs = timeoutMs + 30_000;
  const atSite = batchActivitiesAt(site, {
    startToCloseTimeout: VMS_PER_BATCH * perGuestMs,
    heartbeatTimeout: perGuestMs,
    retry: { ...SITE_RETRY, maximumAttempts: 5 },
    // A cancelled operation's undo powers VMs on again: not before the batch has stopped shutting them down.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  for (const group of shutdownBatches(op.runbook.spec.powerOn.groups, vms)) {
    await forEachBatch(group, async (batch, range) => {
      await atSite.shutdownForHandoverOfBatch.executeWithOptions({ summary: `shut down VMs ${range} at ${site}` }, [{ vms: batch.map((vm) => ({ vm, timeoutMs, onTimeout })) }]);
      onBatchDone?.(batch);
    });
  }
}

/** The undo of a shutdown: `running` (what ran before it) powered on again at `site`, in power-on order. */
async function powerOnAgain(op: Operation, site: string, running: string[]): Promise<void> {
  const atSite = batchActivitiesAt(site);
  for (const group of shutdownBatches(op.runbook.spec.powerOn.groups, running).reverse()) {
    await forEachBatch(group, (batch, range) => atSite.powerOnVmsOfBatch.executeWithOptions({ summary: `power VMs ${range} on again at ${site}` }, [{ vms: batch.map((vm) => ({ vm })) }]));
  }
}

/** As operations recorded before the batches ran it: shuts `vms` down at `site` in reverse power-on order, an activity per VM. */
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
