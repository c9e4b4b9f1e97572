import type { Context } from '@temporalio/activity';
import type { TargetDisks } from '../datapath/rehydrate';
import type { SiteProvider } from '../sites/provider';

/**
 * The site's disks as one activity attempt writes them: every write carries the attempt's fence,
 * its scheduled time on the Temporal server (sites/provider.ts DiskWriteOptions). A retry after a
 * heartbeat timeout is scheduled later than the attempt it replaces, so once it has written a
 * disk the site refuses the old attempt there, should its worker wake up or reconnect.
 */
export function fencedTarget(provider: SiteProvider, context: Context): TargetDisks {
  const fence = context.info.currentAttemptScheduledTimestampMs;
  return {
    createDisk: (spec) => provider.createDisk(spec),
    readDisk: (diskId, offset, length) => provider.readDisk(diskId, offset, length),
    writeDisk: (diskId, offset, data) => provider.writeDisk(diskId, offset, data, { fence }),
  };
}
