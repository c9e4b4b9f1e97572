import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { isCancellation, ParentClosePolicy, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { DomainAtSite, DomainHoldings } from '../../activities/permanent-failover';
import { failure } from '../../common/failures';
import { workflowNow } from '../clock';
import { failureMessage } from '../failure-policy';
import type { Operation } from '../operation';
import type { Retirement } from '../operation-messages';
import type { PermanentFailoverInput, RetireInput } from '../permanent-failover-messages';
import type { retireSite } from '../retire';
import { retireWorkflowId } from '../workflow-ids';
import type { OwnedDomain } from './ownership';
import { activitiesAt } from './site-activities';

/** How long the site a permanent failover retires gets to answer before it counts as unreachable. */
const RETIRED_SITE_ANSWERS_WITHIN = '20 seconds';
/** How long a permanent failover waits for the removal at a site that answered; past it the removal goes on alone. */
const REMOVAL_WAIT = '2 minutes';

/** The domain runs in failover at the site that becomes its primary, which owns it: read from the storage site. */
export async function checkOwnedAtNewPrimary(op: Operation): Promise<OwnedDomain & { diskIds: string[] }> {
  const owned = await op.step('check ownership', () =>
    activitiesAt(op.to).describeDomain.executeWithOptions({ summary: `read ${op.domain}'s ownership from the storage site` }, [{ domain: op.domain }]),
  );
  if (owned.ownerSite !== op.to) {
    throw failure('NotOwner', `a permanent failover makes ${op.to} the primary of ${op.domain} where it runs in failover, but ${owned.ownerSite ?? 'nobody'} owns it (epoch ${owned.epoch})`);
  }
  op.epoch = owned.epoch;
  for (const vm of owned.vms) op.vm(vm, 'protected');
  return owned;
}

/** What the retired site holds of the domain, or that it does not answer (down, or its worker gone): then its removal waits for its return. */
export async function askRetiredSite(op: Operation, { vms, diskIds }: Pick<DomainAtSite, 'vms' | 'diskIds'>): Promise<{ answered: true; holdings: DomainHoldings } | { answered: false; why: string }> {
  const ask = activitiesAt(op.from, { scheduleToCloseTimeout: RETIRED_SITE_ANSWERS_WITHIN, startToCloseTimeout: '10 seconds' });
  return op.step(`ask ${op.from} what it holds of ${op.domain}`, async () => {
    try {
      return { answered: true as const, holdings: await ask.domainHoldings.executeWithOptions({ summary: `${op.domain}'s VMs and disks at ${op.from}` }, [{ domain: op.domain, vms, diskIds }]) };
    } catch (error) {
      if (isCancellation(error)) throw error;
      return { answered: false as const, why: `${op.from} did not answer within ${RETIRED_SITE_ANSWERS_WITHIN} (${failureMessage(error)})` };
    }
  });
}

/**
 * The runbook's next version, for the new direction, submitted by this workflow (a retry finds it
 * rather than adding another). Undo (pushed first: a cancel may come while the version is written):
 * the version before it is submitted again, as the newest; the store keeps every version, so the
 * history shows both.
 */
export async function submitNewDirection(op: Operation, newDirection: PermanentFailoverInput['newDirection']): Promise<{ name: string; version: number }> {
  const name = op.runbook.metadata.name;
  const by = workflowInfo().workflowId;
  op.undo.push(`runbook ${name} back to its direction before (the version before the new direction's submitted again)`, async () => {
    await activitiesAt(op.to).revertRunbookVersion.executeWithOptions({ summary: `runbook ${name}: the version before ${by}'s again` }, [{ name, submittedBy: by, revertedBy: `${by}/undo` }]);
  });
  const { version } = await op.step(`write runbook ${name} for the new direction`, () =>
    activitiesAt(op.to).submitRunbookVersion.executeWithOptions({ summary: `runbook ${name}: primary ${newDirection.primary}, recovery ${newDirection.recovery ?? 'none'}` }, [
      { name, text: newDirection.text, submittedBy: by },
    ]),
  );
  return { name, version };
}

/** The record that names the retired site and the new direction (read by the API to refuse a failback to it). Undo: withdrawn. */
export async function recordPermanentFailover(op: Operation, newDirection: PermanentFailoverInput['newDirection'], runbook: { name: string; version: number }): Promise<void> {
  const workflowId = workflowInfo().workflowId;
  op.undo.push(`the record of the permanent failover withdrawn`, () =>
    activitiesAt(op.to).withdrawPermanentFailover.executeWithOptions({ summary: `withdraw ${op.domain}'s permanent failover record` }, [{ domain: op.domain, workflowId }]),
  );
  await op.step('record the permanent failover', () =>
    activitiesAt(op.to).recordPermanentFailover.executeWithOptions({ summary: `${op.domain}: ${op.from} retired, ${op.to} its primary` }, [
      {
        domain: op.domain,
        workflowId,
        at: workflowNow(),
        retiredSite: op.from,
        newPrimary: op.to,
        ...(newDirection.recovery !== undefined ? { newRecoverySite: newDirection.recovery } : {}),
        runbook,
        retiredBy: retireWorkflowId(op.domain, op.from),
      },
    ]),
  );
}

/**
 * Past the goal: the domain is removed from the retired site by a workflow of its own
 * (`retire/<domain>/<site>`, abandoned by this one), whose activity at the site retries until the
 * site answers, across restarts of workers and server. When the site answered just before, this
 * waits for the removal to report it; otherwise the removal is recorded as pending and the
 * operation ends, leaving the domain's desk free.
 */
export async function retireOldPrimary(op: Operation, owned: Pick<DomainAtSite, 'vms' | 'diskIds'>, site: Awaited<ReturnType<typeof askRetiredSite>>): Promise<Retirement> {
  const workflowId = retireWorkflowId(op.domain, op.from);
  const retirement: Retirement = { site: op.from, workflowId, state: 'pending', why: site.answered ? `the removal did not end within ${REMOVAL_WAIT}` : site.why };
  const input: RetireInput = { domain: op.domain, site: op.from, newPrimary: op.to, vms: owned.vms, diskIds: owned.diskIds, permanentFailover: workflowInfo().workflowId };
  const stepName = site.answered ? `remove ${op.domain} from ${op.from}` : `leave the removal of ${op.domain} from ${op.from} to ${workflowId} for when it returns`;
  await op.stepPastGoal(stepName, async () => {
    let removal: Promise<DomainHoldings> | undefined;
    try {
      const child = await startChild<typeof retireSite>('retireSite', {
        workflowId,
        args: [input],
        // It must outlive this operation: the site may return in months.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Remove ${op.domain} from ${op.from}, retired by ${input.permanentFailover}: waits until ${op.from} answers`,
      });
      removal = child.result();
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      retirement.why = `${workflowId} was already waiting to remove ${op.domain} from ${op.from}`;
    }
    if (!site.answered || !removal) return;
    const removed = await Promise.race([removal, sleep(REMOVAL_WAIT).then(() => undefined)]).catch((error: unknown) => {
      Object.assign(retirement, { state: 'failed', why: failureMessage(error) });
      throw error;
    });
    if (!removed) return;
    Object.assign(retirement, { state: 'removed', removed });
    delete retirement.why;
  });
  return retirement;
}
