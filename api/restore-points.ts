/**
 * Restore points of a protected domain: what each holds (time, consistency, the VM configuration
 * recorded), what was said about it since (label, pin, the drills that tested it), and how long
 * retention keeps it; taking one now through the running protection; pinning. See docs/restore-points.md.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../common/logger';
import { selectRetained, windowOnly, type RetentionPolicy } from '../common/retention';
import { DomainKeys, RESTORE_POINT_ID } from '../datapath/keys';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import { manifestSchema, parseRecord, type RestorePoint, type VmMetadata } from '../datapath/records';
import { listRestorePoints, pinRestorePoint, readPointTags, readRestorePoint, unpinRestorePoint, type PointTags } from '../datapath/restore-points';
import { latestRetention } from '../runbooks/domain-retention';
import type { RunbookStore } from '../runbooks/store';
import { formatDuration } from '../runbooks/units';
import { restorePointNowUpdate } from '../workflows/protect';
import { protectionWorkflowId } from '../workflows/workflow-ids';
import { principalName, requireRole } from './auth';
import { domainParam } from './operations';
import { badRequest, conflict, notFound, parseBody } from './problem';
import { routeDocs } from './openapi/route-docs';

export interface RestorePointsRouterOptions {
  client: Client;
  store: ObjectStore;
  runbooks: RunbookStore;
  log: Logger;
}

const TakeRequest = z.strictObject({
  label: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters')
    .optional()
    .describe('the operator\'s words for the point, e.g. "before the upgrade"'),
});
const ListQuery = z.strictObject({ detail: z.enum(['summary', 'full']).default('summary') });
const POINT_PARAMS = { id: 'the restore point id, e.g. 0000000001-0000000000000042-17' };

const CONSISTENCY = 'one log position across every VM and disk of the domain: all of them as they were at the same instant (crash-consistent across VMs)';

function describeTier(tier: RetentionPolicy['tiers'][number]): string {
  return tier.everyMs === 'all' ? `every point for ${formatDuration(tier.forMs)}` : `the newest point of each ${formatDuration(tier.everyMs)} for ${formatDuration(tier.forMs)}`;
}

/** What a VM looked like when the point was made, in a line's worth; `?detail=full` shows the record. */
function summarizedVm(vm: VmMetadata) {
  return { name: vm.name, cpus: vm.cpus, memoryMiB: vm.memoryMiB, disks: vm.diskIds.length, networks: vm.nics.map((n) => n.network), ...(vm.placement ? { datastore: vm.placement.datastore } : {}) };
}

const iso = (ms: number) => new Date(ms).toISOString();

function pointIdParam(req: Request): string {
  const id = String(req.params.id);
  if (!RESTORE_POINT_ID.test(id)) throw badRequest(`"${id}" is not a restore point id, e.g. 0000000001-0000000000000042-17`, { errors: [{ path: 'id', message: 'must be a restore point id' }] });
  return id;
}

export function restorePointsRouter({ client, store, runbooks, log }: RestorePointsRouterOptions): Router {
  const router = express.Router();
  const doc = routeDocs(router);
  const json = express.json({ limit: '4kb' });

  async function protectionWindowMs(domain: string): Promise<number> {
    const key = new DomainKeys(store.prefix, domain).manifest();
    const body = await store.get(key);
    if (!body) throw notFound(`the storage site holds no protected domain ${domain}`);
    return parseRecord(manifestSchema, key, body).protectionWindowMs;
  }

  async function existingPoint(domain: string, id: string): Promise<RestorePoint> {
    const point = await readRestorePoint(store, new Ownership(store, domain), id);
    if (!point) throw notFound(`domain ${domain} has no restore point ${id}`);
    return point;
  }

  /** Every point of the domain as the API shows it, newest first, with the retention in force. */
  async function shownPoints(domain: string, req: Request) {
    const query = ListQuery.safeParse(req.query);
    if (!query.success) throw badRequest('the query is invalid', { errors: query.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
    const windowMs = await protectionWindowMs(domain);
    const ownership = new Ownership(store, domain);
    const [points, tags, retention] = await Promise.all([listRestorePoints(store, ownership), readPointTags(store, ownership), latestRetention(runbooks, domain)]);
    const policy = retention.policy ?? windowOnly(windowMs);
    const now = Date.now();
    const tagsOf = (id: string): PointTags => tags.get(id) ?? { tested: [] };
    const pinned = new Set(points.filter((p) => tagsOf(p.id).pin || (policy.keepTested && tagsOf(p.id).tested.length > 0)).map((p) => p.id));
    const decisions = new Map(selectRetained(points, pinned, policy, now).map((d) => [d.id, d]));
    const shown = points
      .sort((a, b) => b.timestamp - a.timestamp || b.id.localeCompare(a.id, 'en', { numeric: true }))
      .map((point) => {
        const { pin, tested } = tagsOf(point.id);
        const last = tested.at(-1);
        const decision = decisions.get(point.id)!;
        return {
          id: point.id,
          time: iso(point.timestamp),
          createdAt: iso(point.createdAt),
          reason: point.reason,
          label: point.label ?? null,
          consistency: { kind: 'log-position', position: point.position, lastJournalSequence: point.lastJournalSequence, scope: CONSISTENCY },
          vms: query.data.detail === 'full' ? point.vms : point.vms.map(summarizedVm),
          ...(query.data.detail === 'full' && point.disks ? { disks: point.disks } : {}),
          tested: last ? { at: iso(last.at), drill: last.drill, workflowId: last.workflowId, outcome: last.outcome, times: tested.length } : null,
          pinned: pin ? { by: pin.pinnedBy, at: iso(pin.pinnedAt) } : pinned.has(point.id) ? { by: 'keepTested', at: iso(last!.at) } : null,
          retention: {
            keptBy: [...decision.tiers.map((t) => `tier ${t + 1}: ${describeTier(policy.tiers[t])}`), ...(decision.pinned ? ['pinned'] : [])],
            // A bucketed tier keeps the point only while no newer one lands in its bucket; until then, this is when it goes.
            expiresAt: decision.expiresAt === null ? null : iso(decision.expiresAt),
          },
        };
      });
    return {
      domain,
      protectionWindow: formatDuration(windowMs),
      retention: { source: retention.source, tiers: policy.tiers.map(describeTier), keepTested: policy.keepTested },
      points: shown,
    };
  }

  doc.get('/domains/:domain/restore-points', {
    summary: 'The domain\'s restore points: time, consistency, VMs, tested, pinned, and how long retention keeps each',
    query: ListQuery,
    responses: { 200: '`{domain, protectionWindow, retention, points: [...]}`' },
    problems: [400, 404],
  });
  router.get('/domains/:domain/restore-points', requireRole('viewer'), async (req, res) => {
    res.json(await shownPoints(domainParam(req), req));
  });

  doc.get('/domains/:domain/restore-points/:id', { summary: 'One restore point', params: POINT_PARAMS, query: ListQuery, responses: { 200: 'the point as the list shows it' }, problems: [400, 404] });
  router.get('/domains/:domain/restore-points/:id', requireRole('viewer'), async (req, res) => {
    const domain = domainParam(req);
    const id = pointIdParam(req);
    const point = (await shownPoints(domain, req)).points.find((p) => p.id === id);
    if (!point) throw notFound(`domain ${domain} has no restore point ${id}`);
    res.json(point);
  });

  doc.post('/domains/:domain/restore-points', {
    summary: 'Take a restore point now, through the running protection',
    body: TakeRequest,
    responses: { 201: '`{id, time, label}`; Location names the point' },
    problems: [404, 409],
  });
  router.post('/domains/:domain/restore-points', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(TakeRequest, req);
    const { owner, epoch } = await new Ownership(store, domain).inspect();
    if (!owner) throw notFound(`the storage site holds no protected domain ${domain}`);
    const workflowId = protectionWorkflowId(domain, owner.site, epoch);
    const handle = client.workflow.getHandle(workflowId);
    const running = await handle.describe().then(
      (d) => d.status.name === 'RUNNING',
      (error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return false;
        throw error;
      },
    );
    if (!running) throw conflict(`${domain} is not being protected at ${owner.site} (epoch ${epoch}): no protection workflow ${workflowId} is running, so no restore point can be taken`, { site: owner.site, epoch });
    const point = await handle.executeUpdate(restorePointNowUpdate, { args: [body.label !== undefined ? { label: body.label } : {}] }).catch((error: unknown) => {
      // The protection's validator refuses while not every write is logged (initial sync, bitmap mode, a disk sync).
      if (error instanceof WorkflowUpdateFailedError) throw conflict(`no restore point of ${domain} now: ${error.cause?.message ?? error.message}`, { site: owner.site, epoch });
      throw error;
    });
    log.info({ domain, point: point.id, label: body.label, requestedBy: principalName(req) }, 'restore point taken');
    res
      .status(201)
      .location(`/domains/${domain}/restore-points/${point.id}`)
      .json({ id: point.id, time: iso(point.timestamp), label: point.label ?? null, ...(body.label !== undefined && point.label !== body.label ? { note: `no write since restore point ${point.id}: it is that point, which keeps its own label` } : {}) });
  });

  doc.post('/domains/:domain/restore-points/:id/pin', { summary: 'Pin a restore point: retention keeps it until unpinned', params: POINT_PARAMS, responses: { 200: '`{id, pinned: {by, at}}`' }, problems: [400, 404, 409] });
  router.post('/domains/:domain/restore-points/:id/pin', requireRole('operator'), async (req, res) => {
    const domain = domainParam(req);
    const id = pointIdParam(req);
    await existingPoint(domain, id);
    const pin = await pinRestorePoint(store, new Ownership(store, domain), id, { pinnedBy: principalName(req), now: Date.now() });
    log.info({ domain, point: id, pinnedBy: pin.pinnedBy }, 'restore point pinned');
    res.json({ id, pinned: { by: pin.pinnedBy, at: iso(pin.pinnedAt) } });
  });

  doc.delete('/domains/:domain/restore-points/:id/pin', { summary: 'Unpin a restore point', params: POINT_PARAMS, responses: { 200: '`{id, pinned: null, note}`' }, problems: [400, 404, 409] });
  router.delete('/domains/:domain/restore-points/:id/pin', requireRole('operator'), async (req, res) => {
    const domain = domainParam(req);
    const id = pointIdParam(req);
    await existingPoint(domain, id);
    await unpinRestorePoint(store, new Ownership(store, domain), id);
    log.info({ domain, point: id, unpinnedBy: principalName(req) }, 'restore point unpinned');
    res.json({ id, pinned: null, note: 'retention decides again at the next garbage collection (a tested point stays while the policy says keepTested)' });
  });

  return router;
}
