import { upsertSearchAttributes } from '@temporalio/workflow';
import { failure } from '../common/failures';
import { towardsRecoverySite } from './operation';
import type { OperationReport } from './operation-messages';
import type { PermanentFailoverInput } from './permanent-failover-messages';
import { setDomainMode } from './phases/domain-mode';
import { withRunbook } from './phases/runbook';
import { askRetiredSite, checkOwnedAtNewPrimary, recordPermanentFailover, retireOldPrimary, submitNewDirection } from './phases/retirement';
import { DR_SITE } from './search-attributes';

/**
 * Permanent failover of a domain running in failover: the recovery site, where it runs and which
 * owns it, becomes its primary for good, and the old primary is retired. The runbook gets a version
 * for the new direction (primary: the recovery site; recovery: the new recovery site, or none), the
 * permanent failover is recorded (a failback to the retired site is refused by name from then on),
 * and the mode is Protected at the new primary, whose protection has run since the failover. Then,
 * past the goal, the domain is removed from the retired site: at once when it answers, else by a
 * workflow of its own once it returns. Aborted before its goal, it withdraws the record and submits
 * the runbook's earlier version again; the domain stays Running in Failover.
 */
export async function permanentFailover(request: PermanentFailoverInput): Promise<OperationReport> {
  const input = await withRunbook(request);
  const { domain, newDirection } = input;
  const op = towardsRecoverySite('permanent-failover', input, { memo: { newRecoverySite: newDirection.recovery ?? 'none' } });
  upsertSearchAttributes([{ key: DR_SITE, value: op.from }]);
  return op.run(async () => {
    if (input.confirmation !== domain) {
      throw failure('ConfirmationRequired', `a permanent failover of ${domain} must be confirmed by repeating the domain name: it retires ${op.from} and removes what it holds of ${domain}`);
    }
    const owned = await checkOwnedAtNewPrimary(op);
    const retiredSite = await askRetiredSite(op, owned);
    const runbook = await submitNewDirection(op, newDirection);
    await recordPermanentFailover(op, newDirection, runbook);
    await setDomainMode(op, 'Protected', owned.vms);
    const retirement = await retireOldPrimary(op, owned, retiredSite);
    return { newDirection: { runbook, primary: newDirection.primary, ...(newDirection.recovery !== undefined ? { recovery: newDirection.recovery } : {}) }, retirement };
  });
}
