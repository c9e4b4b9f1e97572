/** The HTTP API process: operators' and automations' entry point next to the Temporal Web UI. */
import { loadSettings } from '../common/config';
import { stopWhenOrphaned } from '../common/child-process';
import { OperatorError } from '../common/errors';
import { createLogger } from '../common/logger';
import { API_S3_PATIENCE, checkS3Reachable, createS3Client } from '../common/s3';
import { connectClient } from '../common/temporal';
import { createApp } from './app';
import { readTokenFile } from './auth';
import { AuditTrail } from './audit';
import { TokenStore } from './tokens';
import { apiMetrics } from './metrics';
import { apiRouters } from './routers';
import type { SiteInventory } from '../runbooks/inventory';
import { RunbookStore } from '../runbooks/store';
import { ObjectStore } from '../datapath/object-store';
import type { SiteClient } from '../sites/client';
import { loadSiteDefinitions } from '../sites/config';
import { readSiteTokens, siteClients } from '../sites/registry';

stopWhenOrphaned();

async function main(): Promise<void> {
  const settings = loadSettings();
  const log = createLogger('api');
  const temporal = await connectClient(settings.temporal);
  const s3 = createS3Client(settings.s3, API_S3_PATIENCE);
  await checkS3Reachable(s3, settings.s3);

  const runbooks = new RunbookStore(s3, settings.s3);
  const store = new ObjectStore(s3, settings.s3);
  const tokens = new TokenStore(store, log);
  if (process.env.DR_API_TOKENS_FILE) await tokens.seed(readTokenFile(process.env.DR_API_TOKENS_FILE), 'DR_API_TOKENS_FILE');
  const audit = new AuditTrail(store);
  const sites = process.env.DR_SITE_TOKENS_FILE ? siteClients(loadSiteDefinitions(), readSiteTokens(process.env.DR_SITE_TOKENS_FILE)) : new Map<string, SiteClient>();
  // Runbooks are checked against the live inventories of their sites when the API can reach them.
  const inventoryFor = async (name: string): Promise<SiteInventory | undefined> => {
    const site = sites.get(name);
    if (!site) return undefined;
    const inventory = await site.inventory();
    return {
      datacenters: inventory.datacenters,
      clusters: inventory.clusters.map((c) => c.name),
      resourcePools: inventory.resourcePools.map((r) => r.name),
      datastores: inventory.datastores.map((d) => d.name),
      networks: inventory.networks,
      storagePolicies: inventory.storagePolicies,
    };
  };
  const metrics = apiMetrics({ client: temporal, store, runbooks, log, sites: loadSiteDefinitions().map((d) => d.name) });
  const app = createApp({
    log,
    tokens: tokens.lookup,
    audit,
    httpMetrics: metrics.httpMetrics,
    healthChecks: [
      {
        name: 'temporal',
        target: `${settings.temporal.address} (namespace ${settings.temporal.namespace})`,
        check: async () => {
          await temporal.connection.workflowService.describeNamespace({ namespace: settings.temporal.namespace });
        },
      },
      { name: 's3', target: `${settings.s3.endpoint} (bucket ${settings.s3.bucket})`, check: () => checkS3Reachable(s3, settings.s3) },
    ],
    routers: apiRouters({ client: temporal, runbooks, store, sites, inventoryFor, log, tokens, audit, metricsRouter: metrics.router, ...(process.env.DR_TEMPORAL_UI_URL ? { webUiUrl: process.env.DR_TEMPORAL_UI_URL } : {}) }),
  });
  const server = app.listen(settings.api.port, settings.api.host, () => {
    log.info({ url: `http://${settings.api.host}:${settings.api.port}` }, 'API listening');
  });
  server.on('error', (error: NodeJS.ErrnoException) => {
    console.error(`API cannot listen on ${settings.api.host}:${settings.api.port}: ${error.code ?? error.message}`);
    process.exit(1);
  });
  const shutdown = () => {
    server.close(() => {
      void temporal.connection.close().then(() => process.exit(0));
    });
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof OperatorError ? error.message : error);
  process.exit(1);
});
