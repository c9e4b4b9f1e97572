import { Context } from '@temporalio/activity';
import { failure } from '../common/failures';
import { activeDomainVms, clearConflict, DR_STATE, INACTIVE, nextConflict, readConflict, RECOVERED_BY, writeConflict, type ConflictRecord } from '../datapath/conflict';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import { exportSideCopy, fencePosition, removeSideCopy, type SideCopyRecord } from '../datapath/side-copy';
import type { SiteProvider } from '../sites/provider';
import { atSite } from './site-failures';
import { inBatches } from './vm-batches';
import { forEachLimited } from '../common/parallel';

/** VMs whose inactive mark is set or removed at once. */
const VMS_MARKED_AT_ONCE = 16;

export interface SplitBrainDependencies {
  store: ObjectStore;
  /** The site this worker acts on. */
  provider: SiteProvider;
}

/** An open conflict as the detector reports it to its workflow (for the Web UI). */
export type OpenConflict = Pick<ConflictRecord, 'domain' | 'site' | 'vms' | 'since' | 'owner'>;

/**
 * Split-brain after a forced failover, at the site that came back: finding the domains whose VMs
 * run here while another site owns them, and, when an operator resolves it, powering those stale
 * copies off, keeping their diverged writes as a side copy and marking them inactive.
 */
export function createSplitBrainActivities({ store, provider }: SplitBrainDependencies) {
  const site = provider.site;
  const runningHere = async (domain: string) => activeDomainVms(await atSite(() => provider.listVms()), { running: true, domain }).get(domain) ?? [];

  const activities = {
    /**
     * One detection pass: records (idempotently) a conflict for every domain whose active VMs run
     * here while another site owns it, and returns the conflicts open at this site. A pass that
     * listed the VMs just before a resolution deactivated them must not bring the conflict back:
     * after writing a record it looks again and withdraws the record if they no longer run.
     */
    async detectConflicts(): Promise<OpenConflict[]> {
      const open: OpenConflict[] = [];
      for (const [domain, vms] of activeDomainVms(await atSite(() => provider.listVms()), { running: true })) {
        const { epoch, owner } = await new Ownership(store, domain).inspect();
        if (!owner || owner.site === site) continue;
        const existing = await readConflict(store, domain);
        const record = nextConflict(existing, { domain, site, vms, owner: { site: owner.site, epoch } }, Date.now());
        if (record) {
          await writeConflict(store, record);
          if ((await runningHere(domain)).length === 0) {
            if ((await readConflict(store, domain))?.since === record.since) await clearConflict(store, domain);
            continue;
          }
          Context.current().log.warn('split-brain conflict recorded', { domain, site, vms, owner: owner.site, epoch });
        }
        const { since } = record ?? existing!;
        open.push({ domain, site, vms, since, owner: { site: owner.site, epoch } });
      }
      return open;
    },

    /** The conflict of `domain` open at this site, checked against ownership now. */
    async describeConflict({ domain }: { domain: string }): Promise<ConflictRecord> {
      const conflict = await readConflict(store, domain);
      if (!conflict) throw failure('NoConflict', `domain ${domain} has no split-brain conflict open`);
      if (conflict.site !== site) throw failure('NoConflict', `the conflict of ${domain} is at site ${conflict.site}, not at ${site}`);
      const { owner } = await new Ownership(store, domain).inspect();
      if (owner?.site === site) throw failure('NoConflict', `site ${site} owns ${domain} again: its VMs are not stale copies`);
      return conflict;
    },

    /** Every VM of `domain` here that is not deactivated, on or off: all of them are stale copies. */
    async staleVms({ domain }: { domain: string }): Promise<Array<{ name: string; poweredOn: boolean }>> {
      const vms = await atSite(() => provider.listVms());
      const names = activeDomainVms(vms, { domain }).get(domain) ?? [];
      return vms.filter((vm) => names.includes(vm.name)).map((vm) => ({ name: vm.name, poweredOn: vm.powerState === 'poweredOn' }));
    },

    /**
     * The VMs of `domain` here that a failover made (recovered copies: `recoveredBy` in their
     * metadata), active or not. At a recovery site that a forced failback fenced, these are what
     * the failback would have removed had the site answered.
     */
    async recoveredCopies({ domain }: { domain: string }): Promise<string[]> {
      const vms = await atSite(() => provider.listVms());
      return vms
        .filter((vm) => vm.kind === 'vm' && vm.metadata.protectedDomain === domain && vm.metadata[RECOVERED_BY] !== undefined)
        .map((vm) => vm.name)
        .sort();
    },

    /** Hard power-off: a stale copy's guest state is not wanted, its disk writes are kept by the side copy. Idempotent. */
    async powerOffVm({ vm }: { vm: string }): Promise<{ alreadyOff: boolean }> {
      const before = await atSite(() => provider.getVm(vm));
      if (before.powerState === 'poweredOff') return { alreadyOff: true };
      await atSite(() => provider.powerOff(vm));
      return { alreadyOff: false };
    },

    /**
     * Marks VMs inactive in their metadata (`drState: inactive`, by whom, since when), so that the
     * detector skips them and powerOnVm refuses them; `active: true` removes the mark. Idempotent.
     */
    async setVmsActive({ vms, active, by }: { vms: string[]; active: boolean; by: string }): Promise<void> {
      // Some VMs at a time: one by one, 1,200 VMs took 11 s of a failback.
      await forEachLimited(vms, VMS_MARKED_AT_ONCE, async (name) => {
        const { metadata } = await atSite(() => provider.getVm(name));
        const markedInactive = metadata[DR_STATE] === INACTIVE;
        if (markedInactive === !active) return;
        const { [DR_STATE]: _state, drInactiveBy: _by, drInactiveSince: _since, ...rest } = metadata;
        const next = active ? rest : { ...rest, [DR_STATE]: INACTIVE, drInactiveBy: by, drInactiveSince: new Date().toISOString() };
        await atSite(() => provider.reconfigureVm(name, { metadata: next }));
        Context.current().heartbeat();
      });
    },

    /**
     * Exports the stale VMs' writes that are not in the domain's chain (journal entries after the
     * position this site's fenced epoch was sealed at) into the side copy `name`. The VMs must be
     * off, so that the copy is complete.
     */
    async exportSideCopy({ domain, name, vms }: { domain: string; name: string; vms: string[] }): Promise<Omit<SideCopyRecord, 'segments'>> {
      const context = Context.current();
      const { fencedEpoch, cursor } = await fencePosition(store, new Ownership(store, domain), site);
      const { segments: _segments, ...record } = await exportSideCopy(store, {
        domain,
        name,
        site,
        vms,
        fencedEpoch,
        ...(cursor !== undefined ? { cursor } : {}),
        readJournal: (options) => atSite(() => provider.readJournal(options)),
        onSegment: (written) => context.heartbeat(written),
      });
      return record;
    },

    async removeSideCopy({ domain, name }: { domain: string; name: string }): Promise<void> {
      await removeSideCopy(store, domain, name);
    },

    /** Ends the conflict of `domain` at this site (another site's conflict is left alone). */
    async clearConflict({ domain }: { domain: string }): Promise<void> {
      const conflict = await readConflict(store, domain);
      if (conflict?.site === site) await clearConflict(store, domain);
    },
  };
  return {
    ...activities,
    /** The stale copies powered off by batches of VMs (activities/vm-batches.ts). */
    powerOffVmsOfBatch: inBatches((input: { vm: string }) => activities.powerOffVm(input), (input) => input.vm),
  };
}

export type SplitBrainActivities = ReturnType<typeof createSplitBrainActivities>;
