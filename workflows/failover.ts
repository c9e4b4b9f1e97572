import { workflowInfo } from '@temporalio/workflow';
import { failure } from '../common/failures';
import type { FailoverInput } from './failover-messages';
import { towardsRecoverySite } from './operation';
import type { FollowUp, OperationReport } from './operation-messages';
import type { ContinuousFailbackInput } from './continuous-failback-messages';
import { workflowNow } from './clock';
import { holdCommitWindow } from './phases/commit-window';
import { setDomainMode } from './phases/domain-mode';
import { checkOwnership, claimWithFencing, drainAndHandOver } from './phases/ownership';
import { powerOnByPlan } from './phases/power-on';
import { resumeProtection } from './phases/protection-resume';
import { deployRocva, prepareTargetDisks, registerVms, rehydrate, removeRepresentationVms, removeRocva, resolveRecoveryPoint, targetVmOf, rocvaName } from './phases/rebuild';
import { withRunbook, type WithRunbook } from './phases/runbook';
import { shutDownInReverseOrder } from './phases/shutdown';

/**
 * Failover of a protected domain to its recovery site, planned (the primary shuts down, drains
 * and hands over) or forced (the primary is lost: the recovery site takes ownership, fencing it).
 * At the recovery site the domain is rebuilt through a RocVA and representation VMs, registered
 * with the runbook's placement and network settings, protected again and powered on by the
 * runbook's plan. Anything it created is undone if it aborts or is cancelled. With a commit
 * policy it then stays open for a commit or a rollback (`phases/commit-window.ts`).
 */
export async function failover(request: FailoverInput): Promise<OperationReport> {
  const input = await withRunbook(request);
  const { domain, type } = input;
  const op = towardsRecoverySite('failover', input, { type, memo: { pointInTime: input.pointInTime ?? 'latest' } });
  const report = await op.run(async () => {
    if (type === 'forced' && input.forcedConfirmation !== domain) {
      throw failure('ConfirmationRequired', `a forced failover of ${domain} must be confirmed by repeating the domain name: it fences the primary site ${op.from}`);
    }
    const owned = await checkOwnership(op, type === 'planned');
    if (type === 'planned') {
      await shutDownInReverseOrder(op, owned.vms);
      await drainAndHandOver(op, owned);
    } else {
      await claimWithFencing(op, owned);
    }

    const { point, targets } = await resolveRecoveryPoint(op, input.pointInTime);
    const rocva = await deployRocva(op, rocvaName(op, workflowInfo().runId));
    await prepareTargetDisks(op, targets.map(targetVmOf));
    await rehydrate(op, point, targets);
    await removeRepresentationVms(op, targets);
    await registerVms(op, targets);
    await resumeProtection(op, targets, point);
    await powerOnByPlan(op);
    const rtoMs = op.sinceDeclared();
    const rpoMs = type === 'planned' && !input.pointInTime ? 0 : Math.max(0, input.declaredAt - point.dataFrom);

    await removeRocva(op, rocva);
    await setDomainMode(
      op,
      'Running in Failover',
      targets.map((t) => t.name),
    );
    return { rtoMs, rpoMs };
  });
  const committed = input.commit ? await holdCommitWindow(op, input.commit, report) : report;
  const rolledBack = committed.commitWindow !== undefined && committed.commitWindow.state !== 'committed';
  return input.continuousFailback && !rolledBack ? { ...committed, followedBy: continuousFailbackAfter(input) } : committed;
}

/** The continuous failback a planned failover asked for: its desk starts it once the failover has succeeded. */
function continuousFailbackAfter(input: WithRunbook<FailoverInput>): FollowUp {
  const { domain, runbook, runbookVersion, requestedBy } = input;
  const request: ContinuousFailbackInput = { domain, runbook: { name: runbook.metadata.name }, runbookVersion, requestedBy, declaredAt: workflowNow() };
  return {
    operation: 'continuous-failback',
    summary: `Continuous failback of ${domain}, asked for by its failover: the original disks at ${runbook.spec.sites.primary} follow ${runbook.spec.sites.recovery} until failback, requested by ${requestedBy}`,
    input: request,
  };
}
