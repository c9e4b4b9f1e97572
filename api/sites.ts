/**
 * The sites at a glance: whether each answers, what it holds, and whether a worker polls its task
 * queue (and when it last did), so an operator sees a dead site worker before an operation waits
 * on it. Each site is asked in bounded time: one that does not answer is listed as unreachable.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Client } from '@temporalio/client';
import type { Logger } from '../common/logger';
import type { SiteClient } from '../sites/client';
import { ORCHESTRATION_TASK_QUEUE, siteTaskQueue } from '../workflows/task-queues';
import { requireRole } from './auth';
import { routeDocs } from './openapi/route-docs';

export interface SitesRouterOptions {
  client: Client;
  sites: Map<string, Pick<SiteClient, 'inventory' | 'listVms' | 'listDisks'>>;
  log: Logger;
  /** How long each site and Temporal get to answer; default 3 s. */
  deadlineMs?: number;
}

const QueueHealthAnswer = z.strictObject({
  taskQueue: z.string(),
  pollers: z.array(z.strictObject({ identity: z.string(), lastPollAt: z.string().nullable() })).describe('workers polling it recently, by identity, with their last poll'),
  lastPollAt: z.string().nullable(),
  error: z.string().optional().describe('set when Temporal could not be asked'),
});
export type QueueHealth = z.infer<typeof QueueHealthAnswer>;
const SiteHealth = z.strictObject({
  name: z.string(),
  reachable: z.boolean(),
  inventory: z.strictObject({ vms: z.int(), poweredOn: z.int(), appliances: z.int(), disks: z.int(), datastores: z.int(), networks: z.int() }).optional(),
  error: z.string().optional().describe('why the site did not answer'),
  worker: QueueHealthAnswer,
});

/** Task queue types as Temporal numbers them. */
const WORKFLOW_QUEUE = 1;
const ACTIVITY_QUEUE = 2;

function withDeadline<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export function sitesRouter({ client, sites, log, deadlineMs = 3_000 }: SitesRouterOptions): Router {
  const router = express.Router();
  const namespace = client.options.namespace;

  async function queueHealth(taskQueue: string, taskQueueType: number): Promise<QueueHealth> {
    try {
      const { pollers } = await client.withDeadline(Date.now() + deadlineMs, () => client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType }));
      const shown = pollers
        .map((p) => ({ identity: p.identity ?? '', lastPollAt: p.lastAccessTime?.seconds ? new Date(Number(p.lastAccessTime.seconds) * 1000 + Math.floor((p.lastAccessTime.nanos ?? 0) / 1e6)).toISOString() : null }))
        .sort((a, b) => a.identity.localeCompare(b.identity));
      const lastPollAt = shown.map((p) => p.lastPollAt).filter((t): t is string => t !== null).sort().at(-1) ?? null;
      return { taskQueue, pollers: shown, lastPollAt };
    } catch (error) {
      return { taskQueue, pollers: [], lastPollAt: null, error: `Temporal could not be asked: ${(error as Error).message}` };
    }
  }

  async function siteHealth(name: string, site: Pick<SiteClient, 'inventory' | 'listVms' | 'listDisks'>): Promise<z.infer<typeof SiteHealth>> {
    const worker = queueHealth(siteTaskQueue(name), ACTIVITY_QUEUE);
    try {
      const [inventory, vms, disks] = await withDeadline(deadlineMs, `site ${name}`, Promise.all([site.inventory(), site.listVms(), site.listDisks()]));
      const domainVms = vms.filter((vm) => vm.kind === 'vm');
      return {
        name,
        reachable: true,
        inventory: {
          vms: domainVms.length,
          poweredOn: domainVms.filter((vm) => vm.powerState === 'poweredOn').length,
          appliances: vms.length - domainVms.length,
          disks: disks.length,
          datastores: inventory.datastores.length,
          networks: inventory.networks.length,
        },
        worker: await worker,
      };
    } catch (error) {
      log.warn({ site: name, err: error }, 'site unreachable');
      return { name, reachable: false, error: (error as Error).message, worker: await worker };
    }
  }

  routeDocs(router).get('/sites', {
    summary: 'Each site\'s health, inventory counts and its worker\'s last poll; the orchestration worker\'s too',
    responses: { 200: { description: 'the sites by name, and the orchestration worker', content: { 'application/json': z.strictObject({ sites: z.array(SiteHealth), orchestration: z.strictObject({ worker: QueueHealthAnswer }) }) } } },
  });
  router.get('/sites', requireRole('viewer'), async (_req, res) => {
    const [listed, orchestration] = await Promise.all([Promise.all([...sites].map(([name, site]) => siteHealth(name, site))), queueHealth(ORCHESTRATION_TASK_QUEUE, WORKFLOW_QUEUE)]);
    res.json({ sites: listed.sort((a, b) => a.name.localeCompare(b.name)), orchestration: { worker: orchestration } });
  });

  return router;
}
