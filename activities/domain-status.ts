import type { ObjectStore } from '../datapath/object-store';
import { domainStatusKey, type DomainStatus } from '../datapath/domain-status';
import { RECORD_FORMAT_VERSION } from '../datapath/records';

export function createDomainStatusActivities({ store }: { store: ObjectStore }) {
  return {
    /** Last writer wins: only the operation holding the domain (one at a time) writes it. */
    async setDomainStatus(input: Omit<DomainStatus, 'formatVersion' | 'updatedAt'>): Promise<DomainStatus> {
      const status: DomainStatus = { formatVersion: RECORD_FORMAT_VERSION, ...input, updatedAt: Date.now() };
      await store.put(domainStatusKey(store.prefix, input.domain), JSON.stringify(status), 'application/json');
      return status;
    },
  };
}

export type DomainStatusActivities = ReturnType<typeof createDomainStatusActivities>;
