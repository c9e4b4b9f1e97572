import { proxyActivities, upsertSearchAttributes, setCurrentDetails } from '@temporalio/workflow';
import type { ConditionalWriteReport, StoragePreflightActivities } from '../activities/storage-preflight';
import { DR_OPERATION, DR_OUTCOME, DR_SITE } from './search-attributes';
import { siteTaskQueue } from './task-queues';

export interface StoragePreflightInput {
  /** The site whose worker probes the storage site (each site reaches the store on its own path). */
  site: string;
}

/** Checks that the storage site, as seen from one site, enforces the conditional writes fencing needs. */
export async function storagePreflight({ site }: StoragePreflightInput): Promise<ConditionalWriteReport> {
  upsertSearchAttributes([
    { key: DR_OPERATION, value: 'storage-preflight' },
    { key: DR_SITE, value: site },
  ]);
  const { checkConditionalWrites } = proxyActivities<StoragePreflightActivities>({
    taskQueue: siteTaskQueue(site),
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 5 },
  });
  setCurrentDetails(`probing conditional writes from site **${site}**`);
  const report = await checkConditionalWrites.executeWithOptions(
    { summary: `probe If-None-Match / If-Match on the storage site from ${site}` },
    [],
  );
  const passed = report.createIfAbsentEnforced && report.compareAndSwapEnforced;
  upsertSearchAttributes([{ key: DR_OUTCOME, value: passed ? 'passed' : 'failed' }]);
  setCurrentDetails(
    passed
      ? `storage site ${report.endpoint}/${report.bucket} enforces conditional writes`
      : `storage site ${report.endpoint}/${report.bucket} does NOT enforce conditional writes: ownership fencing is unsafe there`,
  );
  return report;
}
