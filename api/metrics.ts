/**
 * `GET /metrics` in Prometheus' text format: the API's own HTTP traffic, each protected domain's
 * RPO and protection, the operations Temporal's visibility holds, and whether workers poll the
 * task queues. Domain and operation figures come from the storage site, the protection workflows'
 * queries and visibility; they are gathered at most every `refreshMs` and shared by concurrent
 * scrapes, so a scrape is cheap however often Prometheus comes. A gathering that takes longer than
 * `deadlineMs` (the object store stalls) does not hold a scrape: it answers the last figures, with
 * RPOs computed for now from them, so they keep rising through the outage.
 */
import express, { type RequestHandler, type Router } from 'express';
import type { Client } from '@temporalio/client';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../common/logger';
import { forEachLimited } from '../common/parallel';
import { DOMAIN_MODES } from '../common/domain-modes';
import { scanDomains } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import type { RunbookStore } from '../runbooks/store';
import { PROTECTION_FAILURES, type ProtectMode, type ProtectStatus } from '../workflows/protect';
import { DR_OPERATION, DR_OUTCOME } from '../workflows/search-attributes';
import { ORCHESTRATION_TASK_QUEUE, siteTaskQueue } from '../workflows/task-queues';
import { OPERATION_KINDS } from '../workflows/workflow-ids';
import { requireRole } from './auth';
import { routeDocs } from './openapi/route-docs';
import { domainProtection } from './domain-protection';
import { rpoNow } from './rpo';

const PROTECT_MODES: ProtectMode[] = ['initial-sync', 'log', 'bitmap', 'resync'];
/** Operations ended within visibility's retention that a scrape reads, newest first. */
const OPERATIONS_READ = 2_000;

export interface MetricsOptions {
  client: Client;
  store: ObjectStore;
  /** Where each domain's RPO target is read (its latest runbook). */
  runbooks: RunbookStore;
  log: Logger;
  /** The sites whose task queues are watched. */
  sites: string[];
  /** How old gathered figures may be before a scrape gathers again; default 10 s. */
  refreshMs?: number;
  /** How long each query may take; default 3 s. */
  deadlineMs?: number;
}

export interface ApiMetrics {
  /** Counts and times every request; installed before authentication, so refusals count too. */
  httpMetrics: RequestHandler;
  router: Router;
}

interface DomainFigures {
  domain: string;
  mode: string;
  protection?: ProtectStatus;
  rpoTargetSeconds?: number;
}

interface Figures {
  at: number;
  domains: DomainFigures[];
  operations: Array<{ operation: string; outcome: string; seconds: number }>;
  pollers: Array<{ taskQueue: string; pollers: number }>;
}

export function apiMetrics({ client, store, runbooks, log, sites, refreshMs = 10_000, deadlineMs = 3_000 }: MetricsOptions): ApiMetrics {
  const registry = new Registry();
  const requests = new Counter({ name: 'dr_http_requests_total', help: 'HTTP requests answered by the API, by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const latency = new Histogram({ name: 'dr_http_request_duration_seconds', help: 'Time to answer an HTTP request', labelNames: ['method', 'route'], buckets: [0.005, 0.025, 0.1, 0.25, 1, 2.5, 10], registers: [registry] });

  const httpMetrics: RequestHandler = (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      // The route pattern, not the path: one series per endpoint, not per domain or operation id.
      const route = req.route ? `${req.baseUrl}${String((req.route as { path: string }).path)}` : 'unmatched';
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      latency.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };

  let gathered: { at: number; figures: Promise<Figures>; settled: boolean } | undefined;
  let lastGathered: Figures | undefined;
  const current = (): Promise<Figures> => {
    // One gathering at a time: a stalled one is waited for, not piled upon.
    if (!gathered || (gathered.settled && Date.now() - gathered.at > refreshMs)) {
      const figures = gather();
      const started = { at: Date.now(), figures, settled: false };
      gathered = started;
      figures.then(
        (done) => {
          started.settled = true;
          lastGathered = done;
        },
        () => {
          if (gathered === started) gathered = undefined;
        },
      );
    }
    const last = lastGathered;
    if (!last) return gathered.figures;
    return Promise.race([gathered.figures, new Promise<Figures>((resolve) => setTimeout(() => resolve(last), deadlineMs).unref())]);
  };

  async function gather(): Promise<Figures> {
    const at = Date.now();
    const scanned = await scanDomains(store);
    const domains: DomainFigures[] = [];
    await forEachLimited(scanned, 8, async (d) => {
      const { condition, protection, rpoTargetSeconds } = await domainProtection({ client, store, runbooks, deadlineMs }, d, []);
      domains.push({ domain: d.domain, mode: condition.mode, ...(protection ? { protection } : {}), ...(rpoTargetSeconds !== undefined ? { rpoTargetSeconds } : {}) });
    });
    const operations: Figures['operations'] = [];
    const kinds = OPERATION_KINDS.map((k) => `'${k}'`).join(', ');
    for await (const run of client.workflow.list({ query: `${DR_OPERATION.name} IN (${kinds}) AND ExecutionStatus != 'Running'`, pageSize: 500 })) {
      if (operations.length >= OPERATIONS_READ) break;
      const operation = run.searchAttributes[DR_OPERATION.name]?.[0];
      if (typeof operation !== 'string' || !run.closeTime) continue;
      const outcome = run.searchAttributes[DR_OUTCOME.name]?.[0];
      operations.push({ operation, outcome: typeof outcome === 'string' && outcome !== 'running' ? outcome : run.status.name.toLowerCase(), seconds: (run.closeTime.getTime() - run.startTime.getTime()) / 1000 });
    }
    const queues = [{ name: ORCHESTRATION_TASK_QUEUE, type: 1 }, ...sites.map((site) => ({ name: siteTaskQueue(site), type: 2 }))];
    const pollers = await Promise.all(
      queues.map(async ({ name, type }) => {
        const described = await client
          .withDeadline(Date.now() + deadlineMs, () => client.workflowService.describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name }, taskQueueType: type }))
          .catch(() => undefined);
        return { taskQueue: name, pollers: described?.pollers.length ?? 0 };
      }),
    );
    return { at, domains, operations, pollers };
  }

  /** A gauge whose values are set from the gathered figures at each scrape. */
  const gauge = (name: string, help: string, labelNames: string[], set: (g: Gauge, figures: Figures) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const figures = await current();
        this.reset();
        set(this, figures);
      },
    });
  const now = () => Date.now();
  const rpos = (domains: DomainFigures[]) =>
    domains.flatMap((d) => {
      const rpo = rpoNow(d.protection, d.rpoTargetSeconds, now());
      return rpo ? [{ domain: d.domain, rpo }] : [];
    });
  gauge('dr_rpo_seconds', 'At most this many seconds of each domain\'s writes would be lost: the time since every write was known durable in the storage site', ['domain'], (g, { domains }) => {
    for (const { domain, rpo } of rpos(domains)) g.set({ domain }, rpo.seconds);
  });
  gauge('dr_rpo_target_seconds', 'The RPO target of each domain that has one (spec.protection.rpoTarget of its latest runbook)', ['domain'], (g, { domains }) => {
    for (const d of domains) if (d.rpoTargetSeconds !== undefined) g.set({ domain: d.domain }, d.rpoTargetSeconds);
  });
  gauge('dr_rpo_target_breached', 'Whether the domain\'s RPO is past its target: 1 past it, 0 within it (absent: no target, or the RPO is unknown)', ['domain'], (g, { domains }) => {
    for (const { domain, rpo } of rpos(domains)) if (rpo.targetSeconds !== null) g.set({ domain }, rpo.breached ? 1 : 0);
  });
  gauge('dr_figures_age_seconds', 'How old the domain and operation figures of this scrape are (they stop being refreshed while the object store or Temporal does not answer)', [], (g, { at }) => {
    g.set((now() - at) / 1000);
  });
  gauge('dr_replication_backlog_entries', 'Writes journaled at the protected site and not yet in the log', ['domain'], (g, { domains }) => {
    for (const d of domains) if (d.protection) g.set({ domain: d.domain }, d.protection.backlogEntries);
  });
  gauge('dr_replication_lag_bytes', 'Bytes of writes journaled at the protected site and not yet in the log, as of the last replicator run', ['domain'], (g, { domains }) => {
    for (const d of domains) if (d.protection?.lagBytes !== undefined) g.set({ domain: d.domain }, d.protection.lagBytes);
  });
  // Read from the protection's status, not counted here: every API process answers the same; a new protection (a new epoch) starts again from zero, which Prometheus takes as a counter reset.
  new Counter({
    name: 'dr_replication_bytes_total',
    help: 'Bytes of writes the domain\'s protection has put in the log',
    labelNames: ['domain'],
    registers: [registry],
    async collect() {
      const { domains } = await current();
      this.reset();
      for (const d of domains) if (d.protection?.bytesReplicated !== undefined) this.inc({ domain: d.domain }, d.protection.bytesReplicated);
    },
  });
  gauge('dr_protection_mode', 'The protection mode of each domain: 1 for the mode it is in', ['domain', 'mode'], (g, { domains }) => {
    for (const d of domains) if (d.protection) for (const mode of PROTECT_MODES) g.set({ domain: d.domain, mode }, d.protection.mode === mode ? 1 : 0);
  });
  gauge('dr_protection_failing', 'Whether the domain\'s protection is stuck on a failure it waits out (1 for the reason; ObjectStoreAccessDenied: the object store refuses the site worker\'s credentials)', ['domain', 'reason'], (g, { domains }) => {
    for (const d of domains) if (d.protection) for (const reason of PROTECTION_FAILURES) g.set({ domain: d.domain, reason }, d.protection.failing?.reason === reason ? 1 : 0);
  });
  gauge('dr_protection_answering', 'Whether the domain\'s protection workflow answered the last scrape (0: stopped, or no worker answers)', ['domain'], (g, { domains }) => {
    for (const d of domains) g.set({ domain: d.domain }, d.protection ? 1 : 0);
  });
  gauge('dr_domain_mode', 'The mode of each protected domain: 1 for the mode it is in', ['domain', 'mode'], (g, { domains }) => {
    for (const d of domains) for (const mode of DOMAIN_MODES) g.set({ domain: d.domain, mode }, d.mode === mode ? 1 : 0);
  });
  gauge('dr_last_restore_point_age_seconds', 'Age of the newest restore point of each domain', ['domain'], (g, { domains }) => {
    for (const d of domains) if (d.protection?.lastRestorePoint) g.set({ domain: d.domain }, (now() - d.protection.lastRestorePoint.timestamp) / 1000);
  });
  gauge('dr_worker_pollers', 'Workers polling each task queue (0: nothing will run there)', ['task_queue'], (g, { pollers }) => {
    for (const p of pollers) g.set({ task_queue: p.taskQueue }, p.pollers);
  });
  // Operations are read from visibility, not counted in this process: any number of API processes
  // answer the same figures, and an API restart loses nothing. They cover visibility's retention.
  new Counter({
    name: 'dr_operations_total',
    help: 'Operations ended, by type and outcome, within Temporal visibility retention',
    labelNames: ['operation', 'outcome'],
    registers: [registry],
    async collect() {
      const { operations } = await current();
      this.reset();
      for (const o of operations) this.inc({ operation: o.operation, outcome: o.outcome });
    },
  });
  new Histogram({
    name: 'dr_operation_duration_seconds',
    help: 'How long ended operations took, by type and outcome, within Temporal visibility retention',
    labelNames: ['operation', 'outcome'],
    buckets: [10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600],
    registers: [registry],
    async collect() {
      const { operations } = await current();
      this.reset();
      for (const o of operations) this.observe({ operation: o.operation, outcome: o.outcome }, o.seconds);
    },
  });

  const router = express.Router();
  routeDocs(router).get('/metrics', {
    summary: 'Prometheus metrics: RPO and protection per domain, operations, HTTP traffic, worker pollers',
    responses: { 200: { description: 'the Prometheus text format (docs/monitoring.md)', content: { 'text/plain': null } } },
    problems: [503],
  });
  router.get('/metrics', requireRole('viewer'), async (_req, res) => {
    try {
      const text = await registry.metrics();
      res.type(registry.contentType).send(text);
    } catch (error) {
      log.warn({ err: error }, 'metrics could not be gathered');
      res.status(503).type('application/problem+json').send(JSON.stringify({ title: 'Service Unavailable', status: 503, detail: `the metrics could not be gathered: ${(error as Error).message}` }));
    }
  });
  return { httpMetrics, router };
}
