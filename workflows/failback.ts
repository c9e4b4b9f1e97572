import { workflowInfo } from '@temporalio/workflow';
import { failure } from '../common/failures';
import type { FailbackInput } from './failback-messages';
import { towardsPrimarySite } from './operation';
import type { OperationReport } from './operation-messages';
import { setDomainMode } from './phases/domain-mode';
import { checkOriginalDisks, findOriginalVms, reactivate, rehydrateDelta, removeFromSiteLeft, stopJournaling } from './phases/originals';
import { checkOwnership, claimWithFencing, drainAndHandOver } from './phases/ownership';
import { powerOnByPlan } from './phases/power-on';
import { resumeProtection } from './phases/protection-resume';
import { deployRocva, rehydrate, removeRocva, resolveRecoveryPoint } from './phases/rebuild';
import { shutDownInReverseOrder, undoPowerOn } from './phases/shutdown';
import { originalVm } from './recovered-vm';

/**
 * Failback of a domain running in failover to its original primary site, planned (the recovery
 * site shuts down, drains and hands back) or forced (the recovery site is lost: the primary claims
 * the domain, fencing it). At the primary the original VMs come back as they are, on their
 * original disks: when those still hold the position the domain left them at, only the changes
 * since are applied (delta); otherwise a RocVA rehydrates them fully, overwriting what they hold.
 * Protection resumes at the primary, the runbook's plan powers the VMs on, and a planned failback
 * removes the domain from the recovery site. Nothing at the primary it did not create is removed
 * if it aborts: the original VMs and disks stay, shut down again if it had begun to power them on.
 */
export async function failback(input: FailbackInput): Promise<OperationReport> {
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

    const resolved = await resolveRecoveryPoint(op, undefined, originalVm);
    const point = resolved.point;
    // The original disks stay where the original VMs keep them, not where the runbook places recovered VMs.
    const targets = resolved.targets.map((t) => ({ ...t, recovered: { ...t.recovered, spec: { ...t.recovered.spec, placement: originals.placements[t.name] ?? t.recovered.spec.placement } } }));
    const diskIds = point.disks.map((d) => d.diskId);
    await stopJournaling(op, diskIds);
    const base = await checkOriginalDisks(op);
    let rehydration: NonNullable<OperationReport['rehydration']>;
    if (base.usable) {
      rehydration = await rehydrateDelta(op, base, originals.vms);
    } else {
      // The original VMs hold their disks: no representation VM is needed to rewrite them.
      const rocva = await deployRocva(op, workflowInfo().runId, originals.rocvaSite);
      const bytesWritten = await rehydrate(op, point, targets, 'existing disks');
      await removeRocva(op, rocva);
      rehydration = { kind: 'full', bytesWritten, why: base.why };
    }
    await resumeProtection(op, targets, point);
    await reactivate(op, originals.inactive);
    undoPowerOn(op, originals.vms);
    await powerOnByPlan(op);
    const rtoMs = op.sinceDeclared();
    const rpoMs = type === 'planned' ? 0 : Math.max(0, input.declaredAt - point.dataFrom);

    await setDomainMode(op, 'Protected', originals.vms);
    // A lost recovery site is not contacted: what it holds of the domain is removed when it returns.
    if (type === 'planned') await removeFromSiteLeft(op, point.vms.map((vm) => ({ name: vm.name, diskIds: point.disks.filter((d) => d.vm === vm.name).map((d) => d.diskId) })));
    return { rtoMs, rpoMs, rehydration };
  });
}
