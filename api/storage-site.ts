/**
 * Storage site API: what the object store holds, read from the bucket alone, so that a recovery
 * site can find and import a domain without any contact to its primary.
 */
import express, { type Router } from 'express';
import { scanDomains } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import type { Logger } from '../common/logger';
import { requireRole } from './auth';
import { ProblemError } from './problem';

export interface StorageSiteRouterOptions {
  store: ObjectStore;
  log: Logger;
}

export function storageSiteRouter({ store, log }: StorageSiteRouterOptions): Router {
  const router = express.Router();

  router.get('/storage/domains', requireRole('viewer'), async (_req, res) => {
    let domains;
    try {
      domains = await scanDomains(store);
    } catch (error) {
      // Only the bucket listing itself fails the scan; damaged domains are listed with their problem.
      log.warn({ err: error }, 'storage site scan failed');
      throw new ProblemError({ title: 'Storage site unavailable', status: 503, detail: `cannot list ${store.settings.bucket}/${store.prefix}domains/: ${(error as Error).message}` });
    }
    res.json({ bucket: store.settings.bucket, prefix: store.prefix, domains });
  });

  return router;
}
