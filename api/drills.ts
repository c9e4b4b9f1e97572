/**
 * Scheduled drills and the drill history: a domain's drill schedule is a Temporal Schedule
 * (`drill-schedule/<domain>`, on the Web UI's Schedules page, pausable there) whose runs request a
 * drill through the domain's desk as `POST /domains/{domain}/drill` does.
 */
import express, { type Router } from 'express';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, WorkflowNotFoundError, type Client, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';
import { z } from 'zod';
import type { Logger } from '../common/logger';
import type { RunbookStore } from '../runbooks/store';
import { drillableRunbook } from '../requests/drill';
import { scheduledDrill } from '../workflows/scheduled-drill';
import { scheduledRequester, type ScheduledDrillInput } from '../workflows/scheduled-drill-messages';
import { DR_DOMAIN, DR_OPERATION } from '../workflows/search-attributes';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import { drillScheduleId, scheduledDrillWorkflowId } from '../workflows/workflow-ids';
import { principalName, requireRole } from './auth';
import { drillHistory, historyEntry, type DrillHistoryEntry } from './drill-history';
import { domainParam, KeepFor, RunbookRef } from './operations';
import { badRequest, notFound, parseBody } from './problem';
import { routeDocs } from './openapi/route-docs';

export interface DrillsRouterOptions {
  client: Client;
  runbooks: RunbookStore;
  log: Logger;
  /** Base URL of the Temporal Web UI, for links in responses. */
  webUiUrl?: string;
}

const DrillScheduleRequest = RunbookRef.extend({
  cron: z
    .string()
    .trim()
    .min(1, 'must be a cron expression, e.g. "0 3 * * SUN" or "@every 12h"')
    .max(200)
    .describe('when to drill, in UTC: 5 fields (minute hour day-of-month month day-of-week), 6 with a year, 7 with seconds first, @daily and the like, or @every <n>s|m|h|d'),
  runbook: RunbookRef.shape.runbook.optional().describe('default: the runbook named like the domain, its latest version at each run'),
  keepFor: KeepFor.optional(),
});

const HISTORY_LIMIT = { default: 20, max: 100 };
const HistoryQuery = z.object({ limit: z.coerce.number().int().min(1).max(HISTORY_LIMIT.max).default(HISTORY_LIMIT.default).describe('how many drills, newest first') });
/** How many of the schedule's upcoming times GET shows. */
const NEXT_RUNS_SHOWN = 5;

/** Where a cron expression the server refused is named, as a 400 does for any bad field. */
const badCron = (cron: string, why: string) => badRequest(`"${cron}" is not a schedule Temporal accepts: ${why}`, { errors: [{ path: 'cron', message: why }] });

export function drillsRouter({ client, runbooks, log, webUiUrl }: DrillsRouterOptions): Router {
  const router = express.Router();
  const doc = routeDocs(router);
  const json = express.json({ limit: '16kb' });
  const namespace = client.options.namespace;
  const scheduleLinks = (scheduleId: string) => ({
    scheduleId,
    ...(webUiUrl ? { webUiUrl: `${webUiUrl}/namespaces/${namespace}/schedules/${encodeURIComponent(scheduleId)}` } : {}),
  });

  async function describeSchedule(domain: string): Promise<ScheduleDescription> {
    try {
      return await client.schedule.getHandle(drillScheduleId(domain)).describe();
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw notFound(`${domain} has no drill schedule; create one with POST /domains/${domain}/drill-schedule`);
      throw error;
    }
  }

  /** The schedule as the API shows it: its cron, whether paused, the next runs, and what its recent runs did. */
  async function shownSchedule(domain: string, schedule: ScheduleDescription) {
    const input = schedule.action.args?.[0] as ScheduledDrillInput | undefined;
    const recent = await Promise.all(schedule.info.recentActions.map((run) => recentRun(run.action.workflow, run.scheduledAt)));
    return {
      ...scheduleLinks(schedule.scheduleId),
      domain,
      cron: schedule.action.memo?.cron ?? null,
      keepFor: input?.keepFor ?? '0s',
      runbook: input?.runbook ?? domain,
      version: input?.version ?? null,
      paused: schedule.state.paused,
      note: schedule.state.note ?? null,
      setBy: schedule.action.memo?.setBy ?? null,
      nextRunTimes: schedule.info.nextActionTimes.slice(0, NEXT_RUNS_SHOWN).map((t) => t.toISOString()),
      recentRuns: recent.reverse(),
      skippedWhileRunning: schedule.info.numActionsSkippedOverlap,
    };
  }

  /** A run of the schedule: the drill it started, or why it could not start one. */
  async function recentRun(run: { workflowId: string; firstExecutionRunId: string }, scheduledAt: Date) {
    const shown = { workflowId: run.workflowId, scheduledAt: scheduledAt.toISOString() };
    const description = await client.workflow
      .getHandle(run.workflowId, run.firstExecutionRunId)
      .describe()
      .catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      });
    if (!description) return { ...shown, status: 'forgotten' as const, reason: 'past the namespace retention' };
    if (description.status.name === 'RUNNING') return { ...shown, status: 'requesting' as const };
    const started = description.memo?.drill;
    if (typeof started !== 'string') return { ...shown, ...(await historyEntry(client, description)), workflowId: run.workflowId };
    const drill: DrillHistoryEntry | null = await client.workflow
      .getHandle(started)
      .describe()
      .then((d) => historyEntry(client, d))
      .catch(() => null);
    return { ...shown, status: 'started' as const, drill: drill ?? { workflowId: started } };
  }

  doc.post('/domains/:domain/drill-schedule', {
    summary: 'Drill the domain on a schedule (a Temporal Schedule), created or replaced',
    body: DrillScheduleRequest,
    responses: { 201: 'the schedule created, as GET shows it', 200: 'the schedule replaced, as GET shows it' },
    problems: [404, 409, 422],
  });
  router.post('/domains/:domain/drill-schedule', requireRole('operator'), json, async (req, res) => {
    const domain = domainParam(req);
    const body = parseBody(DrillScheduleRequest, req);
    // Refused now rather than at every run: a runbook that cannot be drilled, or no such runbook.
    const { runbook, version } = await drillableRunbook(runbooks, domain, { runbook: body.runbook ?? domain, ...(body.version ? { version: body.version } : {}) });
    const scheduleId = drillScheduleId(domain);
    const setBy = principalName(req);
    const input: ScheduledDrillInput = {
      domain,
      schedule: scheduleId,
      ...(body.runbook ? { runbook: body.runbook } : {}),
      ...(body.version ? { version: body.version } : {}),
      ...(body.keepFor ? { keepFor: body.keepFor } : {}),
    };
    const runbookShown = body.version ? `runbook ${runbook.metadata.name} v${version}` : `the latest version of runbook ${runbook.metadata.name}`;
    const note = `Drill of ${domain} on "${body.cron}" (UTC) by ${runbookShown}, kept ${body.keepFor ?? '0s'} after its checks; a run skips when the domain cannot be drilled then. Set by ${setBy}`;
    const action: ScheduleOptions['action'] = {
      type: 'startWorkflow',
      workflowType: scheduledDrill,
      workflowId: scheduledDrillWorkflowId(domain),
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      args: [input],
      memo: { cron: body.cron, setBy },
      staticSummary: `Scheduled drill of ${domain}: requested from its operations desk as ${scheduledRequester(scheduleId)}`,
    };
    const spec = { cronExpressions: [body.cron] };
    const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' };
    let created = true;
    try {
      await client.schedule.create({
        scheduleId,
        spec,
        action,
        policies,
        state: { note },
        memo: { domain },
        typedSearchAttributes: [
          { key: DR_DOMAIN, value: domain },
          { key: DR_OPERATION, value: 'drill-schedule' },
        ],
      });
    } catch (error) {
      if (error instanceof TypeError) throw badCron(body.cron, error.message);
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
      created = false;
      await client.schedule
        .getHandle(scheduleId)
        .update((previous) => ({ ...previous, spec, action, policies, state: { paused: previous.state.paused, note } }))
        .catch((updateError: unknown) => {
          if (updateError instanceof TypeError) throw badCron(body.cron, updateError.message);
          throw updateError;
        });
    }
    log.info({ domain, scheduleId, cron: body.cron, keepFor: body.keepFor ?? '0s', setBy, created }, created ? 'drill schedule created' : 'drill schedule replaced');
    res.status(created ? 201 : 200).json(await shownSchedule(domain, await describeSchedule(domain)));
  });

  doc.get('/domains/:domain/drill-schedule', { summary: 'The domain\'s drill schedule: cron, runbook, next runs, recent runs', responses: { 200: 'the schedule' }, problems: [400, 404] });
  router.get('/domains/:domain/drill-schedule', requireRole('viewer'), async (req, res) => {
    const domain = domainParam(req);
    res.json(await shownSchedule(domain, await describeSchedule(domain)));
  });

  doc.delete('/domains/:domain/drill-schedule', { summary: 'Stop drilling the domain on a schedule', responses: { 200: '`{scheduleId, deleted: true, by}`' }, problems: [400, 404] });
  router.delete('/domains/:domain/drill-schedule', requireRole('operator'), async (req, res) => {
    const domain = domainParam(req);
    const scheduleId = drillScheduleId(domain);
    try {
      await client.schedule.getHandle(scheduleId).delete();
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw notFound(`${domain} has no drill schedule`);
      throw error;
    }
    log.info({ domain, scheduleId, by: principalName(req) }, 'drill schedule deleted');
    res.json({ ...scheduleLinks(scheduleId), deleted: true, by: principalName(req) });
  });

  doc.get('/domains/:domain/drills', { summary: 'The domain\'s drills, newest first, with their outcome and checks', query: HistoryQuery, responses: { 200: '`{domain, drills: [...]}`' }, problems: [400] });
  router.get('/domains/:domain/drills', requireRole('viewer'), async (req, res) => {
    const domain = domainParam(req);
    const query = HistoryQuery.safeParse(req.query);
    if (!query.success) throw badRequest(`limit must be a whole number from 1 to ${HISTORY_LIMIT.max}`, { errors: [{ path: 'limit', message: `must be from 1 to ${HISTORY_LIMIT.max}` }] });
    res.json({ domain, drills: await drillHistory(client, domain, query.data.limit) });
  });

  return router;
}
