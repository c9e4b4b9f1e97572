import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../common/config';
import { createDatapathActivities } from '../activities/datapath';
import { ObjectStore } from '../datapath/object-store';
import { createDomainStatusActivities } from '../activities/domain-status';
import { createFailbackDataActivities } from '../activities/failback-data';
import { createHandoverActivities } from '../activities/handover';
import { createPrimarySiteActivities, createRecoverySiteActivities } from '../activities/recovery-site';
import { createRestoreActivities } from '../activities/restore';
import { createPermanentFailoverActivities } from '../activities/permanent-failover';
import { createSplitBrainActivities } from '../activities/split-brain';
import { createStoragePreflightActivities } from '../activities/storage-preflight';
import { checkBatchActivities, vmPowerBatchActivities } from '../activities/vm-batches';
import { createVmPowerActivities } from '../activities/vm-power';
import { createWebhookActivities } from '../activities/webhook';
import type { SecretResolver } from '../common/secrets';
import type { SiteProvider } from '../sites/provider';
import { RunbookStore } from '../runbooks/store';
import type { SegmentWriterOptions } from '../datapath/segment-writer';

export interface SiteActivityDependencies {
  site: string;
  s3: S3Client;
  s3Settings: S3Settings;
  provider: SiteProvider;
  secrets: SecretResolver;
  /** How the replicators write log segments (the operator's `DR_SEGMENT_INLINE_MAX_BYTES`), and the memory they share (`DR_REPLICATION_STAGING_MIB`). */
  segmentWriting?: SegmentWriterOptions;
  /** How many rehydrations run at once (the operator's `DR_REHYDRATIONS_AT_ONCE`). */
  rehydrationsAtOnce?: number;
}

/** Every activity a site worker offers on its task queue, built from that site's clients. */
export function createSiteActivities(deps: SiteActivityDependencies) {
  const store = new ObjectStore(deps.s3, deps.s3Settings);
  const vmPower = createVmPowerActivities(deps);
  const primarySite = createPrimarySiteActivities(deps);
  return {
    ...createStoragePreflightActivities(deps),
    ...vmPower,
    ...createRecoverySiteActivities(deps),
    ...primarySite,
    ...vmPowerBatchActivities({ shutdownForHandover: primarySite.shutdownForHandover, powerOnVm: (input) => vmPower.powerOnVm(input) }),
    ...checkBatchActivities({ checkGuest: (input) => vmPower.checkGuest(input) }),
    ...createWebhookActivities(deps),
    ...createDatapathActivities({
      store,
      segmentWriting: deps.segmentWriting,
      rehydrationsAtOnce: deps.rehydrationsAtOnce,
      site: (name) => {
        if (name !== deps.site) throw new Error(`the worker of site ${deps.site} cannot act on site ${name}`);
        return deps.provider;
      },
    }),
    ...createHandoverActivities({ store, provider: deps.provider, segmentWriting: deps.segmentWriting }),
    ...createFailbackDataActivities({ store, provider: deps.provider }),
    ...createDomainStatusActivities({ store }),
    ...createSplitBrainActivities({ store, provider: deps.provider }),
    ...createRestoreActivities({ store, provider: deps.provider }),
    ...createPermanentFailoverActivities({ store, provider: deps.provider, runbooks: new RunbookStore(deps.s3, deps.s3Settings) }),
  };
}
