/**
 * Storage site API: what the object store holds, read from the bucket alone, so that a recovery
 * site can find and import a domain without any contact to its primary.
 */
import express, { type Router } from 'express';
import { scanDomains, type ImportableDomain } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import type { Logger } from '../common/logger';
import { requireRole } from './auth';
import { routeDocs } from './openapi/route-docs';
import { ProblemError } from './problem';

export interface StorageSiteRouterOptions {
  store: ObjectStore;
  log: Logger;
}

export function storageSiteRouter({ store, log }: StorageSiteRouterOptions): Router {
  const router = express.Router();
  routeDocs(router).get('/storage/domains', {
    summary: 'The domains the storage site holds, read from the bucket alone (what a recovery site can import)',
    responses: { 200: '`{bucket, prefix, domains: [...]}`; a damaged domain is listed with its `problem`' },
    problems: [503],
  });

  router.get('/storage/domains', requireRole('viewer'), async (_req, res) => {
    const domains = await scanOrUnavailable(store, log);
    res.json({ bucket: store.settings.bucket, prefix: store.prefix, domains });
  });

  return router;
}

/** The domains the bucket holds; 503 naming the bucket when it cannot be listed (damaged domains are listed with their problem). */
export async function scanOrUnavailable(store: ObjectStore, log: Logger): Promise<ImportableDomain[]> {
  try {
    return await scanDomains(store);
  } catch (error) {
    log.warn({ err: error }, 'storage site scan failed');
    throw new ProblemError({ title: 'Storage site unavailable', status: 503, detail: `cannot list ${store.settings.bucket}/${store.prefix}domains/: ${(error as Error).message}` });
  }
}
