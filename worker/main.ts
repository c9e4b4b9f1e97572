/**
 * The one place that wires workers. `--orchestration` runs the workflows; `--site <name>` runs
 * that site's activities on its own task queue (a forced failover schedules nothing there once
 * the site is gone, so each site's worker lives and dies with its site). Any number of
 * `--site <name> --instance <n>` processes may poll one site's queue (docs/scale-out.md): each
 * activity attempt goes to one of them, and another takes over an attempt whose holder dies.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from '@temporalio/worker';
import { loadSettings } from '../common/config';
import { stopWhenOrphaned } from '../common/child-process';
import { OperatorError } from '../common/errors';
import { createLogger } from '../common/logger';
import { missingMallocSettings } from '../common/malloc-settings';
import { createS3Client, checkS3Reachable } from '../common/s3';
import { fileSecretResolver } from '../common/secrets';
import { SiteClient } from '../sites/client';
import { connectClient, connectWorker } from '../common/temporal';
import type { conflictWatch } from '../workflows/conflict-watch';
import { conflictWatchWorkflowId } from '../workflows/workflow-ids';
import { ORCHESTRATION_TASK_QUEUE, siteTaskQueue } from '../workflows/task-queues';
import { ObjectStore } from '../datapath/object-store';
import { createScheduledDrillActivities } from '../requests/scheduled-drill-activities';
import { createRunbookPageActivities } from '../activities/runbook-pages';
import { RunbookStore } from '../runbooks/store';
import { serveLiveness } from './liveness';
import { installRuntimeLogging } from './runtime';
import { createSiteActivities } from './site-activities';
import { workflowCode } from './workflow-code';
import { dataConverter } from '../common/payload-compression';
import { DEFAULT_STAGING_AHEAD_BYTES, ReplicationMemory } from '../datapath/replication-memory';
import { DEFAULT_REHYDRATIONS_AT_ONCE } from '../activities/datapath';

stopWhenOrphaned();

// Worker capacity is the SDK's unless the operator sets DR_WORKER_* (docs/deployment.md), and
// measured, not guessed (bench/worker-options.ts: 50 domains failing over at once; the figures in
// bench/results/worker-options.json). A workflow cache of 2,000 instead of the 500 set before took
// 0.91x the time with 10% less CPU (two rounds of three faster), with several hundred workflows
// open at once; the SDK sizes its default from the heap (2,310 with Node's 4 GiB heap here), so
// that default is kept. 400 activity slots instead of the SDK's 100 took 1.02x with more CPU: on
// two cores the cores are the limit, not the slots. Nor were 10 or 200 workflow task slots against
// the SDK's 40 (0.94x and 0.99x, each round's ratio crossing 1; worker-options-workflow-tasks-20x20.json).

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { orchestration: { type: 'boolean' }, site: { type: 'string' }, instance: { type: 'string' } } });
  if (Boolean(values.orchestration) === Boolean(values.site) || (values.instance !== undefined && (!values.site || !/^[1-9]\d*$/.test(values.instance)))) {
    throw new OperatorError('usage: worker/main.ts --orchestration | --site <name> [--instance <n>]');
  }
  const settings = loadSettings();
  const name = values.site ? `worker.site.${values.site}${values.instance ? `#${values.instance}` : ''}` : 'worker.orchestration';
  const log = createLogger(name);
  // The Web UI shows which of a site's workers ran (or runs) each activity attempt.
  const identity = `${process.pid}@${hostname()} ${name}`;
  installRuntimeLogging(log);
  const connection = await connectWorker(settings.temporal);

  // A site worker's memory bounds, resolved once: its activities use them and its start line reports them.
  const memoryBounds = { rehydrationsAtOnce: settings.rehydrationsAtOnce ?? DEFAULT_REHYDRATIONS_AT_ONCE, stagingAheadBytes: settings.segmentWriting.stagingAheadBytes ?? DEFAULT_STAGING_AHEAD_BYTES };
  const worker = values.site ? await createSiteWorker(values.site) : await createOrchestrationWorker();

  async function createOrchestrationWorker() {
    const s3 = createS3Client(settings.s3);
    await checkS3Reachable(s3, settings.s3);
    // Its activities ask domains' operations desks, as the API does: a drill schedule's runs.
    const client = await connectClient(settings.temporal);
    const runbooks = new RunbookStore(s3, settings.s3);
    return Worker.create({
      connection,
      namespace: settings.temporal.namespace,
      identity,
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      ...workflowCode(),
      ...settings.workerCapacity,
      dataConverter,
      activities: { ...createScheduledDrillActivities({ client, runbooks, store: new ObjectStore(s3, settings.s3), log }), ...createRunbookPageActivities({ runbooks }) },
    });
  }

  async function createSiteWorker(site: string) {
    const s3 = createS3Client(settings.s3);
    await checkS3Reachable(s3, settings.s3);
    const url = process.env.DR_SITE_URL;
    const token = process.env.DR_SITE_TOKEN;
    if (!url || !token) throw new OperatorError(`the worker of site ${site} needs DR_SITE_URL and DR_SITE_TOKEN (its site's API)`);
    const provider = new SiteClient({ site, url, token });
    const unsetMalloc = missingMallocSettings();
    if (unsetMalloc.length) log.warn({ unset: unsetMalloc }, 'started without the malloc settings of docs/deployment.md: a rehydration\'s memory will grow with the domain it rebuilds');
    const secrets = fileSecretResolver(process.env.DR_SECRETS_FILE ?? path.join(settings.dataDir, 'secrets', 'named-secrets.json'));
    return Worker.create({
      connection,
      namespace: settings.temporal.namespace,
      identity,
      taskQueue: siteTaskQueue(site),
      ...settings.workerCapacity,
      dataConverter,
      activities: createSiteActivities({ site, s3, s3Settings: settings.s3, provider, secrets, segmentWriting: { inlineMaxBytes: settings.segmentWriting.inlineMaxBytes, memory: new ReplicationMemory(memoryBounds.stagingAheadBytes) }, rehydrationsAtOnce: memoryBounds.rehydrationsAtOnce }),
    });
  }

  if (values.site) await keepConflictWatchRunning(values.site);

  /**
   * A site's worker makes sure its split-brain detector runs: started here, so that a site that
   * comes back after a forced failover is watched as soon as its worker is, and idempotently
   * (the running watch is kept), so that restarts of the worker neither duplicate nor reset it.
   */
  async function keepConflictWatchRunning(site: string) {
    const client = await connectClient(settings.temporal);
    try {
      await client.workflow.start<typeof conflictWatch>('conflictWatch', {
        workflowId: conflictWatchWorkflowId(site),
        taskQueue: ORCHESTRATION_TASK_QUEUE,
        workflowIdConflictPolicy: 'USE_EXISTING',
        args: [{ site }],
        staticSummary: `Split-brain watch of site ${site}: records a conflict when the domains' VMs run here while another site owns them`,
      });
    } finally {
      await client.connection.close();
    }
  }

  const liveness = settings.workerHealth && (await serveLiveness(settings.workerHealth, () => worker.getState(), log));
  const { maxCachedWorkflows, tuner } = worker.options;
  const activitySlots = slotsOf(tuner.activityTaskSlotSupplier);
  // A site's worker runs no workflows: its cache and workflow slots are unused.
  const capacity = values.site
    ? { activitySlots, rehydrationsAtOnce: memoryBounds.rehydrationsAtOnce, replicationStagingMiB: memoryBounds.stagingAheadBytes / 2 ** 20 }
    : { maxCachedWorkflows, workflowTaskSlots: slotsOf(tuner.workflowTaskSlotSupplier), activitySlots };
  log.info({ taskQueue: worker.options.taskQueue, temporal: settings.temporal.address, capacity }, 'worker running');
  // run() returns after SIGINT/SIGTERM once in-flight tasks have finished: running activities are
  // cancelled at once, and the long ones stop at their next heartbeat. One stuck in a call that
  // does not hear the cancel (a site request that hangs) would hold the stop for as long as the
  // call lasts; after the force time the worker exits without it, and the attempt times out on its
  // heartbeat and is retried by another worker (activities are idempotent). Not the SDK's
  // `shutdownForceTime`: when it ran out, the SDK (1.24) failed the worker with "Worker still in
  // use" and left the process to exit with an error.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        log.warn({ shutdownForceMs: settings.workerShutdownForceMs }, 'activities were still running when the shutdown force time ran out; exiting without them (their attempts are retried elsewhere)');
        process.exit(0);
      }, settings.workerShutdownForceMs).unref();
    });
  }
  await worker.run();
  await liveness?.close();
  await connection.close();
  log.info('worker stopped');
}

/** A fixed-size slot supplier's size: the operator's DR_WORKER_* setting or the SDK's default. */
const slotsOf = (supplier: { type: string; numSlots?: number }) => (supplier.type === 'fixed-size' ? supplier.numSlots : supplier.type);

main().catch((error: unknown) => {
  console.error(error instanceof OperatorError ? error.message : error);
  process.exit(1);
});
