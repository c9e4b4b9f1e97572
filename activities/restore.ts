import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { failure } from '../common/failures';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import type { RestorePoint, RestorePointSummary } from '../datapath/records';
import { readRestorePoint } from '../datapath/restore-points';
import type { SiteProvider, Vm } from '../sites/provider';
import { atSite } from './site-failures';

export interface RestoreDependencies {
  store: ObjectStore;
  /** The site this worker acts on: the one that owns the domain being restored. */
  provider: SiteProvider;
}

/**
 * The steps of a restore in place that no other operation has: the state being replaced kept as
 * a restore point by the running protection, a new ownership epoch at the same site, and the VMs
 * as they are registered now. Each is idempotent.
 */
export function createRestoreActivities({ store, provider }: RestoreDependencies) {
  return {
    /**
     * Asks the domain's running protection (`protection`: its workflow id and the name of its
     * restore-point-now update) for a restore point now, labelled so that the list of points says
     * what it is. The update id makes a retried attempt get the point of the first instead of a second one.
     */
    async keepStateAsRestorePoint({ protection, updateId, label }: { protection: { workflowId: string; update: string }; updateId: string; label: string }): Promise<RestorePoint> {
      const handle = Context.current().client.workflow.getHandle(protection.workflowId);
      try {
        // A protection answers with the point's summary: the point itself is read from the store.
        const taken = await handle.executeUpdate<RestorePointSummary, [{ label: string }]>(protection.update, { updateId, args: [{ label }] });
        const point = await readRestorePoint(store, new Ownership(store, taken.domain), taken.id);
        if (!point) throw new Error(`restore point ${taken.id} of ${taken.domain}, just taken, is not in the store`);
        return point;
      } catch (error) {
        // The protection's validator refuses outside log mode: it heals once the sync or resync is done.
        if (error instanceof WorkflowUpdateFailedError) throw failure('ProtectionNotLogging', error.cause?.message ?? error.message);
        if (error instanceof WorkflowNotFoundError) throw failure('NoProtection', `${protection.workflowId} is not running: ${error.message}`);
        throw error;
      }
    },

    /**
     * The epoch after `fromEpoch`, for this site: the log written until now is sealed where it
     * ends, and nothing the fenced protection writes after it is ever read. A retry after a won
     * claim finds its own epoch.
     */
    async claimNextEpoch({ domain, fromEpoch }: { domain: string; fromEpoch: number }): Promise<{ epoch: number }> {
      const ownership = new Ownership(store, domain);
      const current = await ownership.inspect();
      const next = fromEpoch + 1;
      if (current.epoch >= next) {
        const holder = await ownership.read(next);
        if (holder.site === provider.site && current.epoch === next) return { epoch: next };
        throw failure('StaleEpoch', `epoch ${next} of ${domain} was claimed by ${holder.site}; ${current.owner?.site ?? 'nobody'} owns it now (epoch ${current.epoch})`);
      }
      if (current.owner?.site !== provider.site || current.epoch !== fromEpoch) {
        throw failure('NotOwner', `${domain} is owned by ${current.owner?.site ?? 'nobody'} in epoch ${current.epoch}, not by ${provider.site} in epoch ${fromEpoch}`);
      }
      const claimed = await ownership.claim(provider.site, { fromEpoch });
      if (!claimed.won) throw failure('StaleEpoch', `epoch ${next} of ${domain} was claimed by ${claimed.owner.site} meanwhile`);
      return { epoch: next };
    },

    /** The VMs as the site has them registered now (absent ones are left out). */
    async vmsAsTheyAre({ vms }: { vms: string[] }): Promise<Vm[]> {
      const all = await atSite(() => provider.listVms());
      return all.filter((vm) => vms.includes(vm.name));
    },
  };
}

export type RestoreActivities = ReturnType<typeof createRestoreActivities>;
