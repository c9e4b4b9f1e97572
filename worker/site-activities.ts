import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../common/config';
import { createStoragePreflightActivities } from '../activities/storage-preflight';

export interface SiteActivityDependencies {
  site: string;
  s3: S3Client;
  s3Settings: S3Settings;
}

/** Every activity a site worker offers on its task queue, built from that site's clients. */
export function createSiteActivities(deps: SiteActivityDependencies) {
  return {
    ...createStoragePreflightActivities(deps),
  };
}
