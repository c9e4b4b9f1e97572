import { ActivityCancellationType, patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { failure } from '../common/failures';
import { Operation } from './operation';
import type { OperationReport } from './operation-messages';
import { activitiesAt, batchActivitiesAt } from './phases/site-activities';
import { withRunbook } from './phases/runbook';
import { sideCopyName, type ResolveConflictInput } from './resolve-conflict-messages';
import { DR_CONFLICT, DR_SITE } from './search-attributes';
import { someNames } from './listing';
import { forEachBatch, forEachVm } from './vm-fan-out';

/**
 * At a site that is not the domain's primary, the stale copies are VMs a failover made there (a
 * forced failback fenced the site, which came back running them): once their writes are in the side
 * copy nothing needs them, and a later failover must find the site empty, so they go with their
 * disks, as a planned failback would have removed them. Also those an earlier, interrupted
 * resolution left inactive. The original VMs at the primary are never removed: they stay inactive
 * until a failback reactivates them. A removal is not undone: from here on an abort leaves the
 * copies deactivated and the conflict open, and resolving again finishes the removal.
 */
async function removeRecoveredCopies(op: Operation, site: string, sideCopy: string): Promise<void> {
  if (!patched('resolve-conflict-removes-recovered-copies') || site === op.runbook.spec.sites.primary) return;
  const atSite = activitiesAt(site);
  const copies = await op.step(`list the copies a failover made at ${site}`, () =>
    atSite.recoveredCopies.executeWithOptions({ summary: `VMs of ${op.domain} at ${site} that a failover recovered there` }, [{ domain: op.domain }]),
  );
  if (copies.length === 0) return;
  op.undo.settle(`the stale copies ${someNames(copies)} at ${site} stay deactivated (their writes are in side copy ${sideCopy}): removing them is not undone`);
  if (patched('resolve-conflict-in-batches')) {
    await op.step(`remove the stale copies from ${site}`, () =>
      forEachBatch(copies, async (batch, range) => {
        await batchActivitiesAt(site).removeRecoveredVmsOfBatch.executeWithOptions({ summary: `remove the stale copies ${range} and their disks from ${site}` }, [{ vms: batch.map((vm) => ({ vm })) }]);
        for (const vm of batch) op.vm(vm, 'removed');
      }),
    );
    return;
  }
  await op.step(`remove the stale copies from ${site}`, () =>
    forEachVm(copies, async (vm) => {
      await atSite.removeRecoveredVm.executeWithOptions({ summary: `remove the stale copy ${vm} and its disks from ${site}` }, [{ vm }]);
      op.vm(vm, 'removed');
    }),
  );
}

/**
 * The stale VMs powered off; undo: those that ran powered on again. By batch activities, the undo
 * knowing what ran from the list of stale VMs (`staleVms` says which run) wherever a cancel cuts a
 * batch; operations recorded before power off an activity per VM.
 */
async function powerOffStaleVms(op: Operation, site: string, stale: Array<{ name: string; poweredOn: boolean }>): Promise<void> {
  const atSite = activitiesAt(site);
  const names = stale.map((vm) => vm.name);
  if (patched('resolve-conflict-in-batches')) {
    const running = stale.filter((vm) => vm.poweredOn).map((vm) => vm.name);
    op.undo.push(`the stale VMs powered off at ${site} powered on again`, () =>
      forEachBatch(running, (batch, range) => batchActivitiesAt(site).powerOnVmsOfBatch.executeWithOptions({ summary: `power the stale VMs ${range} on again at ${site}` }, [{ vms: batch.map((vm) => ({ vm })) }])),
    );
    // A cancel waits until the batch under way has stopped powering VMs off: the undo must not race it.
    const atSiteInBatches = batchActivitiesAt(site, { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
    await op.step(`power off the stale VMs at ${site}`, () =>
      forEachBatch(names, async (batch, range) => {
        await atSiteInBatches.powerOffVmsOfBatch.executeWithOptions({ summary: `power off the stale copies ${range} at ${site}` }, [{ vms: batch.map((vm) => ({ vm })) }]);
        for (const vm of batch) op.vm(vm, 'shutDown');
      }),
    );
    return;
  }
  const stopped: string[] = [];
  op.undo.push(`the stale VMs powered off at ${site} powered on again`, async () => {
    for (const vm of stopped) await atSite.powerOnVm.executeWithOptions({ summary: `power ${vm} on again at ${site}` }, [{ vm }]);
  });
  await op.step(`power off the stale VMs at ${site}`, () =>
    forEachVm(names, async (vm) => {
      const { alreadyOff } = await atSite.powerOffVm.executeWithOptions({ summary: `power off the stale copy ${vm} at ${site}` }, [{ vm }]);
      if (!alreadyOff) stopped.push(vm);
      op.vm(vm, 'shutDown');
    }),
  );
}

/**
 * Resolves a split-brain (the fenced old primary came back running the domain's VMs while the
 * recovery site owns it) by deactivating the stale copies at the returning site: they are powered
 * off, the writes they made that are not in the domain's chain are kept as a named side copy (never
 * mixed into the chain), they are marked inactive so that nothing powers them on by mistake, and
 * the conflict is cleared. Afterwards no site runs two active copies of a VM. Aborted or cancelled,
 * it undoes what it did: the side copy is removed, the VMs are active and running again, and the
 * conflict stays open; once it removes copies a failover made (`removeRecoveredCopies`), it keeps
 * what it did instead.
 */
export async function resolveConflict(request: ResolveConflictInput): Promise<OperationReport> {
  const input = await withRunbook(request);
  const { domain, conflict } = input;
  const site = conflict.site;
  const op = new Operation({
    operation: 'resolve-conflict',
    domain,
    from: site,
    to: conflict.owner,
    runbook: input.runbook,
    runbookVersion: input.runbookVersion,
    requestedBy: input.requestedBy,
    declaredAt: input.declaredAt,
    memo: { action: input.action, conflict: { ...conflict, since: new Date(conflict.since).toISOString() } },
    about: `**conflict**: ${someNames(conflict.vms)} run at ${site} while ${conflict.owner} owns ${domain}, since ${new Date(conflict.since).toISOString()}; action: ${input.action}`,
  });
  upsertSearchAttributes([
    { key: DR_SITE, value: site },
    { key: DR_CONFLICT, value: [domain] },
  ]);
  const atSite = activitiesAt(site);
  const by = workflowInfo().workflowId;

  return op.run(async () => {
    const open = await op.step(`check the conflict at ${site}`, () => atSite.describeConflict.executeWithOptions({ summary: `is ${domain}'s conflict at ${site} still open?` }, [{ domain }]));
    const stale = await op.step(`list the stale VMs at ${site}`, () => atSite.staleVms.executeWithOptions({ summary: `VMs of ${domain} at ${site} not yet inactive` }, [{ domain }]));
    const names = stale.map((vm) => vm.name);

    await powerOffStaleVms(op, site, stale);

    const name = sideCopyName(site, open.since);
    op.undo.push(`side copy ${name} removed (the writes stay in ${site}'s journal)`, () => atSite.removeSideCopy.executeWithOptions({ summary: `remove side copy ${name}` }, [{ domain, name }]));
    const sideCopy = await op.step(`keep the diverged writes as side copy ${name}`, () =>
      activitiesAt(site, { startToCloseTimeout: '30 minutes', heartbeatTimeout: '30 seconds' }).exportSideCopy.executeWithOptions(
        { summary: `export the writes of ${names.length} stale VM(s) after the fence into side copy ${name}` },
        [{ domain, name, vms: names }],
      ),
    );

    op.undo.push(`the stale VMs at ${site} active again`, () => atSite.setVmsActive.executeWithOptions({ summary: `reactivate ${names.length} VM(s) at ${site}` }, [{ vms: names, active: true, by }]));
    await op.step(`mark the stale VMs inactive at ${site}`, () => atSite.setVmsActive.executeWithOptions({ summary: `deactivate ${someNames(names)} at ${site}` }, [{ vms: names, active: false, by }]));

    await op.step(`check that ${site} runs no active copy of ${domain}`, async () => {
      const left = await atSite.staleVms.executeWithOptions({ summary: `VMs of ${domain} at ${site} still active` }, [{ domain }]);
      if (left.length > 0) throw failure('ConflictNotResolved', `${someNames(left.map((vm) => vm.name))} at ${site} are still active: a VM of ${domain} appeared there during the resolution; resolve again`);
    });
    await removeRecoveredCopies(op, site, name);
    await op.step('clear the conflict', () => atSite.clearConflict.executeWithOptions({ summary: `${domain}: conflict at ${site} resolved` }, [{ domain }]));
    upsertSearchAttributes([{ key: DR_CONFLICT, value: null }]);
    return { sideCopy };
  });
}
