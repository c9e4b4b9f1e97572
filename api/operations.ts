import { randomUUID } from 'node:crypto';
import express, { type Request, type Router } from 'express';
import { QueryNotRegisteredError, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionStatusName } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { z } from 'zod';
import type { ObjectStore } from '../datapath/object-store';
import { RESTORE_POINT_ID } from '../datapath/keys';
import { Ownership } from '../datapath/ownership';
import { decide, type DomainCondition, type DomainRequest } from '../common/domain-modes';
import { readDomainCondition, readDomainStatus } from '../datapath/domain-status';
import { readConflict } from '../datapath/conflict';
import { describeError } from '../common/errors';
import { describePermanentFailover, readPermanentFailover } from '../datapath/permanent-failover';
import type { Logger } from '../common/logger';
import { powerOnPlanAt } from '../runbooks/power-on-plan';
import type { InventoryLookup } from '../runbooks/inventory';
import { NewDirectionError, runbookAfterPermanentFailover, runbookText } from '../runbooks/new-direction';
import type { Runbook } from '../runbooks/schema';
import type { RunbookStore } from '../runbooks/store';
import { parseDuration } from '../runbooks/units';
import { validateRunbookAgainstSite } from '../runbooks/validate';
import { DeskBusy, loadDomainRunbook, offeredByRunbook, offeredNow, requireAllowed as requireAllowedNow, requireRecoverySite, shownConflict, startThroughDesk } from '../requests/desk';
import { drillRequest } from '../requests/drill';
import { deskRefusal, domainOperationsQuery, drillGivesWayUpdate, type DomainOperationsState, type OperationRecord, type OperationRequest, type SizedByRunbook } from '../workflows/domain-operations';
import { COMPLETION_REFUSED, completeContinuousFailoverUpdate, type CompletionRequest, type ContinuousFailoverInput } from '../workflows/continuous-failover-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import type { FailoverInput } from '../workflows/failover-messages';
import { CLEANUP_REFUSED, cleanupDrillUpdate, type DrillInput } from '../workflows/drill-messages';
import { COMMIT_REFUSED, decideCommitUpdate, describeCommitWindow } from '../workflows/commit-window-messages';
import type { FailbackInput } from '../workflows/failback-messages';
import type { PermanentFailoverInput } from '../workflows/permanent-failover-messages';
import { completeContinuousFailbackUpdate, type ContinuousFailbackInput } from '../workflows/continuous-failback-messages';
import { CONFLICT_ACTIONS, type ResolveConflictInput } from '../workflows/resolve-conflict-messages';
import { someNames } from '../workflows/listing';
import { operationProgressQuery, type HandoverType, type OperationProgress } from '../workflows/operation-messages';
import { domainOperationsWorkflowId, parseOperationWorkflowId, protectionWorkflowId } from '../workflows/workflow-ids';
import {
  approveUpdate,
  NOT_AN_APPROVER,
  NOT_WAITING,
  operatorDecisionUpdate,
  powerOnGroupProgressQuery,
  powerOnPlanProgressQuery,
  type OperatorAction,
  type PowerOnGroupProgress,
  type PowerOnPlanProgress,
} from '../workflows/power-on-messages';
import type { PowerOnPlanInput } from '../workflows/power-on-plan';
import { noteAuditTarget } from './request-context';
import { principalName, requireRole } from './auth';
import { drillAtAGlance } from './drill-history';
import { rpoBreachWarning, rpoNow } from './rpo';
import { executeUpdateSurely } from '../requests/update-retry';
import { protectionStatus } from './domain-protection';
import { latestDomainRunbook, latestRpoTargetSeconds } from '../runbooks/domain-retention';
import { badRequest, conflict, notFound, parseBody, ProblemError } from './problem';
import { OperationLinks, OperationStarted } from './openapi/answers';
import { routeDocs, type RouteDoc } from './openapi/route-docs';

export interface OperationsRouterOptions {
  client: Client;
  runbooks: RunbookStore;
  /** The storage site: domain ownership and mode. */
  store: ObjectStore;
  log: Logger;
  /** Base URL of the Temporal Web UI, for links in responses; absent for clusters without one. */
  webUiUrl?: string;
  /** How long to wait for an operation to answer a query; default OPERATION_QUERY_DEADLINE_MS. */
  queryDeadlineMs?: number;
  /**
   * The sites this orchestrator knows (a permanent failover's new recovery site must be one), and
   * their inventories, against which the runbook for its new direction is checked. Absent: the sites
   * of the domain's runbook, unchecked.
   */
  sites?: { names: string[]; inventoryFor?: InventoryLookup };
}

/** While an operation runs, the desk refuses every request but the one that completes it (a continuous operation's). */
function offeredWhile(condition: DomainCondition, desk: Pick<DomainOperationsState, 'running' | 'drill'> | undefined): DomainRequest[] {
  const running = desk?.running;
  return offeredNow(condition).filter((request) => {
    const decision = decide(request, condition);
    if (!decision.allowed) return false;
    if (running && decision.completes === running.operation) return true;
    return !deskRefusal(desk ?? {}, request);
  });
}

/**
 * How long the API waits for an operation to answer a query. The orchestration worker answers
 * queries; with none polling, the server holds a query until the call's deadline, so without one
 * a request would hang for as long as the gRPC default.
 */
export const OPERATION_QUERY_DEADLINE_MS = 5_000;

export const DOMAIN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const RunbookRef = z.strictObject({
  runbook: z.string().regex(DOMAIN, 'must be a runbook name'),
  version: z.int().min(1).optional(),
});
const PowerOnRequest = RunbookRef.extend({ site: z.string().regex(DOMAIN).optional() });
const ContinuousFailoverRequest = RunbookRef.extend({ runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain') });
const ContinuousFailbackRequest = RunbookRef.extend({ runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain (the one it failed over by)') });
export const PointInTimeRequest = z.union([
  z.strictObject({ restorePoint: z.string().regex(RESTORE_POINT_ID, 'must be a restore point id, e.g. 0000000001-0000000000000042-17') }),
  z.strictObject({ at: z.iso.datetime({ offset: true }).refine((at) => Date.parse(at) <= Date.now(), 'must not be in the future') }),
]);
/** The request's point in time as an operation takes it: a restore point id, or an instant in epoch ms. */
export const pointInTimeOf = (point: z.infer<typeof PointInTimeRequest>): NonNullable<DrillInput['pointInTime']> => ('at' in point ? { at: Date.parse(point.at) } : point);
const FailoverRequest = RunbookRef.extend({
  runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain'),
  type: z.enum(['planned', 'forced']),
  pointInTime: PointInTimeRequest.optional(),
  confirm: z.string().max(63).optional().describe('forced failover: the domain name, confirming that the primary site is lost'),
  commit: z
    .strictObject({
      after: z
        .string()
        .refine((after) => (parseDuration(after) ?? 0) >= COMMIT_WINDOW_MS.min && (parseDuration(after) ?? Infinity) <= COMMIT_WINDOW_MS.max, 'must be a duration from 10s to 30d, e.g. 30m'),
      then: z.enum(['commit', 'rollback']),
    })
    .optional()
    .describe('keep the failover open for a commit or a rollback until `after` has passed, then do `then`'),
  continuousFailback: z.boolean().optional().describe('planned only: once the failover has succeeded (and committed), the original disks at the primary follow the recovery site (a continuous failback)'),
});
/** A commit window long enough to check the recovered domain, and short enough that a forgotten one still ends. */
const COMMIT_WINDOW_MS = { min: 10_000, max: 30 * 86_400_000 };
const FailbackRequest = RunbookRef.extend({
  runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain (the one it failed over by)'),
  type: z.enum(['planned', 'forced']),
  confirm: z.string().max(63).optional().describe('forced failback: the domain name, confirming that the recovery site is lost'),
});
const PermanentFailoverRequest = RunbookRef.extend({
  runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain (the one it failed over by)'),
  confirm: z.string().max(63).optional().describe('the domain name, confirming that the primary site is retired and what it holds of the domain removed'),
  newRecoverySite: z.string().regex(DOMAIN, 'must be a site name').optional().describe('default: none, the domain is then protected to the storage site only'),
  newRunbook: RunbookRef.optional().describe('the runbook for the new direction, when it cannot be derived from the one the domain failed over by'),
});
/** How long a drill may be kept up after its checks: from none to the longest commit window. */
const KEEP_FOR_MAX_MS = 30 * 86_400_000;
/** How long a domain's status waits for its protection workflow to answer. */
export const PROTECTION_DEADLINE_MS = 5_000;
export const KeepFor = z
  .string()
  .refine((keepFor) => parseDuration(keepFor) !== undefined && parseDuration(keepFor)! <= KEEP_FOR_MAX_MS, 'must be a duration from 0s to 30d, e.g. 30m')
  .describe('how long the drill stays up after its checks before it is cleaned up; default 0s');
const DrillRequest = RunbookRef.extend({
  runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain'),
  pointInTime: PointInTimeRequest.optional().describe('default: the latest consistent point'),
  keepFor: KeepFor.optional(),
});
const CleanupRequestBody = z.strictObject({ force: z.boolean().optional().describe('remove what can be removed and report what could not, instead of retrying until everything is gone') });
const ResolveConflictRequest = RunbookRef.extend({
  action: z.enum(CONFLICT_ACTIONS).describe('deactivate: power the stale VMs off, keep their diverged writes as a side copy, mark them inactive'),
  runbook: RunbookRef.shape.runbook.optional().describe('for the domain\'s sites; default: the runbook named like the domain'),
});
const ApproveRequest = z.strictObject({ step: z.string().min(1).max(63), decision: z.enum(['approve', 'reject']).default('approve'), comment: z.string().max(2000).optional() });
const DecisionRequest = z.strictObject({ target: z.string().min(1).max(80), comment: z.string().max(2000).optional() });
const CommitDecisionRequest = z.strictObject({ comment: z.string().max(2000).optional() });
const OPERATION_PARAMS = { id: 'the operation\'s workflow id, URL-encoded (e.g. failover%2Fshop%2F...)' };

/** The doc of a route that starts an operation through the domain's desk (`operationDesk`). */
export const startsOperation = (summary: string, body: z.ZodType, more: Partial<RouteDoc> = {}): RouteDoc => ({
  summary,
  body,
  responses: { 202: { description: 'the operation started (or, for a running continuous operation, its completion requested); Location is its status URL', content: { 'application/json': OperationStarted } } },
  problems: [404, 409, 422],
  ...more,
});

const OperationStatus = OperationLinks.extend({
  status: z.enum(['UNSPECIFIED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'CONTINUED_AS_NEW', 'TIMED_OUT', 'PAUSED', 'UNKNOWN'] as const satisfies readonly WorkflowExecutionStatusName[]),
  startedAt: z.string(),
  closedAt: z.string().nullable(),
  progressUnavailable: z.string().optional().describe('why the progress could not be asked (no orchestration worker answering)'),
});

export function domainParam(req: Request): string {
  const domain = String(req.params.domain);
  if (!DOMAIN.test(domain)) throw badRequest(`"${domain}" is not a protected domain name`);
  return domain;
}

/**
 * What every operation's endpoint does before and as it starts the operation: the runbook loaded
 * and validated, the mode table asked, the operation started through the domain's desk (409 naming
 * the running one) and answered 202 with where to follow it. Routers of other modules use it too.
 */
export function operationDesk({ client, runbooks, store, log, webUiUrl }: Pick<OperationsRouterOptions, 'client' | 'runbooks' | 'store' | 'log' | 'webUiUrl'>) {
  const namespace = client.options.namespace;
  const links = (workflowId: string) => ({
    workflowId,
    statusUrl: `/operations/${encodeURIComponent(workflowId)}`,
    ...(webUiUrl ? { webUiUrl: `${webUiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}` } : {}),
  });

  const loadRunbook = (domain: string, ref: z.infer<typeof RunbookRef>) => loadDomainRunbook(runbooks, domain, ref);
  const requireAllowed = (domain: string, request: DomainRequest) => requireAllowedNow(store, domain, request);

  async function startOperation(domain: string, request: OperationRequest) {
    try {
      return await startThroughDesk(client, domain, request);
    } catch (error) {
      if (error instanceof DeskBusy) throw conflict(error.message, { running: links(error.running.workflowId) });
      throw error;
    }
  }

  /** Starts the operation through the domain's desk and answers 202 with where to follow it; `shown` is echoed in the log and the answer. */
  async function startAndAnswer(res: express.Response, domain: string, request: OperationRequest & SizedByRunbook, shown: Record<string, unknown>) {
    const started = await startOperation(domain, { ...request, ...(res.req.requestId ? { requestId: res.req.requestId } : {}) });
    noteAuditTarget(res, { operation: started.workflowId });
    const drillGivingWay = started.drillGivingWay ? { drillGivingWay: links(started.drillGivingWay) } : {};
    log.info({ domain, workflowId: started.workflowId, requestedBy: started.requestedBy, ...shown, ...(started.drillGivingWay ? { drillGivingWay: started.drillGivingWay } : {}) }, `${request.operation} started`);
    res.status(202).location(links(started.workflowId).statusUrl).json({ ...links(started.workflowId), operation: started.operation, ...shown, ...drillGivingWay });
  }

  return { links, loadRunbook, requireAllowed, startOperation, startAndAnswer };
}

/**
 * HTTP triggers for operations on protected domains. Every operation goes through the domain's
 * operations desk (one at a time, 409 naming the running one); approvals and operator decisions
 * are routed to the power-on group that is waiting for them.
 */
export function operationsRouter({ client, runbooks, store, log, webUiUrl, queryDeadlineMs = OPERATION_QUERY_DEADLINE_MS, sites }: OperationsRouterOptions): Router {
  const router = express.Router();
  const doc = routeDocs(router);
  const json = express.json({ limit: '64kb' });
  const namespace = client.options.namespace;
  const { links, loadRunbook, requireAllowed, startAndAnswer } = operationDesk({ client, runbooks, store, log, webUiUrl });

  /** A forced handover (failover, failback) is confirmed by the domain's name: it fences the site the domain leaves. */
  function requireConfirmation(domain: string, request: 'failover' | 'failback', body: { type: 'planned' | 'forced'; confirm?: string }) {
    if (body.type !== 'forced' || body.confirm === domain) return;
    throw badRequest(`a forced ${request} fences the ${request === 'failover' ? 'primary' : 'recovery'} site of ${domain} and takes ownership without it; confirm by sending "confirm": "${domain}"`);
  }

  /** The mode table allows the handover and there is no running operation it should complete instead; answers the runbook it runs by. */
  async function checkHandover(domain: string, request: 'failover' | 'failback', ref: { runbook?: string; version?: number }) {
    const decision = await requireAllowed(domain, request);
    if (decision.completes) throw conflict(`${domain} is in mode ${(await readDomainCondition(store, domain)).mode} but no ${decision.completes} is running to complete; check GET /domains/${domain}/operations`);
    const loaded = requireRecoverySite(domain, request, await loadRunbook(domain, { runbook: ref.runbook ?? domain, ...(ref.version ? { version: ref.version } : {}) }));
    if (request === 'failover') await refuseWhileRetiring(domain, loaded.recovery);
    return loaded;
  }

  /**
   * A failover to the site a permanent failover retired, while its removal there still waits for
   * the site: the removal would race the rebuild over the same VM names and disk ids.
   */
  async function refuseWhileRetiring(domain: string, target: string) {
    const record = await readPermanentFailover(store, domain);
    if (record?.retiredSite !== target) return;
    const removal = await client.workflow
      .getHandle(record.retiredBy)
      .describe()
      .catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      });
    if (removal?.status.name !== 'RUNNING') return;
    throw conflict(`${domain} is still being removed from ${target} by ${record.retiredBy} (retired by ${record.workflowId}), which waits for ${target} to answer; fail over to ${target} once it is done`, { removal: links(record.retiredBy) });
  }

  doc.post('/domains/:domain/power-on', startsOperation('Power on the domain\'s VMs at a site by its runbook\'s plan', PowerOnRequest));
  router.post('/domains/:domain/power-on', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(PowerOnRequest, req);
    await requireAllowed(domain, 'power-on');
    const loaded = await loadRunbook(domain, body);
    const { runbook, version } = loaded;
    const site = body.site ?? requireRecoverySite(domain, 'power-on', loaded).recovery;
    const input: PowerOnPlanInput = { domain, site, ...powerOnPlanAt(runbook, site) };
    await startAndAnswer(
      res,
      domain,
      { operation: 'power-on', requestedBy: principalName(req), summary: `Power on ${domain} at ${site} by runbook ${body.runbook} v${version}, requested by ${principalName(req)}`, input, vms: runbook.spec.vms.length },
      { runbook: { name: body.runbook, version } },
    );
  });

  doc.post('/domains/:domain/failover', startsOperation('Fail the domain over to its recovery site, planned or forced (docs/failover.md); completes a running continuous failover', FailoverRequest));
  router.post('/domains/:domain/failover', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(FailoverRequest, req);
    requireConfirmation(domain, 'failover', body);
    if (body.continuousFailback && body.type === 'forced') {
      throw badRequest(`a continuous failback needs the primary site, which a forced failover of ${domain} treats as lost: fail over forced, then start one with POST /domains/${domain}/continuous-failback once the primary is back`);
    }
    const declaredAt = Date.now();
    const running = await runningOperation(domain);
    if (running?.operation === 'continuous-failover') return void (await completeContinuousFailover(req, res, domain, running.workflowId, body, declaredAt));
    await refuseSwappedSites(domain, body);
    const { runbook, version } = await checkHandover(domain, 'failover', body);
    const pointInTime = body.pointInTime && pointInTimeOf(body.pointInTime);
    const input: FailoverInput = {
      domain,
      type: body.type,
      runbook: { name: body.runbook ?? domain },
      runbookVersion: version,
      requestedBy: principalName(req),
      declaredAt,
      ...(pointInTime ? { pointInTime } : {}),
      ...(body.type === 'forced' ? { forcedConfirmation: body.confirm } : {}),
      ...(body.commit ? { commit: { afterMs: parseDuration(body.commit.after)!, then: body.commit.then } } : {}),
      ...(body.continuousFailback ? { continuousFailback: true } : {}),
    };
    const { primary, recovery } = runbook.spec.sites;
    const window =
      (body.commit ? `, kept open ${body.commit.after} for a commit or a rollback (then ${body.commit.then})` : '') + (body.continuousFailback ? `, then a continuous failback to ${primary}` : '');
    const summary = `${body.type === 'forced' ? 'Forced' : 'Planned'} failover of ${domain} from ${primary} to ${recovery} by runbook ${runbook.metadata.name} v${version}${window}, requested by ${principalName(req)}`;
    await startAndAnswer(
      res,
      domain,
      { operation: 'failover', requestedBy: principalName(req), summary, input, vms: runbook.spec.vms.length },
      { type: body.type, runbook: { name: runbook.metadata.name, version }, ...(body.commit ? { commit: body.commit } : {}), ...(body.continuousFailback ? { continuousFailback: true } : {}) },
    );
  });

  doc.post('/domains/:domain/continuous-failover', startsOperation('Start a continuous failover: the recovery site follows until a failover completes it (docs/continuous-failover.md)', ContinuousFailoverRequest));
  router.post('/domains/:domain/continuous-failover', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(ContinuousFailoverRequest, req);
    await requireAllowed(domain, 'continuous-failover');
    const { runbook, version, recovery } = requireRecoverySite(domain, 'continuous-failover', await loadRunbook(domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) }));
    await refuseWhileRetiring(domain, recovery);
    const input: ContinuousFailoverInput = { domain, runbook: { name: runbook.metadata.name }, runbookVersion: version, requestedBy: principalName(req), declaredAt: Date.now() };
    const { primary } = runbook.spec.sites;
    const summary = `Continuous failover of ${domain}: a copy at ${recovery} follows ${primary} until completed, by runbook ${runbook.metadata.name} v${version}, requested by ${principalName(req)}`;
    await startAndAnswer(res, domain, { operation: 'continuous-failover', requestedBy: principalName(req), summary, input, vms: runbook.spec.vms.length }, { runbook: { name: runbook.metadata.name, version } });
  });

  doc.post('/domains/:domain/continuous-failback', startsOperation('Start a continuous failback: the primary follows until a failback completes it (docs/continuous-failback.md)', ContinuousFailbackRequest));
  router.post('/domains/:domain/continuous-failback', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(ContinuousFailbackRequest, req);
    await requireAllowed(domain, 'continuous-failback');
    const { runbook, version } = requireRecoverySite(domain, 'continuous-failback', await loadRunbook(domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) }));
    const input: ContinuousFailbackInput = { domain, runbook: { name: runbook.metadata.name }, runbookVersion: version, requestedBy: principalName(req), declaredAt: Date.now() };
    const { primary, recovery } = runbook.spec.sites;
    const summary = `Continuous failback of ${domain}: the original disks at ${primary} follow ${recovery} until failback, by runbook ${runbook.metadata.name} v${version}, requested by ${principalName(req)}`;
    await startAndAnswer(res, domain, { operation: 'continuous-failback', requestedBy: principalName(req), summary, input, vms: runbook.spec.vms.length }, { runbook: { name: runbook.metadata.name, version } });
  });

  /**
   * A failover by a runbook whose primary is where the domain runs in failover is the old runbook
   * with its sites swapped, sent to return the domain by hand: it would rebuild over the original
   * disks, and its undo would remove the original VMs. Failback is the operation for that.
   */
  async function refuseSwappedSites(domain: string, ref: { runbook?: string; version?: number }) {
    const status = await readDomainStatus(store, domain);
    if (status?.mode !== 'Running in Failover') return;
    const { sites } = (await loadRunbook(domain, { runbook: ref.runbook ?? domain, ...(ref.version ? { version: ref.version } : {}) })).runbook.spec;
    if (status.runningAt !== sites.primary) return;
    throw conflict(
      `${domain} runs in failover at ${sites.primary}, the primary site of this runbook: it is the failover runbook with its sites swapped; to return ${domain} to ${sites.recovery}, use POST /domains/${domain}/failback with the runbook it failed over by`,
      { mode: status.mode, allowedOperations: offeredNow(await readDomainCondition(store, domain)), runningAt: status.runningAt, use: `POST /domains/${domain}/failback` },
    );
  }

  /**
   * After a permanent failover no failback is expected: one to the retired site (by the runbook the
   * domain failed over by), or one the mode refuses anyway, is refused naming the permanent failover.
   */
  async function refuseFailbackAfterPermanentFailover(domain: string, ref: { runbook?: string; version?: number }) {
    const record = await readPermanentFailover(store, domain);
    if (!record) return;
    const condition = await readDomainCondition(store, domain);
    const { runbook } = await loadRunbook(domain, { runbook: ref.runbook ?? domain, ...(ref.version ? { version: ref.version } : {}) });
    if (runbook.spec.sites.primary !== record.retiredSite && decide('failback', condition).allowed) return;
    throw conflict(`failback of ${domain} is refused: ${describePermanentFailover(record)}; ${record.retiredSite} is retired and no failback to it is expected; allowed now: ${offeredNow(condition).join(', ') || 'nothing'}`, {
      mode: condition.mode,
      allowedOperations: offeredNow(condition),
      permanentFailover: { ...links(record.workflowId), at: new Date(record.at).toISOString(), retiredSite: record.retiredSite, newPrimary: record.newPrimary },
    });
  }

  doc.post('/domains/:domain/failback', startsOperation('Fail the domain back to its primary site, planned or forced (docs/failback.md); completes a running continuous failback', FailbackRequest));
  router.post('/domains/:domain/failback', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(FailbackRequest, req);
    requireConfirmation(domain, 'failback', body);
    const declaredAt = Date.now();
    const running = await runningOperation(domain);
    if (running?.operation === 'continuous-failback') {
      return void (await completeRunning(req, res, { domain, workflowId: running.workflowId, operation: 'continuous-failback', update: completeContinuousFailbackUpdate }, body, declaredAt));
    }
    await refuseFailbackAfterPermanentFailover(domain, body);
    const { runbook, version } = await checkHandover(domain, 'failback', body);
    const input: FailbackInput = {
      domain,
      type: body.type,
      runbook: { name: runbook.metadata.name },
      runbookVersion: version,
      requestedBy: principalName(req),
      declaredAt,
      ...(body.type === 'forced' ? { forcedConfirmation: body.confirm } : {}),
    };
    const { primary, recovery } = runbook.spec.sites;
    const summary = `${body.type === 'forced' ? 'Forced' : 'Planned'} failback of ${domain} from ${recovery} to ${primary} by runbook ${runbook.metadata.name} v${version}, requested by ${principalName(req)}`;
    await startAndAnswer(res, domain, { operation: 'failback', requestedBy: principalName(req), summary, input, vms: runbook.spec.vms.length }, { type: body.type, runbook: { name: runbook.metadata.name, version } });
  });

  /**
   * The runbook for the domain's direction after a permanent failover, as the next version of the
   * one it failed over by: derived from that one (no new recovery site, or the old primary), or the
   * runbook the request names, which must already describe the new direction. Checked like a
   * submitted runbook (against the sites' inventories when they are known) before anything changes.
   */
  async function newDirectionOf(domain: string, failedOverBy: { runbook: Runbook; version: number }, body: z.infer<typeof PermanentFailoverRequest>, by: string) {
    const { primary, recovery } = failedOverBy.runbook.spec.sites;
    const known = sites?.names ?? [primary, ...(recovery !== undefined ? [recovery] : [])];
    if (body.newRecoverySite !== undefined && !known.includes(body.newRecoverySite)) {
      throw badRequest(`"${body.newRecoverySite}" is not a known site; known sites: ${known.join(', ')}`, { errors: [{ path: 'newRecoverySite', message: `must be one of ${known.join(', ')}` }] });
    }
    if (body.newRecoverySite === recovery) throw badRequest(`${body.newRecoverySite} becomes the primary of ${domain}: it cannot be its recovery site too`, { errors: [{ path: 'newRecoverySite', message: 'must not be the new primary' }] });
    let direction: Runbook;
    if (body.newRunbook) {
      const named = await loadRunbook(domain, body.newRunbook);
      const sitesNamed = named.runbook.spec.sites;
      if (sitesNamed.primary !== recovery || (body.newRecoverySite !== undefined && sitesNamed.recovery !== body.newRecoverySite)) {
        throw badRequest(`runbook ${body.newRunbook.runbook} v${named.version} goes from ${sitesNamed.primary} to ${sitesNamed.recovery ?? 'no recovery site'}; the new direction of ${domain} is from ${recovery ?? '?'} to ${body.newRecoverySite ?? 'its recovery site'}`, {
          errors: [{ path: 'newRunbook', message: 'must name a runbook whose primary is the site the domain runs at in failover' }],
        });
      }
      direction = { ...named.runbook, metadata: { ...named.runbook.metadata, name: failedOverBy.runbook.metadata.name } };
    } else {
      try {
        direction = runbookAfterPermanentFailover(failedOverBy.runbook, body.newRecoverySite, by);
      } catch (error) {
        if (error instanceof NewDirectionError) throw badRequest(error.message, { errors: [{ path: body.newRecoverySite !== undefined ? 'newRecoverySite' : '(body)', message: error.message }] });
        throw error;
      }
    }
    const text = runbookText(direction);
    const checked = await validateRunbookAgainstSite(text, sites?.inventoryFor);
    if (!checked.runbook) throw badRequest(`the runbook for the new direction of ${domain} does not validate; submit one that does and name it in "newRunbook"`, { errors: checked.errors, runbook: text });
    return { text, primary: checked.runbook.spec.sites.primary, ...(checked.runbook.spec.sites.recovery !== undefined ? { recovery: checked.runbook.spec.sites.recovery } : {}) };
  }

  doc.post('/domains/:domain/permanent-failover', startsOperation('Make the recovery site the primary for good and retire the old primary (docs/permanent-failover.md)', PermanentFailoverRequest));
  router.post('/domains/:domain/permanent-failover', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(PermanentFailoverRequest, req);
    if (body.confirm !== domain) {
      throw badRequest(`a permanent failover makes the recovery site the primary of ${domain} for good and removes ${domain} from its primary site; confirm by repeating the domain name: "confirm": "${domain}"`, {
        errors: [{ path: 'confirm', message: `must be "${domain}"` }],
      });
    }
    await requireAllowed(domain, 'permanent-failover');
    const failedOverBy = requireRecoverySite(domain, 'permanent-failover', await loadRunbook(domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) }));
    const status = await readDomainStatus(store, domain);
    if (status?.runningAt !== failedOverBy.recovery) {
      throw conflict(`${domain} runs at ${status?.runningAt ?? 'its primary'}, not at ${failedOverBy.recovery}, the recovery site of runbook ${failedOverBy.runbook.metadata.name} v${failedOverBy.version}: only where it runs in failover can become its primary`, {
        mode: status?.mode ?? 'Protected',
        allowedOperations: offeredNow(await readDomainCondition(store, domain)),
      });
    }
    const requestedBy = principalName(req);
    const declaredAt = Date.now();
    const newDirection = await newDirectionOf(domain, failedOverBy, body, `requested by ${requestedBy} at ${new Date(declaredAt).toISOString()}`);
    const input: PermanentFailoverInput = { domain, runbook: { name: failedOverBy.runbook.metadata.name }, runbookVersion: failedOverBy.version, requestedBy, declaredAt, confirmation: body.confirm, newDirection };
    const { primary } = failedOverBy.runbook.spec.sites;
    const summary = `Permanent failover of ${domain}: ${failedOverBy.recovery} becomes its primary for good, ${primary} is retired, new recovery site: ${newDirection.recovery ?? 'none (storage site only)'}; by runbook ${failedOverBy.runbook.metadata.name} v${failedOverBy.version}, requested by ${requestedBy}`;
    await startAndAnswer(
      res,
      domain,
      { operation: 'permanent-failover', requestedBy, summary, input, vms: failedOverBy.runbook.spec.vms.length },
      { runbook: { name: failedOverBy.runbook.metadata.name, version: failedOverBy.version }, newPrimary: newDirection.primary, newRecoverySite: newDirection.recovery ?? null, retiredSite: primary },
    );
  });

  doc.post('/domains/:domain/resolve-conflict', startsOperation('Resolve a split-brain conflict (docs/split-brain.md)', ResolveConflictRequest));
  router.post('/domains/:domain/resolve-conflict', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(ResolveConflictRequest, req);
    await requireAllowed(domain, 'resolve-conflict');
    const open = await readConflict(store, domain);
    if (!open) throw conflict(`${domain} has no split-brain conflict open any more`);
    const { runbook, version } = await loadRunbook(domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) });
    const input: ResolveConflictInput = {
      domain,
      action: body.action,
      conflict: { site: open.site, vms: open.vms, since: open.since, owner: open.owner.site },
      runbook: { name: runbook.metadata.name },
      runbookVersion: version,
      requestedBy: principalName(req),
      declaredAt: Date.now(),
    };
    const summary = `Resolve the split-brain of ${domain}: ${body.action} ${someNames(open.vms)} at ${open.site} (running there since ${new Date(open.since).toISOString()} while ${open.owner.site} owns it), requested by ${principalName(req)}`;
    await startAndAnswer(res, domain, { operation: 'resolve-conflict', requestedBy: principalName(req), summary, input, vms: runbook.spec.vms.length }, { action: body.action, conflict: shownConflict(open) });
  });

  doc.post('/domains/:domain/drill', startsOperation('Drill the domain: bring up a copy at the recovery site in an isolated network, check it, clean it up (docs/drill.md)', DrillRequest));
  router.post('/domains/:domain/drill', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(DrillRequest, req);
    const { request, runbook } = await drillRequest({ runbooks, store }, domain, { ...body, pointInTime: body.pointInTime && pointInTimeOf(body.pointInTime), requestedBy: principalName(req) });
    await startAndAnswer(res, domain, request, { runbook, keepFor: body.keepFor ?? '0s' });
  });

  /** What the domain's desk is running, the drill apart (nothing when the desk was never started). */
  async function deskNow(domain: string): Promise<Pick<DomainOperationsState, 'running' | 'drill'>> {
    const state = await ask(domainOperationsWorkflowId(domain), ORCHESTRATION_TASK_QUEUE, domainOperationsQuery);
    return { ...(state?.running ? { running: state.running } : {}), ...(state?.drill ? { drill: state.drill } : {}) };
  }

  async function runningOperation(domain: string): Promise<OperationRecord | undefined> {
    return (await deskNow(domain)).running;
  }

  /** `POST /domains/{d}/failover` while a continuous failover runs: an update on it, not a second operation. */
  async function completeContinuousFailover(req: Request, res: express.Response, domain: string, workflowId: string, body: z.infer<typeof FailoverRequest>, declaredAt: number) {
    if (body.commit) {
      throw badRequest(`a continuous failover of ${domain} is running (${workflowId}): its completion has no commit window; complete it without "commit", or cancel it and run a plain failover with one`, { running: links(workflowId) });
    }
    if (body.continuousFailback) {
      throw badRequest(`a continuous failover of ${domain} is running (${workflowId}): its completion does not start a continuous failback; start one with POST /domains/${domain}/continuous-failback once it has completed`, { running: links(workflowId) });
    }
    if (body.pointInTime) {
      throw badRequest(`a continuous failover of ${domain} is running (${workflowId}): completing it keeps the blocks it has already applied, which cannot be rewound to a point in time; cancel it and run a plain failover to a point in time instead`, { running: links(workflowId) });
    }
    await completeRunning(req, res, { domain, workflowId, operation: 'continuous-failover', update: completeContinuousFailoverUpdate }, body, declaredAt);
  }

  /** An update on the running continuous operation that completes it, planned or forced; answered 202 with where to follow it. */
  async function completeRunning(
    req: Request,
    res: express.Response,
    running: { domain: string; workflowId: string; operation: 'continuous-failover' | 'continuous-failback'; update: typeof completeContinuousFailoverUpdate },
    body: { type: HandoverType; confirm?: string; runbook?: string; version?: number },
    declaredAt: number,
  ) {
    const { domain, workflowId, operation } = running;
    const { runbook, version } = await loadRunbook(domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) });
    const request: CompletionRequest = {
      type: body.type,
      requestedBy: principalName(req),
      declaredAt,
      runbook: { runbook, version },
      ...(body.type === 'forced' ? { forcedConfirmation: body.confirm } : {}),
    };
    // Tried again through a worker's death or a failed workflow task, as the same update (one per API call).
    await executeUpdateSurely(client.workflow.getHandle(workflowId), running.update, [request], `complete/${req.requestId ?? randomUUID()}`, { attempts: 5 })
      .catch((error: unknown) => {
        const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === COMPLETION_REFUSED) throw conflict(cause.message, { running: links(workflowId) });
        throw error;
      });
    // The completion is under way first; a drill beside it is then cleaned up out of its way.
    const drill = await client.workflow.getHandle(domainOperationsWorkflowId(domain)).executeUpdate(drillGivesWayUpdate, { args: [{ to: workflowId }] });
    log.info({ domain, workflowId, type: body.type, requestedBy: request.requestedBy, ...(drill ? { drillGivingWay: drill.workflowId } : {}) }, `${operation} completion requested`);
    res
      .status(202)
      .location(links(workflowId).statusUrl)
      .json({ ...links(workflowId), operation, completes: workflowId, type: body.type, runbook: { name: runbook.metadata.name, version }, ...(drill ? { drillGivingWay: links(drill.workflowId) } : {}) });
  }

  doc.get('/domains/:domain', { summary: 'The domain now: mode, allowed operations, owner, status, protection, RPO, last drill, running operation', responses: { 200: 'the domain; `warnings` when its RPO is past its target' }, problems: [400, 404] });
  router.get('/domains/:domain', async (req, res) => {
    const domain = domainParam(req);
    const [ownership, status, condition] = await Promise.all([new Ownership(store, domain).inspect(), readDomainStatus(store, domain), readDomainCondition(store, domain)]);
    if (!ownership.owner && !status) throw notFound(`the storage site holds no protected domain ${domain}`);
    const protection = ownership.owner ? ((await protectionStatus(client, PROTECTION_DEADLINE_MS, protectionWorkflowId(domain, ownership.owner.site, ownership.epoch), [])) ?? null) : null;
    const [desk, drill, rpoTarget, latest] = await Promise.all([
      deskNow(domain).catch(() => undefined),
      drillAtAGlance(client, domain),
      latestRpoTargetSeconds(runbooks, domain).catch(() => undefined),
      latestDomainRunbook(runbooks, domain).catch((error: unknown) => ({ why: String(error) })),
    ]);
    const rpo = rpoNow(protection, rpoTarget, Date.now());
    const warnings = [...(rpo?.breached ? [rpoBreachWarning(domain, rpo)] : []), ...(drill.warnings ?? [])];
    const running = desk?.running;
    const continuous = running?.operation === 'continuous-failover' ? 'continuousFailover' : running?.operation === 'continuous-failback' ? 'continuousFailback' : undefined;
    const progress = continuous ? await ask(running!.workflowId, ORCHESTRATION_TASK_QUEUE, operationProgressQuery).catch(() => undefined) : undefined;
    res.json({
      domain,
      mode: condition.mode,
      allowedOperations: offeredByRunbook(offeredWhile(condition, desk), latest),
      ...(desk?.drill ? { drill: { ...links(desk.drill.workflowId), requestedBy: desk.drill.requestedBy, startedAt: desk.drill.startedAt, ...(desk.drill.gaveWayTo ? { givingWayTo: desk.drill.gaveWayTo } : {}) } } : {}),
      ...(continuous ? { [continuous]: { ...links(running!.workflowId), phase: progress?.phase ?? null, following: progress?.following ?? null } } : {}),
      owner: ownership.owner ? { site: ownership.owner.site, epoch: ownership.epoch, since: new Date(ownership.owner.claimedAt).toISOString() } : null,
      conflict: condition.conflictSince !== undefined ? await readConflict(store, domain).then((open) => (open ? shownConflict(open) : null)) : null,
      status: status ?? null,
      permanentFailover: (await readPermanentFailover(store, domain)) ?? null,
      protection,
      rpo,
      lastDrill: drill.lastDrill,
      ...(warnings.length > 0 ? { warnings } : {}),
    });
  });

  doc.get('/domains/:domain/operations', { summary: 'The domain\'s running operation, running drill and recent operations', responses: { 200: '`{domain, running, drill, recent: [...]}`' }, problems: [400] });
  router.get('/domains/:domain/operations', async (req, res) => {
    const domain = domainParam(req);
    try {
      const state = await client.workflow.getHandle(domainOperationsWorkflowId(domain)).query(domainOperationsQuery);
      // Each recent record says how it ended (succeeded, aborted, cancelled) and, when aborted, why; its status URL has the whole report.
      const shown = (record: OperationRecord | undefined) => (record ? { ...record, ...links(record.workflowId) } : null);
      res.json({ domain, running: shown(state.running), drill: shown(state.drill), recent: state.recent.map(shown) });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return void res.json({ domain, running: null, drill: null, recent: [] });
      throw error;
    }
  });

  async function describeOperation(workflowId: string) {
    const handle = client.workflow.getHandle(workflowId);
    try {
      return { handle, description: await handle.describe() };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound(`no operation ${workflowId}`);
      throw error;
    }
  }

  /**
   * Asks a running operation's workflow, in bounded time. Undefined when the workflow has no answer
   * of this kind (no such query, or it is gone); when nobody answers (no orchestration worker
   * polling, or one too busy), a 503 that names what could not be reached, never "nothing waits".
   */
  async function ask<R>(workflowId: string, taskQueue: string, query: QueryDefinition<R, []>): Promise<R | undefined> {
    try {
      return await client.withDeadline(Date.now() + queryDeadlineMs, () => client.workflow.getHandle(workflowId).query(query));
    } catch (error) {
      if (error instanceof QueryNotRegisteredError || error instanceof WorkflowNotFoundError) return undefined;
      throw await unanswered(workflowId, taskQueue, query.name, error);
    }
  }

  async function unanswered(workflowId: string, taskQueue: string, queryName: string, error: unknown): Promise<ProblemError> {
    const pollers = await client
      .withDeadline(Date.now() + 2_000, () => client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType: 1 }))
      .then((r) => r.pollers.length)
      .catch(() => undefined);
    const why =
      pollers === 0
        ? `no orchestration worker polls task queue "${taskQueue}"`
        : pollers === undefined
          ? `the query failed (${describeError(error)}) and Temporal could not say whether an orchestration worker polls task queue "${taskQueue}"`
          : `the orchestration worker on task queue "${taskQueue}" did not answer within ${queryDeadlineMs / 1000} s (${describeError(error)})`;
    log.warn({ workflowId, query: queryName, taskQueue, pollers, err: error }, 'operation query unanswered');
    return new ProblemError({
      title: 'Service unavailable',
      status: 503,
      detail: `could not ask operation ${workflowId} what it is waiting for (query "${queryName}"): ${why}; start or check the orchestration worker, then try again`,
      workflowId,
      query: queryName,
      taskQueue,
    });
  }

  async function runningGroups(plan: PowerOnPlanProgress | undefined, taskQueue: string): Promise<PowerOnGroupProgress[]> {
    const running = (plan?.groups ?? []).filter((g) => g.state === 'running');
    const groups = await Promise.all(running.map(async (g) => g.inOperation ?? ask(g.workflowId, taskQueue, powerOnGroupProgressQuery)));
    return groups.filter((g): g is PowerOnGroupProgress => g !== undefined);
  }

  /** The power-on groups of a running operation, as they answer; an operation that has ended waits for nothing. */
  async function groupsOf(workflowId: string): Promise<PowerOnGroupProgress[]> {
    const { description } = await describeOperation(workflowId);
    if (description.status.name !== 'RUNNING') return [];
    return runningGroups(await ask(workflowId, description.taskQueue, powerOnPlanProgressQuery), description.taskQueue);
  }

  doc.get('/operations/:id', { summary: 'An operation\'s status, progress, power-on plan and result', params: OPERATION_PARAMS, responses: { 200: { description: 'the operation', content: { 'application/json': OperationStatus } } }, problems: [404] });
  router.get('/operations/:id', async (req, res) => {
    const workflowId = String(req.params.id);
    const { handle, description } = await describeOperation(workflowId);
    const status = description.status.name;
    // Progress comes from the orchestration worker; when it cannot answer, the status still does.
    let plan: PowerOnPlanProgress | undefined;
    let groups: PowerOnGroupProgress[] = [];
    let progress: OperationProgress | undefined;
    let progressUnavailable: string | undefined;
    if (status === 'RUNNING') {
      try {
        plan = await ask(workflowId, description.taskQueue, powerOnPlanProgressQuery);
        groups = await runningGroups(plan, description.taskQueue);
        const kind = parseOperationWorkflowId(workflowId)?.operation;
        if (kind && kind !== 'power-on') progress = await ask(workflowId, description.taskQueue, operationProgressQuery);
      } catch (error) {
        if (!(error instanceof ProblemError)) throw error;
        progressUnavailable = error.problem.detail;
      }
    }
    // The workflow learns the rehydrated bytes when the activity ends; meanwhile its heartbeat has them (none before its first segment: it heartbeats nothing while the base is read).
    const rehydrating = (description.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'rehydrateDomain');
    const heartbeat = rehydrating?.heartbeatDetails?.payloads?.[0];
    if (progress && heartbeat) progress.bytesRehydrated = defaultPayloadConverter.fromPayload<{ bytesWritten?: number } | undefined>(heartbeat)?.bytesWritten ?? progress.bytesRehydrated;
    const result: unknown = status === 'COMPLETED' ? await handle.result() : status === 'FAILED' ? await failureReport(handle) : undefined;
    res.json({ ...links(workflowId), status, startedAt: description.startTime, closedAt: description.closeTime ?? null, progress, plan, groups, result, ...(progressUnavailable ? { progressUnavailable } : {}) });
  });

  /** An operation that aborted carries its report (what was undone, what remains) in its failure. */
  async function failureReport(handle: ReturnType<Client['workflow']['getHandle']>): Promise<unknown> {
    try {
      await handle.result();
      return undefined;
    } catch (error) {
      const cause = error instanceof WorkflowFailedError ? error.cause : undefined;
      return cause instanceof ApplicationFailure ? { failure: cause.message, report: cause.details?.[0] } : { failure: String(error) };
    }
  }

  function mapUpdateFailure(error: unknown): never {
    const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === NOT_AN_APPROVER) throw new ProblemError({ title: 'Forbidden', status: 403, detail: cause.message });
    if (cause instanceof ApplicationFailure && cause.type === NOT_WAITING) throw conflict(cause.message);
    throw error;
  }

  doc.post('/operations/:id/approve', { summary: 'Approve or reject a step that waits for approval', params: OPERATION_PARAMS, body: ApproveRequest, responses: { 200: '`{workflowId, step, decision, by}`' }, problems: [404, 409, 503] });
  router.post('/operations/:id/approve', requireRole('operator'), json, async (req, res) => {
    const workflowId = String(req.params.id);
    const body = parseBody(ApproveRequest, req);
    const waiting = (await groupsOf(workflowId)).find((g) => g.waitingForApproval?.step === body.step);
    if (!waiting) throw conflict(`operation ${workflowId} is not waiting for approval of step "${body.step}"`);
    await client.workflow
      .getHandle(waiting.workflowId)
      .executeUpdate(approveUpdate, { args: [{ step: body.step, approver: principalName(req), decision: body.decision, ...(body.comment ? { comment: body.comment } : {}) }] })
      .catch(mapUpdateFailure);
    res.json({ ...links(workflowId), step: body.step, decision: body.decision, by: principalName(req) });
  });

  for (const action of ['resume', 'retry', 'skip'] as const satisfies readonly OperatorAction[]) {
    doc.post(`/operations/:id/${action}`, { summary: `${action} a VM or group the operation paused on`, params: OPERATION_PARAMS, body: DecisionRequest, responses: { 200: '`{workflowId, target, action, by}`' }, problems: [404, 409, 503] });
    router.post(`/operations/:id/${action}`, requireRole('operator'), json, async (req, res) => {
      const workflowId = String(req.params.id);
      const body = parseBody(DecisionRequest, req);
      const paused = (await groupsOf(workflowId)).find((g) => g.pausedOn.some((p) => p.target === body.target));
      if (!paused) throw conflict(`nothing named "${body.target}" is paused in operation ${workflowId}`);
      await client.workflow
        .getHandle(paused.workflowId)
        .executeUpdate(operatorDecisionUpdate, { args: [{ target: body.target, action, operator: principalName(req), ...(body.comment ? { comment: body.comment } : {}) }] })
        .catch(mapUpdateFailure);
      res.json({ ...links(workflowId), target: body.target, action, by: principalName(req) });
    });
  }

  for (const decision of ['commit', 'rollback'] as const) {
    doc.post(`/operations/:id/${decision}`, { summary: `${decision} a failover that keeps its commit window open`, params: OPERATION_PARAMS, body: CommitDecisionRequest, responses: { 202: '`{workflowId, decision, by, deadline}`' }, problems: [404, 409, 503] });
    router.post(`/operations/:id/${decision}`, requireRole('operator'), json, async (req, res) => {
      const workflowId = String(req.params.id);
      parseBody(CommitDecisionRequest, req);
      const { handle, description } = await describeOperation(workflowId);
      const window = description.status.name === 'RUNNING' ? (await ask(workflowId, description.taskQueue, operationProgressQuery))?.commitWindow : undefined;
      if (window?.state !== 'open') {
        throw conflict(`operation ${workflowId} has no open commit window${window ? ` (${describeCommitWindow(window)})` : description.status.name === 'RUNNING' ? '' : ` (${description.status.name})`}`);
      }
      const status = await handle.executeUpdate(decideCommitUpdate, { args: [{ decision, requestedBy: principalName(req) }] }).catch((error: unknown) => {
        const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === COMMIT_REFUSED) throw conflict(cause.message);
        throw error;
      });
      log.info({ workflowId, decision, by: principalName(req) }, `failover ${decision} requested`);
      res.status(202).json({ ...links(workflowId), decision, by: principalName(req), deadline: new Date(status.deadline).toISOString() });
    });
  }

  doc.post('/operations/:id/cleanup', { summary: 'Clean up a drill that is kept up', params: OPERATION_PARAMS, body: CleanupRequestBody, responses: { 202: '`{workflowId, cleanupRequestedBy, force}`' }, problems: [404, 409] });
  router.post('/operations/:id/cleanup', requireRole('operator'), json, async (req, res) => {
    const workflowId = String(req.params.id);
    const body = parseBody(CleanupRequestBody, req);
    if (parseOperationWorkflowId(workflowId)?.operation !== 'drill') throw conflict(`operation ${workflowId} is not a drill: only a drill is cleaned up on request (cancel other operations)`);
    const { handle, description } = await describeOperation(workflowId);
    if (description.status.name !== 'RUNNING') throw conflict(`drill ${workflowId} is not running (${description.status.name}): its cleanup has happened`);
    const accepted = await handle.executeUpdate(cleanupDrillUpdate, { args: [{ requestedBy: principalName(req), ...(body.force ? { force: true } : {}) }] }).catch((error: unknown) => {
      const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === CLEANUP_REFUSED) throw conflict(cause.message);
      throw error;
    });
    log.info({ workflowId, force: accepted.force, by: accepted.requestedBy }, 'drill cleanup requested');
    res.status(202).json({ ...links(workflowId), cleanupRequestedBy: accepted.requestedBy, force: accepted.force });
  });

  doc.post('/operations/:id/cancel', { summary: 'Cancel a running operation: it undoes what it did', params: OPERATION_PARAMS, responses: { 202: '`{workflowId, cancellationRequestedBy}`' }, problems: [404, 409] });
  router.post('/operations/:id/cancel', requireRole('operator'), async (req, res) => {
    const workflowId = String(req.params.id);
    const { handle, description } = await describeOperation(workflowId);
    if (description.status.name !== 'RUNNING') throw conflict(`operation ${workflowId} is not running (${description.status.name})`);
    await handle.cancel();
    log.info({ workflowId, by: principalName(req) }, 'operation cancellation requested');
    res.status(202).json({ ...links(workflowId), cancellationRequestedBy: principalName(req) });
  });

  return router;
}
