/**
 * Every feature router of the API process, in the order it mounts them: one list, which the API
 * process serves and the OpenAPI coverage test walks.
 */
import type { Client } from '@temporalio/client';
import type { Router } from 'express';
import type { Logger } from '../common/logger';
import type { ObjectStore } from '../datapath/object-store';
import type { InventoryLookup } from '../runbooks/inventory';
import type { RunbookStore } from '../runbooks/store';
import type { SiteClient } from '../sites/client';
import { auditRouter, type AuditTrail } from './audit';
import { domainListRouter } from './domain-list';
import { drillsRouter } from './drills';
import { operationsRouter } from './operations';
import { restoreRouter } from './restore';
import { restorePointsRouter } from './restore-points';
import { runbooksRouter } from './runbooks';
import { sitesRouter } from './sites';
import { storageSiteRouter } from './storage-site';
import { tokensRouter, type TokenStore } from './tokens';

export interface ApiRoutersOptions {
  client: Client;
  runbooks: RunbookStore;
  store: ObjectStore;
  sites: Map<string, SiteClient>;
  inventoryFor: InventoryLookup;
  log: Logger;
  tokens: TokenStore;
  audit: AuditTrail;
  /** `GET /metrics` (built with the HTTP metrics that see every request first). */
  metricsRouter: Router;
  webUiUrl?: string;
}

export function apiRouters({ client, runbooks, store, sites, inventoryFor, log, tokens, audit, metricsRouter, webUiUrl }: ApiRoutersOptions): Router[] {
  const webUi = webUiUrl ? { webUiUrl } : {};
  return [
    tokensRouter({ tokens, log }),
    auditRouter({ trail: audit }),
    runbooksRouter({ store: runbooks, log, inventoryFor }),
    storageSiteRouter({ store, log }),
    sitesRouter({ client, sites, log }),
    domainListRouter({ client, store, runbooks, log }),
    metricsRouter,
    restorePointsRouter({ client, store, runbooks, log }),
    operationsRouter({ client, runbooks, store, log, ...webUi, ...(sites.size > 0 ? { sites: { names: [...sites.keys()], inventoryFor } } : {}) }),
    drillsRouter({ client, runbooks, log, ...webUi }),
    restoreRouter({ client, runbooks, store, log, ...webUi }),
  ];
}
