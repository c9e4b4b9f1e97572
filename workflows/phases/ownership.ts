import { patched } from '@temporalio/workflow';
import { failure } from '../../common/failures';
import type { Operation } from '../operation';
import { activitiesAt, longActivitiesAt, SITE_RETRY } from './site-activities';
import { endProtection, startProtection } from './protection';
import { everyDiskLoggedUpdate } from '../protect';
import { protectionWorkflowId } from '../workflow-ids';

export interface OwnedDomain {
  ownerSite?: string;
  epoch: number;
  vms: string[];
}

/**
 * Reads who owns the domain from the storage site (no contact to the site it leaves). The site it
 * moves to must not own it already; a planned handover needs the site it leaves to own it.
 */
export async function checkOwnership(op: Operation, planned: boolean): Promise<OwnedDomain> {
  const owned = await op.step('check ownership', () =>
    activitiesAt(op.to).describeDomain.executeWithOptions({ summary: `read ${op.domain}'s ownership from the storage site` }, [{ domain: op.domain }]),
  );
  if (owned.ownerSite === op.to) throw failure('AlreadyOwned', `${op.domain} is already owned by ${op.to} (epoch ${owned.epoch}): it has moved there already`);
  if (planned && owned.ownerSite !== op.from) {
    throw failure('NotOwner', `a planned handover needs ${op.domain} owned by ${op.from}, but ${owned.ownerSite ?? 'nobody'} owns it`);
  }
  for (const vm of owned.vms) op.vm(vm, 'protected');
  return owned;
}

/**
 * Planned: the site the domain leaves replicates the rest of its journal, its protection stops,
 * and it hands ownership to the site the domain moves to (a new epoch after its last segment).
 * Undo (pushed before protection stops, so that a handover that fails or is cancelled is covered
 * too): ownership is with the site it left again, in a new epoch, and its protection resumes.
 */
export async function drainAndHandOver(op: Operation, owned: OwnedDomain): Promise<void> {
  const everyDiskLogged = (summary: string, drainedThrough?: { epoch: number; lastSegment: number | null }) =>
    longActivitiesAt(op.from, '30 minutes').awaitEveryDiskLogged.executeWithOptions({ summary }, [
      { protection: { workflowId: protectionWorkflowId(op.domain, op.from, owned.epoch), update: everyDiskLoggedUpdate.name }, domain: op.domain, ...(drainedThrough ? { drainedThrough } : {}) },
    ]);
  const drain = (summary: string) => longActivitiesAt(op.from, '30 minutes').drainReplication.executeWithOptions({ summary }, [{ domain: op.domain }]);
  if (patched('handover-awaits-every-disk-logged')) {
    // A disk attached just before may not be in the log yet, or still being copied into it: sealed
    // before, the log would have no restorable end, or leave the disk out without a word.
    await op.step('wait until every disk is logged', () => everyDiskLogged(`wait until ${op.domain}'s protection at ${op.from} logs every disk (no sync under way)`));
  }
  let drained = await op.step('drain replication', () => drain(`drain ${op.domain}'s journal at ${op.from} into the log`));
  if (patched('handover-looks-again-after-drain')) {
    // The VMs are off, but a disk can still be attached to one while the log drains: the look
    // before the drain did not see it, and the sealed log would leave it out. Once the protection
    // has copied it, the log ends past where the drain left it.
    const through = { epoch: drained.epoch, lastSegment: drained.lastSegment };
    const after = await op.step('check every disk is logged after the drain', () => everyDiskLogged(`check that ${op.domain}'s protection at ${op.from} still logs every disk after the drain`, through));
    if (after.logGrewPastDrain) {
      const tookIn = after.lookedFor.length > 0 ? `the protection took in ${after.lookedFor.join(', ')}` : 'the log grew past the drain';
      drained = await op.step('drain replication again', () => drain(`drain ${op.domain}'s journal at ${op.from} again: ${tookIn}`));
    }
  }
  if (recordsDeparture()) {
    // Where the disks left behind stand, so that a failback to this site can apply only what changed since.
    await op.step(`record the departure from ${op.from}`, () =>
      longActivitiesAt(op.from, '30 minutes').recordDeparture.executeWithOptions({ summary: `record where ${op.domain}'s disks at ${op.from} stand` }, [
        { domain: op.domain, epoch: drained.epoch, kind: 'planned', lastSegment: drained.lastSegment },
      ]),
    );
  }
  const resumesStoppedProtection = patched('failed-handover-resumes-protection');
  const resume = (epoch: number) =>
    startProtection({
      domain: op.domain,
      site: op.from,
      epoch,
      vms: owned.vms,
      settings: op.runbook.spec.protection,
      resumeAt: { cursor: drained.cursor },
      reason: `resumed after an aborted ${op.title()}`,
    });
  if (resumesStoppedProtection) {
    // Pushed before protection stops: a handover that then fails or is cancelled must not leave the
    // domain unprotected. Whether ownership moved is read from the storage site, not assumed.
    op.undo.push(`ownership of ${op.domain} back with ${op.from} in a new epoch, whose protection resumed`, async () => {
      const now = await activitiesAt(op.to).describeDomain.executeWithOptions({ summary: `who owns ${op.domain} after the handover stopped?` }, [{ domain: op.domain }]);
      const movedOn = now.ownerSite === op.to;
      const back = await activitiesAt(op.to).releaseDomain.executeWithOptions({ summary: movedOn ? `return ${op.domain} to ${op.from}` : `a new epoch of ${op.domain} for ${op.from}` }, [
        // Nothing the site it moved to wrote joins the chain; the site it left keeps what it drained.
        { domain: op.domain, epoch: now.epoch, nextSite: op.from, lastSegment: movedOn ? null : drained.lastSegment },
      ]);
      // As a new owner: the manifest is recorded for the site it left again.
      await resume(back.epoch);
    });
  }
  await endProtection(op.domain, op.from, owned.epoch, 'stop');
  const atFrom = activitiesAt(op.from, { retry: { ...SITE_RETRY, maximumInterval: '10 seconds', maximumAttempts: 5 } });
  const handed = await op.step('hand over ownership', () =>
    atFrom.releaseDomain.executeWithOptions({ summary: `hand ${op.domain} over to ${op.to} after segment ${drained.lastSegment ?? 'none'}` }, [
      { domain: op.domain, epoch: drained.epoch, nextSite: op.to, lastSegment: drained.lastSegment },
    ]),
  );
  op.epoch = handed.epoch;
  if (resumesStoppedProtection) return;
  op.undo.push(`ownership of ${op.domain} returned to ${op.from}, whose protection resumed`, async () => {
    const back = await activitiesAt(op.to).releaseDomain.executeWithOptions({ summary: `return ${op.domain} to ${op.from}` }, [
      { domain: op.domain, epoch: handed.epoch, nextSite: op.from, lastSegment: null },
    ]);
    await resume(back.epoch);
  });
}

/**
 * Forced: the site the domain moves to claims the next epoch, fencing the one it leaves (assumed
 * lost), whose protection is cancelled. Ownership is not given back on abort: handing a domain
 * to a lost site is unsafe.
 */
export async function claimWithFencing(op: Operation, owned: OwnedDomain): Promise<void> {
  const claimed = await op.step('take over ownership', () =>
    activitiesAt(op.to).claimDomain.executeWithOptions({ summary: `take ${op.domain} over for ${op.to}, fencing ${op.from}` }, [{ domain: op.domain, site: op.to, takeover: true }]),
  );
  if (!claimed.won) throw failure('StaleEpoch', `${claimed.ownerSite} claimed ${op.domain} first (epoch ${claimed.epoch})`);
  op.epoch = claimed.epoch;
  op.undo.keep(`ownership of ${op.domain} stays with ${op.to} (epoch ${claimed.epoch}): ${op.from} was fenced, and handing a domain back to a lost site is unsafe`);
  await endProtection(op.domain, op.from, owned.epoch, 'cancel');
  if (recordsDeparture()) {
    // The fenced site may hold writes never replicated: the record names the sealed position, and the failback check derives its fingerprints.
    await op.step(`record the departure from ${op.from}`, () =>
      activitiesAt(op.to).recordDeparture.executeWithOptions({ summary: `record where ${op.domain}'s chain was sealed when ${op.from} was fenced` }, [
        { domain: op.domain, epoch: claimed.epoch - 1, kind: 'forced' },
      ]),
    );
  }
}

/** Failovers recorded before departures were: their histories replay without the step. */
export const recordsDeparture = () => patched('failover-records-departure');
