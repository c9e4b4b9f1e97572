import express, { type NextFunction, type Request, type Response } from 'express';
import { timingSafeEqual, createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../common/logger';
import { SiteError, siteError } from '../provider';
import { encodeJournalBatch, JOURNAL_BATCH_CONTENT_TYPE, WRITE_FENCE_HEADER } from '../wire';
import { MAX_JOURNAL_WAIT_MS, type SimulatedSite } from './site';

export interface Faults {
  /** Added to every API call. */
  latencyMs: number;
  /** Fraction (0..1) of API calls answered 503 without doing anything. */
  errorRate: number;
  /** A network partition between the site and its callers until `until` (epoch ms); it ends by itself. */
  partition?: Partition;
}

/**
 * What a partition does to each request that reaches the site while it lasts: `drop` resets its
 * connection before the site acts on it (the caller sees the site unreachable); `delay` holds it
 * `delayMs` first (a slow link), and a request whose caller gave up meanwhile is never acted on.
 */
export type Partition = { mode: 'drop'; until: number } | { mode: 'delay'; delayMs: number; until: number };

/** The partition still in force, if any. */
export function activePartition(faults: Faults, now = Date.now()): Partition | undefined {
  return faults.partition && now < faults.partition.until ? faults.partition : undefined;
}

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,79}$/, 'must be 1-80 letters, digits, space, . _ ( ) -');
const ip = z.strictObject({ address: z.string().max(45), prefix: z.int().min(0).max(128), gateway: z.string().max(45).optional(), dns: z.array(z.string().max(45)).max(4).default([]) });
const nic = z.strictObject({ network: name, ip: ip.optional() });
const placement = z.strictObject({ datacenter: name, cluster: name, resourcePool: name.optional(), datastore: name });
const RegisterBody = z.strictObject({
  kind: z.enum(['vm', 'representation']).optional(),
  cpus: z.int().min(1).max(768),
  memoryMiB: z.int().min(4),
  placement,
  storagePolicy: name.optional(),
  nics: z.array(nic).max(10),
  diskIds: z.array(name).max(60),
  metadata: z.record(z.string().max(64), z.string().max(1024)).optional(),
});
const ReconfigureBody = z.strictObject({ cpus: z.int().min(1).max(768).optional(), memoryMiB: z.int().min(4).optional(), storagePolicy: name.optional(), nics: z.array(nic).max(10).optional(), diskIds: z.array(name).max(60).optional(), metadata: z.record(z.string().max(63), z.string().max(1024)).optional() });
const DiskBody = z.strictObject({ datastore: name, sizeBytes: z.int().min(512).max(64 * 1024 ** 4), protected: z.boolean().default(false) });
const ProtectionBody = z.strictObject({ protected: z.boolean() });
const RocvaBody = z.strictObject({ placement, networks: z.strictObject({ externalReplication: name, internal: name, management: name }) });
const ShutdownBody = z.strictObject({ timeoutMs: z.int().min(0).max(3_600_000) });
/** Optional: a power-on without a body is unconditional. */
const PowerOnBody = z.strictObject({ unlessMetadata: z.record(z.string().max(64), z.string().max(1024)).optional() }).default({});
const ProbeBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('tcp'), port: z.int().min(1).max(65535) }),
  z.strictObject({ kind: z.literal('http'), port: z.int().min(1).max(65535), path: z.string().min(1).max(2048) }),
]);
/** As many VMs as a runbook may name (runbooks/schema.ts): a domain's replicator reads and trims the journal of all of them. */
const domainVms = z.array(name).max(20_000);
const TrimBody = z.strictObject({ upToSequence: z.int().min(0), vms: domainVms.optional() });
const JournalReadBody = z.strictObject({
  afterSequence: z.int().min(0).default(0),
  waitMs: z.int().min(0).max(MAX_JOURNAL_WAIT_MS).default(0),
  vms: domainVms.optional(),
  maxBytes: z.int().min(1).default(8 * 1024 * 1024),
  maxEntries: z.int().min(1).default(10_000),
});
const uint = (what: string, value: unknown, fallback?: number): number => {
  if (value === undefined && fallback !== undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw siteError('InvalidRequest', `${what} must be a non-negative integer`);
  return n;
};

function body<T>(schema: z.ZodType<T>, req: Request): T {
  const parsed = schema.safeParse(req.body);
  if (!parsed.success) throw siteError('InvalidRequest', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return parsed.data;
}

function problem(res: Response, status: number, code: string, detail: string): void {
  res.status(status).type('application/problem+json').send(JSON.stringify({ title: code, status, code, detail }));
}

/** The site's REST API, shaped like a hypervisor manager's: resources by name, power actions as POSTs. */
export function createSiteApp(site: SimulatedSite, options: { token: string; faults: Faults; log: Logger }): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // No client of a site revalidates its answers; an ETag would hash every JSON body for nothing (a 1,000-VM failover makes thousands of calls).
  app.set('etag', false);
  const tokenDigest = createHash('sha256').update(options.token).digest();

  // First of all: a partition cuts the health check too, as the network would.
  app.use((req, _res, next) => {
    const partition = activePartition(options.faults);
    if (!partition) return next();
    if (partition.mode === 'drop') return void req.socket.destroy();
    setTimeout(() => (req.socket.destroyed ? undefined : next()), partition.delayMs);
  });

  app.get('/healthz', (_req, res) => void res.json({ site: site.site, status: 'ok' }));

  app.use((req, res, next) => {
    const presented = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (!presented || !timingSafeEqual(createHash('sha256').update(presented).digest(), tokenDigest)) {
      return problem(res, 401, 'Unauthorized', `site ${site.site} needs its bearer token`);
    }
    next();
  });

  app.use((_req, res, next) => {
    const { latencyMs, errorRate } = options.faults;
    const proceed = () => (Math.random() < errorRate ? problem(res, 503, 'SiteUnavailable', `injected failure at site ${site.site}`) : next());
    if (latencyMs > 0) setTimeout(proceed, latencyMs);
    else proceed();
  });

  // The names of a 20,000-VM domain's VMs (journal reads and trims).
  const json = express.json({ limit: '2mb' });
  const raw = express.raw({ type: 'application/octet-stream', limit: '64mb' });

  app.get('/api/inventory', async (_req, res) => void res.json(await site.inventory()));
  app.get('/api/vms', async (_req, res) => void res.json(await site.listVms()));
  app.get('/api/vms/:name', async (req, res) => void res.json(await site.getVm(req.params.name)));
  app.put('/api/vms/:name', json, async (req, res) => void res.json(await site.registerVm({ name: String(req.params.name), ...body(RegisterBody, req) })));
  app.delete('/api/vms/:name', async (req, res) => {
    await site.unregisterVm(req.params.name, { deleteDisks: req.query.deleteDisks === 'true' });
    res.status(204).end();
  });
  app.patch('/api/vms/:name', json, async (req, res) => void res.json(await site.reconfigureVm(req.params.name, body(ReconfigureBody, req))));
  app.post('/api/vms/:name/power-on', json, async (req, res) => void res.json(await site.powerOn(req.params.name, body(PowerOnBody, req))));
  app.post('/api/vms/:name/power-off', async (req, res) => void res.json(await site.powerOff(req.params.name)));
  app.post('/api/vms/:name/guest-shutdown', json, async (req, res) => void res.json({ outcome: await site.shutdownGuest(req.params.name, body(ShutdownBody, req).timeoutMs) }));
  app.get('/api/vms/:name/heartbeat', async (req, res) => void res.json({ heartbeat: await site.guestHeartbeat(req.params.name) }));
  app.post('/api/vms/:name/probe', json, async (req, res) => void res.json(await site.probeGuest(req.params.name, body(ProbeBody, req))));

  app.put('/api/appliances/:name', json, async (req, res) => void res.json(await site.deployRocva({ name: String(req.params.name), ...body(RocvaBody, req) })));
  app.delete('/api/appliances/:name', async (req, res) => {
    await site.destroyRocva(req.params.name);
    res.status(204).end();
  });

  app.put('/api/disks/:id', json, async (req, res) => void res.json(await site.createDisk({ id: String(req.params.id), ...body(DiskBody, req) })));
  app.get('/api/disks', async (_req, res) => void res.json(await site.listDisks()));
  app.get('/api/disks/:id', async (req, res) => void res.json(await site.getDisk(req.params.id)));
  app.delete('/api/disks/:id', async (req, res) => {
    await site.deleteDisk(req.params.id);
    res.status(204).end();
  });
  app.put('/api/disks/:id/protection', json, async (req, res) => void res.json(await site.setDiskProtection(req.params.id, body(ProtectionBody, req).protected)));
  app.get('/api/disks/:id/data', async (req, res) => {
    const data = await site.readDisk(req.params.id, uint('query parameter offset', req.query.offset), uint('query parameter length', req.query.length));
    res.type('application/octet-stream').send(data);
  });
  app.get('/api/disks/:id/allocated-chunks', async (req, res) => void res.json(await site.allocatedChunks(req.params.id, uint('query parameter chunkBytes', req.query.chunkBytes))));
  app.put('/api/disks/:id/data', raw, async (req, res) => {
    if (!Buffer.isBuffer(req.body)) throw siteError('InvalidRequest', 'send the data as application/octet-stream');
    const fence = req.get(WRITE_FENCE_HEADER);
    await site.writeDisk(req.params.id, uint('query parameter offset', req.query.offset), req.body, fence === undefined ? {} : { fence: uint(`header ${WRITE_FENCE_HEADER}`, fence) });
    res.status(204).end();
  });

  // A read, but with a body: the VM names of a 10,000-VM domain do not fit in a request line.
  app.post('/api/journal/read', json, async (req, res) => {
    const batch = await site.readJournal(body(JournalReadBody, req));
    res.type(JOURNAL_BATCH_CONTENT_TYPE).send(encodeJournalBatch(batch));
  });
  app.post('/api/journal/trim', json, async (req, res) => {
    const trim = body(TrimBody, req);
    await site.trimJournal(trim.upToSequence, trim.vms);
    res.status(204).end();
  });
  app.get('/api/events', async (req, res) => void res.json(await site.events(uint('query parameter after', req.query.after, 0))));

  app.use((req, res) => problem(res, 404, 'NotFound', `no route for ${req.method} ${req.path}`));
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof SiteError) return problem(res, error.status, error.code, error.message);
    const status = (error as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) return problem(res, status, 'InvalidRequest', (error as Error).message);
    options.log.error({ err: error, method: req.method, path: req.path }, 'site API error');
    problem(res, 500, 'InternalError', 'the site failed; see its log');
  });
  return app;
}
