import { ApplicationFailure, Context } from '@temporalio/activity';
import { failure } from '../common/failures';
import { clearConflict, readConflict } from '../datapath/conflict';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import { permanentFailoverKey, permanentFailoverSchema, readPermanentFailover, type PermanentFailoverRecord } from '../datapath/permanent-failover';
import { RECORD_FORMAT_VERSION } from '../datapath/records';
import { sha256, type RunbookStore } from '../runbooks/store';
import type { SiteProvider, Vm } from '../sites/provider';
import { diskIfPresent } from './recovery-site';
import { atSite } from './site-failures';

export interface PermanentFailoverDependencies {
  store: ObjectStore;
  /** The site this worker acts on. */
  provider: SiteProvider;
  runbooks: RunbookStore;
}

/** A domain as its manifest names it: what a site is asked about. */
export interface DomainAtSite {
  domain: string;
  /** Its VMs' names. */
  vms: string[];
  /** Its disks' ids, the same at every site. */
  diskIds: string[];
}

/** What a site holds of a domain: its VMs (workload VMs, representation VMs, RocVAs) and disks. */
export interface DomainHoldings {
  vms: Array<{ name: string; kind: Vm['kind']; poweredOn: boolean }>;
  diskIds: string[];
}

/**
 * What a permanent failover does outside the data path: the runbook version for the new direction,
 * the record that the old primary is retired, and, at the retired site, the removal of everything of
 * the domain there. Each is idempotent: a retried submission finds its version by who submitted it,
 * a retried removal finds less to remove and reports what its killed attempts removed too.
 */
export function createPermanentFailoverActivities({ store, provider, runbooks }: PermanentFailoverDependencies) {
  const site = provider.site;

  /**
   * The domain's VMs here (tagged with it), the representation VMs that hold disks for them or for
   * `vms` (the domain's VMs by its manifest: one whose VM went already still counts), its RocVAs
   * (named after the domain and an operation's run), and the disks of all of them together with
   * those of `diskIds` (the domain's disks, same ids at every site) that exist here unattached.
   */
  async function holdingsOf({ domain, vms, diskIds }: DomainAtSite): Promise<DomainHoldings> {
    const all = await atSite(() => provider.listVms());
    const tagged = new Set(all.filter((vm) => vm.kind === 'vm' && vm.metadata.protectedDomain === domain).map((vm) => vm.name));
    const represented = new Set([...vms, ...tagged]);
    const rocva = new RegExp(`^rocva-${domain}-[0-9a-f]{8}$`);
    const mine = all.filter(
      (vm) =>
        (vm.kind === 'vm' && tagged.has(vm.name)) ||
        (vm.kind === 'representation' && (represented.has(vm.metadata.representing ?? '') || diskIds.some((id) => vm.diskIds.includes(id)))) ||
        (vm.kind === 'rocva' && rocva.test(vm.name)),
    );
    const disks = new Set(mine.flatMap((vm) => vm.diskIds));
    for (const id of diskIds) if (!disks.has(id) && (await diskIfPresent(provider, id))) disks.add(id);
    return { vms: mine.map((vm) => ({ name: vm.name, kind: vm.kind, poweredOn: vm.powerState === 'poweredOn' })).sort((a, b) => a.name.localeCompare(b.name)), diskIds: [...disks].sort() };
  }

  return {
    /**
     * Stores `text` as the runbook's newest version, submitted by `submittedBy` (the workflow that
     * asks). A version this submitter already stored with the same text is the answer: a retried
     * activity, or a replayed workflow, does not add a second one.
     */
    submitRunbookVersion: async ({ name, text, submittedBy }: { name: string; text: string; submittedBy: string }): Promise<{ version: number }> => {
      const earlier = (await runbooks.versions(name)).find((v) => v.submittedBy === submittedBy && v.sha256 === sha256(text));
      if (earlier) return { version: earlier.version };
      const record = await runbooks.put(name, text, submittedBy);
      Context.current().log.info('runbook version submitted', { runbook: name, version: record.version, submittedBy });
      return { version: record.version };
    },

    /**
     * The undo of `submitRunbookVersion`: the version before the one `submittedBy` stored is stored
     * again as the newest, by `revertedBy` (idempotent as a submission). Nothing when it stored none.
     */
    revertRunbookVersion: async ({ name, submittedBy, revertedBy }: { name: string; submittedBy: string; revertedBy: string }): Promise<{ version?: number }> => {
      const versions = await runbooks.versions(name);
      const submitted = versions.find((v) => v.submittedBy === submittedBy);
      if (!submitted) return {};
      const before = await runbooks.get(name, submitted.version - 1);
      if (!before) throw failure('RunbookMismatch', `runbook ${name} has no version ${submitted.version - 1} to return to`);
      const earlier = versions.find((v) => v.submittedBy === revertedBy && v.sha256 === sha256(before.text));
      if (earlier) return { version: earlier.version };
      const record = await runbooks.put(name, before.text, revertedBy);
      Context.current().log.info('runbook version reverted', { runbook: name, version: record.version, copyOf: submitted.version - 1, revertedBy });
      return { version: record.version };
    },

    /** Records the permanent failover (last writer wins: one operation of a domain runs at a time). */
    recordPermanentFailover: async (record: Omit<PermanentFailoverRecord, 'formatVersion'>): Promise<void> => {
      const body = permanentFailoverSchema.parse({ formatVersion: RECORD_FORMAT_VERSION, ...record });
      await store.put(permanentFailoverKey(store.prefix, record.domain), JSON.stringify(body), 'application/json');
    },

    /** The undo of the record: removed if it is still this workflow's (an earlier permanent failover's record is not this one's to remove). */
    withdrawPermanentFailover: async ({ domain, workflowId }: { domain: string; workflowId: string }): Promise<void> => {
      const record = await readPermanentFailover(store, domain);
      if (record?.workflowId === workflowId) await store.delete([permanentFailoverKey(store.prefix, domain)]);
    },

    /** What this site holds of the domain; asking it is also how a permanent failover learns whether the site answers. */
    domainHoldings: async (domain: DomainAtSite): Promise<DomainHoldings> => {
      return holdingsOf(domain);
    },

    /**
     * Removes everything this site holds of the domain (running stale copies included: powered off
     * hard, their writes are not the domain's), then ends a split-brain conflict recorded here.
     * Never at the domain's owner, nor at the site named as its new primary: those hold the domain
     * as it runs now. Heartbeats what it removed, so that a retry after a kill reports it too.
     */
    removeDomainHoldings: async ({ newPrimary, ...asked }: DomainAtSite & { newPrimary: string }): Promise<DomainHoldings> => {
      const { domain } = asked;
      const context = Context.current();
      const { owner, epoch } = await new Ownership(store, domain).inspect();
      if (site === newPrimary || owner?.site === site) {
        throw failure('SiteOwnsDomain', `site ${site} ${site === newPrimary ? 'is the new primary' : `owns ${domain} (epoch ${epoch})`}: nothing of ${domain} is removed there`);
      }
      const removed: DomainHoldings = (context.info.heartbeatDetails as DomainHoldings | undefined) ?? { vms: [], diskIds: [] };
      const holdings = await holdingsOf(asked);
      for (const vm of holdings.vms) {
        if (vm.kind === 'rocva') {
          await atSite(() => provider.destroyRocva(vm.name));
        } else {
          // Gone since it was listed (removed by someone else): what this removal wanted.
          await atSite(() => provider.powerOff(vm.name)).catch(unlessGone);
          await atSite(() => provider.unregisterVm(vm.name));
        }
        removed.vms.push(vm);
        context.heartbeat(structuredClone(removed));
      }
      for (const id of holdings.diskIds) {
        await atSite(() => provider.deleteDisk(id));
        removed.diskIds.push(id);
        context.heartbeat(structuredClone(removed));
      }
      if ((await readConflict(store, domain))?.site === site) await clearConflict(store, domain);
      return removed;
    },
  };
}

function unlessGone(error: unknown): void {
  if (!(error instanceof ApplicationFailure && error.type === 'VmNotFound')) throw error;
}

export type PermanentFailoverActivities = ReturnType<typeof createPermanentFailoverActivities>;
