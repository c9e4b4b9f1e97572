/**
 * One simulated site as its own process: the site API on `port`, and an admin API on `adminPort`
 * that stays up while the site is "down", to stage disasters (latency, failing calls, hanging
 * guest shutdowns, a partition for a while, whole-site outage, a datastore's capacity) and to
 * drive the guest workload.
 *
 *   node --require tsx/cjs sites/simulated/main.ts --site <name> --data <dir> [--sites-file f] [--port p --admin-port q]
 * The bearer token comes from DR_SITE_TOKEN.
 */
import type { Server } from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import express from 'express';
import { z } from 'zod';
import { OperatorError } from '../../common/errors';
import { createLogger } from '../../common/logger';
import { stopWhenOrphaned } from '../../common/child-process';
import { loadSiteDefinitions } from '../config';
import { Workload } from '../workload';
import { activePartition, createSiteApp, type Faults } from './http';
import { provisionProtectedDomains } from './provision';
import { SimulatedSite } from './site';

const FaultsBody = z.strictObject({
  latencyMs: z.int().min(0).max(600_000).optional(),
  errorRate: z.number().min(0).max(1).optional(),
  hangGuestShutdown: z.boolean().optional(),
});
const PartitionBody = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('drop'), forMs: z.int().min(1).max(3_600_000) }),
  z.strictObject({ mode: z.literal('delay'), delayMs: z.int().min(1).max(600_000), forMs: z.int().min(1).max(3_600_000) }),
]);
const CapacityBody = z.strictObject({ capacityBytes: z.int().min(0) });
const WorkloadBody = z.strictObject({
  writesPerSecond: z.number().positive().max(100_000),
  blockSize: z.int().min(512).max(1024 * 1024).default(4096),
  /** Writes of blockSize up to this many bytes (blockSize times a power of two, each size as often), instead of blockSize only. */
  maxBlockSize: z.int().min(512).max(64 * 1024 * 1024).optional(),
  pattern: z.enum(['sequential', 'random', 'hotspot']).default('random'),
  seed: z.string().min(1).max(64),
  vms: z.array(z.string()).optional(),
});

stopWhenOrphaned();

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { site: { type: 'string' }, data: { type: 'string' }, 'sites-file': { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' } },
  });
  if (!values.site || !values.data) throw new OperatorError('usage: sites/simulated/main.ts --site <name> --data <dir> [--sites-file f] [--port p --admin-port q]');
  const token = process.env.DR_SITE_TOKEN;
  if (!token) throw new OperatorError('DR_SITE_TOKEN must hold the site API token');
  const definition = loadSiteDefinitions(values['sites-file']).find((s) => s.name === values.site);
  if (!definition) throw new OperatorError(`site "${values.site}" is not defined`);
  const port = values.port ? Number(values.port) : definition.port;
  const adminPort = values['admin-port'] ? Number(values['admin-port']) : definition.adminPort;
  const log = createLogger(`site.${definition.name}`);

  const site = new SimulatedSite({ name: definition.name, dataDir: values.data, inventory: definition.inventory, bootMs: definition.bootMs, shutdownMs: definition.shutdownMs });
  await provisionProtectedDomains(site, definition);
  const workload = new Workload(site, path.join(values.data, 'workload-record.jsonl'));
  if (definition.workload) workload.start(definition.workload);

  const faults: Faults = { latencyMs: 0, errorRate: 0 };
  const app = createSiteApp(site, { token, faults, log });
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = app.listen(port, '127.0.0.1', () => resolve());
      s.once('error', reject);
      server = s;
    });
  const takeDown = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      const s = server;
      server = undefined;
      s.close(() => resolve());
      s.closeAllConnections();
    });
  await listen();

  const admin = express();
  admin.use(express.json({ limit: '16kb' }));
  admin.use((req, res, next) => {
    if (req.get('authorization') !== `Bearer ${token}`) return void res.status(401).type('application/problem+json').send(JSON.stringify({ title: 'Unauthorized', status: 401 }));
    next();
  });
  const state = () => {
    const { partition: _partition, ...rates } = faults;
    const partition = activePartition(faults);
    return {
      site: definition.name,
      up: server !== undefined,
      ...rates,
      partition: partition ? { ...partition, until: new Date(partition.until).toISOString() } : null,
      hangGuestShutdown: site.hangGuestShutdown,
      datastores: site.datastoreUsage(),
      workload: workload.status(),
    };
  };
  const invalid = (res: express.Response, error: z.ZodError) =>
    void res.status(400).type('application/problem+json').send(JSON.stringify({ title: 'Bad request', status: 400, detail: z.prettifyError(error) }));
  admin.get('/admin/state', (_req, res) => void res.json(state()));
  admin.post('/admin/faults', (req, res) => {
    const parsed = FaultsBody.safeParse(req.body);
    if (!parsed.success) return invalid(res, parsed.error);
    if (parsed.data.latencyMs !== undefined) faults.latencyMs = parsed.data.latencyMs;
    if (parsed.data.errorRate !== undefined) faults.errorRate = parsed.data.errorRate;
    if (parsed.data.hangGuestShutdown !== undefined) site.hangGuestShutdown = parsed.data.hangGuestShutdown;
    log.warn({ faults: state() }, 'faults changed');
    res.json(state());
  });
  // A partition ends by itself after forMs, so that a rehearsal cannot leave the site cut off.
  admin.post('/admin/partition', (req, res) => {
    const parsed = PartitionBody.safeParse(req.body);
    if (!parsed.success) return invalid(res, parsed.error);
    const { forMs, ...partition } = parsed.data;
    faults.partition = { ...partition, until: Date.now() + forMs };
    log.warn({ partition: state().partition }, 'site partitioned from its callers');
    res.json(state());
  });
  admin.delete('/admin/partition', (_req, res) => {
    delete faults.partition;
    log.warn('partition ended');
    res.json(state());
  });
  admin.post('/admin/datastores/:name', (req, res) => {
    const parsed = CapacityBody.safeParse(req.body);
    if (!parsed.success) return invalid(res, parsed.error);
    if (!site.setDatastoreCapacity(req.params.name, parsed.data.capacityBytes)) {
      return void res.status(404).type('application/problem+json').send(JSON.stringify({ title: 'Not found', status: 404, detail: `site ${definition.name} has no datastore "${req.params.name}"` }));
    }
    log.warn({ datastore: req.params.name, capacityBytes: parsed.data.capacityBytes }, 'datastore capacity changed');
    res.json(state());
  });
  admin.post('/admin/outage', async (_req, res) => {
    await takeDown();
    log.warn('site taken down: refusing all connections');
    res.json(state());
  });
  admin.post('/admin/restore', async (_req, res) => {
    if (!server) await listen();
    log.warn('site back up');
    res.json(state());
  });
  admin.post('/admin/workload', (req, res) => {
    const parsed = WorkloadBody.safeParse(req.body);
    if (!parsed.success) return invalid(res, parsed.error);
    workload.start(parsed.data);
    res.json(state());
  });
  admin.delete('/admin/workload', (_req, res) => {
    workload.stop();
    res.json(state());
  });
  const adminServer = admin.listen(adminPort, '127.0.0.1');
  log.info({ port, adminPort, dataDir: values.data }, 'site running');

  const shutdown = async () => {
    workload.stop();
    await takeDown();
    adminServer.close();
    site.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error: unknown) => {
  console.error(error instanceof OperatorError ? error.message : error);
  process.exit(1);
});
