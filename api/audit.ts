/**
 * The audit trail: who did what to which domain, runbook or token, and how it ended. Every
 * authenticated mutating call (POST, PUT, PATCH, DELETE), refusals included, becomes one object
 * written create-if-absent once its answer is known, never rewritten, under keys that list in
 * time order:
 *   control/audit/<yyyy>/<mm>/<dd>/<time>-<request id>.json
 *   control/audit-by-domain/<domain>/<time>-<request id>.json   the same record, for ?domain=
 * The answer has gone out before the record is written, so a record that cannot be written does
 * not fail the call: it is logged at error level with the whole record, for the log to keep it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../common/logger';
import { forEachLimited } from '../common/parallel';
import type { ObjectStore } from '../datapath/object-store';
import { parseOperationWorkflowId } from '../workflows/workflow-ids';
import { requireRole, ROLES } from './auth';
import { routeDocs } from './openapi/route-docs';
import { DOMAIN } from './operations';
import { badRequest } from './problem';
import { AuditTarget } from './request-context';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const LIMIT = { default: 100, max: 1000 };
/** Without ?since=, the last day. */
const DEFAULT_SINCE_MS = 24 * 3600_000;
const READS_IN_FLIGHT = 16;

const AuditRecord = z.object({
  time: z.string(),
  requestId: z.string(),
  who: z.object({ name: z.string(), role: z.enum(ROLES) }),
  method: z.string(),
  /** The route's pattern (e.g. /domains/:domain/failover), or the path when no route took the call. */
  route: z.string(),
  path: z.string(),
  target: AuditTarget,
  status: z.number().int(),
  /** The client went away before the whole answer was sent. */
  clientDisconnected: z.literal(true).optional(),
});
export type AuditRecord = z.infer<typeof AuditRecord>;

/** The targets the path names: /domains/{d}/…, /operations/{id}/…, /runbooks/{name}/…, /tokens/{name}. */
function targetOfPath(path: string): AuditTarget {
  const [, collection, raw] = path.split('/');
  if (raw === undefined) return {};
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    return {};
  }
  if (collection === 'domains') return { domain: name };
  if (collection === 'runbooks') return { runbook: name };
  if (collection === 'tokens') return { token: name };
  if (collection === 'operations') {
    const domain = parseOperationWorkflowId(name)?.domain;
    return { operation: name, ...(domain ? { domain } : {}) };
  }
  return {};
}

const dayOf = (iso: string) => iso.slice(0, 10).replaceAll('-', '/');

export class AuditTrail {
  constructor(private readonly store: ObjectStore) {}

  private get root(): string {
    return `${this.store.prefix}control/`;
  }
  private get timePrefix(): string {
    return `${this.root}audit/`;
  }
  private domainPrefix(domain: string): string {
    return `${this.root}audit-by-domain/${domain}/`;
  }

  /**
   * Writes the record create-if-absent; a client that sent the same request id twice within the
   * same millisecond gets a second name rather than an overwrite. The domain index follows.
   */
  async write(record: AuditRecord): Promise<void> {
    const body = JSON.stringify(record);
    let name = `${record.time}-${record.requestId}`;
    if (!(await this.store.createIfAbsent(`${this.timePrefix}${dayOf(record.time)}/${name}.json`, body, 'application/json'))) {
      name = `${name}-${randomBytes(4).toString('hex')}`;
      await this.store.createIfAbsent(`${this.timePrefix}${dayOf(record.time)}/${name}.json`, body, 'application/json');
    }
    if (record.target.domain) await this.store.createIfAbsent(`${this.domainPrefix(record.target.domain)}${name}.json`, body, 'application/json');
  }

  /** Records from `since` on, oldest first, at most `limit`; `more` when there are further ones. */
  async read({ domain, since, limit }: { domain?: string; since: string; limit: number }): Promise<{ entries: AuditRecord[]; more: boolean }> {
    const prefix = domain ? this.domainPrefix(domain) : this.timePrefix;
    const startAfter = domain ? `${prefix}${since}` : `${prefix}${dayOf(since)}/${since}`;
    const { keys } = await this.store.list(prefix, { startAfter, limit: limit + 1 });
    const shown = keys.slice(0, limit);
    const entries: AuditRecord[] = new Array<AuditRecord>(shown.length);
    await forEachLimited(
      shown.map((key, index) => ({ key, index })),
      READS_IN_FLIGHT,
      async ({ key, index }) => {
        const body = await this.store.get(key);
        if (body) entries[index] = AuditRecord.parse(JSON.parse(body.toString('utf8')));
      },
    );
    return { entries: entries.filter(Boolean), more: keys.length > limit };
  }
}

/** Records every authenticated mutating call once its answer is known; sits after authentication. */
export function auditRecorder(trail: AuditTrail, log: Logger): RequestHandler {
  return (req, res, next) => {
    const who = req.principal;
    if (!MUTATING.has(req.method) || !who) return next();
    res.once('close', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      const record: AuditRecord = {
        time: new Date().toISOString(),
        requestId: req.requestId ?? randomUUID(),
        who,
        method: req.method,
        route: typeof route === 'string' ? route : req.path,
        path: req.path,
        target: { ...targetOfPath(req.path), ...res.locals.auditTarget },
        status: res.statusCode,
        ...(res.writableFinished ? {} : { clientDisconnected: true as const }),
      };
      trail.write(record).catch((error: unknown) => {
        log.error({ err: error, audit: record }, 'AUDIT RECORD NOT WRITTEN: the call was answered but the object store did not take its audit record');
      });
    });
    next();
  };
}

/** The query of `GET /audit` (exported for the API description). */
export const AuditQuery = z.strictObject({
  domain: z.string().regex(DOMAIN, 'must be a domain name').optional(),
  since: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time, e.g. 2026-11-30T08:00:00Z' }).optional(),
  limit: z.coerce.number().int().min(1).max(LIMIT.max).optional(),
});

/** `GET /audit?domain=&since=&limit=`: the trail, for admins. */
export function auditRouter({ trail }: { trail: AuditTrail }): Router {
  const router = express.Router();
  routeDocs(router).get('/audit', {
    summary: 'Who did what: the authenticated mutating calls, oldest first (default: the last 24 h)',
    query: AuditQuery,
    responses: { 200: '`{since, domain?, entries: [{time, requestId, who: {name, role}, method, route, path, target, status}], more}`' },
    problems: [400],
  });
  router.get('/audit', requireRole('admin'), async (req, res) => {
    const parsed = AuditQuery.safeParse(req.query);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((i) => ({ path: i.path.join('.') || ('keys' in i ? i.keys.join(', ') : '(query)'), message: i.message }));
      throw badRequest(`invalid query parameter ${errors.map((e) => `"${e.path}": ${e.message}`).join('; ')}`, { errors });
    }
    const { domain, since, limit = LIMIT.default } = parsed.data;
    const from = new Date(since ?? Date.now() - DEFAULT_SINCE_MS).toISOString();
    const { entries, more } = await trail.read({ ...(domain ? { domain } : {}), since: from, limit });
    res.json({ since: from, ...(domain ? { domain } : {}), entries, more });
  });
  return router;
}
