import { workflowInfo } from '@temporalio/workflow';
import { failure } from '../common/failures';
import type { FailbackInput } from './failback-messages';
import { towardsPrimarySite } from './operation';
import type { OperationReport } from './operation-messages';
import { setDomainMode } from './phases/domain-mode';
import { withRunbook } from './phases/runbook';
import { checkOriginalDisks, comeBackUp, findOriginalVms, prepareRebuiltVms, rehydrateDelta, removeFromSiteLeft, returningVm, rocvaAtOriginalSite, stopJournaling } from './phases/originals';
import { checkOwnership, claimWithFencing, drainAndHandOver } from './phases/ownership';
import { deployRocva, rehydrate, removeRocva, resolveRecoveryPoint, rocvaName } from './phases/rebuild';
import { shutDownInReverseOrder } from './phases/shutdown';
import { someNames } from './listing';

/**
 * Failback of a domain running in failover to its original primary site, planned (the recovery
 * site shuts down, drains and hands back) or forced (the recovery site is lost: the primary claims
 * the domain, fencing it). At the primary the original VMs come back as they are, on their
 * original disks: when those still hold the position the domain left them at, only the changes
 * since are applied (delta); otherwise a RocVA rehydrates them fully, overwriting what they hold.
 * A VM no longer registered at the primary is rebuilt there on new disks, as the runbook's failback
 * section (or how the domain left) places and connects it. Protection resumes at the primary, the
 * runbook's plan there powers the VMs on, and a planned failback removes the domain from the
 * recovery site. If it aborts, only what it created at the primary is removed (rebuilt VMs and
 * their new disks): the original VMs and disks stay, shut down again if it had begun to power them on.
 */
export async function failback(request: FailbackInput): Promise<OperationReport> {
  const input = await withRunbook(request);
  const { domain, type } = input;
  const op = towardsPrimarySite('failback', input, { type });
  return op.run(async () => {
    if (type === 'forced' && input.forcedConfirmation !== domain) {
      throw failure('ConfirmationRequired', `a forced failback of ${domain} must be confirmed by repeating the domain name: it fences the recovery site ${op.from}`);
    }
    const owned = await checkOwnership(op, type === 'planned');
    const originals = await findOriginalVms(op, owned.vms);
    if (type === 'planned') {
      await shutDownInReverseOrder(op, owned.vms);
      await drainAndHandOver(op, owned);
    } else {
      await claimWithFencing(op, owned);
    }

    const { point, targets } = await resolveRecoveryPoint(op, undefined, returningVm(originals));
    const missing = new Set(originals.missing);
    const rebuilding = targets.filter((t) => missing.has(t.name));
    const { onNewDisks } = await prepareRebuiltVms(op, rebuilding);
    await stopJournaling(op, point.disks.map((d) => d.diskId));
    // A delta applies to the whole domain's disks as they were left: new ones are not.
    const base = onNewDisks.length > 0 ? { usable: false as const, why: `${someNames(onNewDisks)} rebuilt at ${op.to} on new disks` } : await checkOriginalDisks(op);
    let rehydration: NonNullable<OperationReport['rehydration']>;
    if (base.usable) {
      rehydration = await rehydrateDelta(op, base, originals.vms);
    } else {
      // The VMs hold their disks (the original ones, and representation VMs the rebuilt ones): only the RocVA is needed.
      const rocva = await deployRocva(op, rocvaName(op, workflowInfo().runId), rocvaAtOriginalSite(op, originals, targets));
      const bytesWritten = await rehydrate(op, point, targets, 'existing disks');
      await removeRocva(op, rocva);
      rehydration = { kind: 'full', bytesWritten, why: base.why };
    }
    await comeBackUp(op, originals, targets, rebuilding, point);
    const rtoMs = op.sinceDeclared();
    const rpoMs = type === 'planned' ? 0 : Math.max(0, input.declaredAt - point.dataFrom);

    await setDomainMode(op, 'Protected', originals.vms);
    // A lost recovery site is not contacted: what it holds of the domain is removed when it returns.
    if (type === 'planned') await removeFromSiteLeft(op, point.vms.map((vm) => ({ name: vm.name, diskIds: point.disks.filter((d) => d.vm === vm.name).map((d) => d.diskId) })));
    const rebuilt = rebuilding.map((t) => ({ vm: t.name, placement: t.recovered.spec.placement, networks: t.recovered.spec.nics.map((n) => n.network), diskIds: t.disks.map((d) => d.diskId) }));
    return { rtoMs, rpoMs, rehydration, ...(rebuilt.length > 0 ? { rebuilt } : {}) };
  });
}
