/**
 * `GET /domains`: every protected domain the storage site holds, one line each, as an operator
 * scans them: mode, owner, protection (and why it fails, if it does) and its RPO now, the last restore point, what runs, and the
 * last drill. Each domain's workflows are asked in bounded time; one that does not answer shows
 * `null` with a note instead of holding the whole list.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import { DOMAIN_MODES } from '../common/domain-modes';
import type { Client } from '@temporalio/client';
import type { Logger } from '../common/logger';
import { forEachLimited } from '../common/parallel';
import type { ImportableDomain } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import type { RunbookStore } from '../runbooks/store';
import { domainOperationsQuery, type OperationRecord } from '../workflows/domain-operations';
import { PROTECTION_FAILURES } from '../workflows/protect';
import { domainOperationsWorkflowId } from '../workflows/workflow-ids';
import { requireRole } from './auth';
import { routeDocs } from './openapi/route-docs';
import { askWithin, domainProtection } from './domain-protection';
import { DRILL_STATUSES, drillAtAGlance } from './drill-history';
import { rpoBreachWarning } from './rpo';
import { scanOrUnavailable } from './storage-site';

export interface DomainListRouterOptions {
  client: Client;
  store: ObjectStore;
  /** Where each domain's RPO target is read (its latest runbook). */
  runbooks: RunbookStore;
  log: Logger;
  /** How long each workflow gets to answer a query; default 3 s. */
  deadlineMs?: number;
}

const DOMAINS_ASKED_AT_ONCE = 8;

const ShownOperation = z.looseObject({ operation: z.string(), workflowId: z.string(), requestedBy: z.string(), startedAt: z.string(), statusUrl: z.string() });
/** One line of `GET /domains`. */
const DomainLine = z.strictObject({
  domain: z.string(),
  mode: z.enum(DOMAIN_MODES),
  owner: z.strictObject({ site: z.string(), epoch: z.int() }).nullable(),
  conflict: z.boolean().describe('a split-brain conflict is open'),
  protection: z
    .strictObject({
      mode: z.string(),
      site: z.string(),
      backlogEntries: z.int(),
      stopping: z.boolean(),
      failing: z
        .strictObject({ reason: z.enum(PROTECTION_FAILURES), message: z.string(), since: z.iso.datetime(), retryAt: z.iso.datetime() })
        .optional()
        .describe('present while protection makes no progress: why (the message names the bucket and key), since when, and its next try'),
    })
    .nullable()
    .describe('null: no protection answered'),
  rpo: z
    .strictObject({
      seconds: z.number().describe('at most this many seconds of writes would be lost: the time since every write was known durable'),
      durableAsOf: z.iso.datetime().nullable().describe('every write journaled before this time is in the log (null: not reported yet)'),
      targetSeconds: z.number().nullable(),
      breached: z.boolean(),
    })
    .nullable()
    .describe('null: unknown (the protection did not answer), not zero'),
  lastRestorePoint: z.strictObject({ id: z.string(), at: z.string() }).nullable(),
  running: ShownOperation.nullable(),
  drill: ShownOperation.nullable(),
  lastDrill: z.strictObject({ workflowId: z.string(), outcome: z.enum(DRILL_STATUSES), endedAt: z.string() }).nullable(),
  problem: z.string().optional().describe('why the domain cannot be imported as it is'),
  warnings: z.array(z.string()).optional(),
});

export function domainListRouter({ client, store, runbooks, log, deadlineMs = 3_000 }: DomainListRouterOptions): Router {
  const router = express.Router();
  const statusUrl = (workflowId: string) => `/operations/${encodeURIComponent(workflowId)}`;

  const shownOperation = (record: OperationRecord | undefined) => (record ? { operation: record.operation, workflowId: record.workflowId, requestedBy: record.requestedBy, startedAt: record.startedAt, statusUrl: statusUrl(record.workflowId) } : null);

  async function line(scanned: ImportableDomain): Promise<z.infer<typeof DomainLine>> {
    const { domain } = scanned;
    const notes: string[] = [];
    const owner = scanned.ownerSite ? { site: scanned.ownerSite, epoch: scanned.epoch } : null;
    const [{ condition, protection, rpo }, desk, drills] = await Promise.all([
      domainProtection({ client, store, runbooks, deadlineMs }, scanned, notes),
      askWithin(client, deadlineMs, domainOperationsWorkflowId(domain), domainOperationsQuery, notes),
      drillAtAGlance(client, domain),
    ]);
    if (rpo?.breached) notes.push(rpoBreachWarning(domain, rpo));
    const failing = protection?.failing;
    if (failing) notes.push(`protection is failing since ${new Date(failing.since).toISOString()} (${failing.reason}): ${failing.message}`);
    const lastRestorePoint = protection?.lastRestorePoint ?? scanned.latestRestorePoint;
    return {
      domain,
      mode: condition.mode,
      owner,
      conflict: condition.conflictSince !== undefined,
      protection: protection
        ? {
            mode: protection.mode,
            site: protection.site,
            backlogEntries: protection.backlogEntries,
            stopping: protection.stopping,
            ...(failing ? { failing: { ...failing, since: new Date(failing.since).toISOString(), retryAt: new Date(failing.retryAt).toISOString() } } : {}),
          }
        : null,
      rpo,
      lastRestorePoint: lastRestorePoint ? { id: lastRestorePoint.id, at: new Date(lastRestorePoint.timestamp).toISOString() } : null,
      running: shownOperation(desk?.running),
      drill: shownOperation(desk?.drill),
      lastDrill: drills.lastDrill,
      ...(scanned.problem ? { problem: scanned.problem } : {}),
      ...(notes.length > 0 || drills.warnings ? { warnings: [...notes, ...(drills.warnings ?? [])] } : {}),
    };
  }

  routeDocs(router).get('/domains', {
    summary: 'Every protected domain: mode, owner, protection, RPO now, last restore point, running operation, last drill',
    responses: { 200: { description: 'sorted by name; a domain whose workflows did not answer in time has `null` there and a warning', content: { 'application/json': z.strictObject({ domains: z.array(DomainLine) }) } } },
    problems: [503],
  });
  router.get('/domains', requireRole('viewer'), async (_req, res) => {
    const scanned = await scanOrUnavailable(store, log);
    const lines: Array<Awaited<ReturnType<typeof line>>> = [];
    await forEachLimited(scanned, DOMAINS_ASKED_AT_ONCE, async (domain) => {
      lines.push(await line(domain));
    });
    res.json({ domains: lines.sort((a, b) => a.domain.localeCompare(b.domain)) });
  });

  return router;
}
