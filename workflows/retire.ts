import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { DomainHoldings } from '../activities/permanent-failover';
import type { RetireInput } from './permanent-failover-messages';
import { activitiesAt, SITE_RETRY } from './phases/site-activities';
import { DR_DOMAIN, DR_OPERATION, DR_SITE } from './search-attributes';
import { someNames } from './listing';

/** Its one activity: at the retired site, retried until it answers (no attempt limit, a year at most). */
const removalAtRetiredSite = (site: string) =>
  activitiesAt(site, { startToCloseTimeout: '2 minutes', heartbeatTimeout: '30 seconds', scheduleToCloseTimeout: '365 days', retry: SITE_RETRY });

/**
 * Removes a domain from the site a permanent failover retired (id `retire/<domain>/<site>`): its
 * VMs (stale copies that run there included), representation VMs, RocVAs and disks, then the
 * split-brain conflict those copies opened. Its one activity runs on the site's own task queue and
 * is retried until the site answers: while the site or its worker is down it waits there, durably,
 * across restarts of workers and of the Temporal server, and holds up no operation of the domain.
 */
export async function retireSite(input: RetireInput): Promise<DomainHoldings> {
  const { domain, site } = input;
  upsertSearchAttributes([
    { key: DR_DOMAIN, value: domain },
    { key: DR_OPERATION, value: 'retire' },
    { key: DR_SITE, value: site },
  ]);
  setCurrentDetails(`**removal of ${domain} from ${site}**, retired by ${input.permanentFailover} (new primary: ${input.newPrimary})\n\nwaiting for ${site} to answer, then removing what it holds of ${domain}`);
  const removed = await removalAtRetiredSite(site).removeDomainHoldings.executeWithOptions({ summary: `remove ${domain}'s VMs and disks from ${site}, once it answers` }, [
    { domain, vms: input.vms, diskIds: input.diskIds, newPrimary: input.newPrimary },
  ]);
  setCurrentDetails(
    `**removal of ${domain} from ${site}**, retired by ${input.permanentFailover}\n\nremoved ${removed.vms.length} VM(s) (${someNames(removed.vms.map((vm) => vm.name)) || 'none'}) and ${removed.diskIds.length} disk(s)`,
  );
  return removed;
}
