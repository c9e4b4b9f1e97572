/**
 * Worker processes of the no-op DAG (bench/failover-overhead.ts), in the product's topology
 * (worker/main.ts): `--orchestration` runs bench/workflows/noop-failover.ts with the same worker
 * options as the product's orchestration worker; `--site <name>` serves that site's task queue
 * with activities that do nothing, with the product site worker's (default) options.
 * Needs TEMPORAL_ADDRESS; prints "worker running" once polling.
 */
import { parseArgs } from 'node:util';
import { NativeConnection, Worker } from '@temporalio/worker';
import { stopWhenOrphaned } from '../../common/child-process';
import { inBatches } from '../../activities/vm-batches';
import { RUNBOOK_PAGE_CHARS } from '../../activities/runbook-pages';
import type { NoopActivities } from './noop-failover';
import { dataConverter } from '../../common/payload-compression';
import { WORKFLOW_BUNDLER_OPTIONS } from '../../worker/workflow-code';

export const NOOP_ORCHESTRATION_TASK_QUEUE = 'bench-noop-orchestration';

/** The orchestration worker's one activity in a failover: a page of the runbook, here of filler as long as the real one. */
const readRunbookPage: NoopActivities['readRunbookPage'] = ({ page, chars }) =>
  Promise.resolve({ text: 'x'.repeat(Math.max(0, Math.min(RUNBOOK_PAGE_CHARS, chars - page * RUNBOOK_PAGE_CHARS))), pages: Math.ceil(chars / RUNBOOK_PAGE_CHARS) });

const noopActivities: Omit<NoopActivities, 'readRunbookPage'> = {
  describeDomain: () => Promise.resolve({ vms: [] }),
  claimDomain: () => Promise.resolve({ won: true, epoch: 2 }),
  recordDeparture: () => Promise.resolve(),
  resolveRecoveryPoint: () => Promise.resolve({ ok: true }),
  readRecoveryPointVms: () => Promise.resolve(),
  deployRocva: () => Promise.resolve(),
  findExisting: () => Promise.resolve(),
  // The product's batch activities (per-VM heartbeats, resumption) over per-VM calls that do nothing.
  prepareTargetDisksOfBatch: inBatches(() => Promise.resolve(), (input) => input.vm),
  rehydrateDomain: () => Promise.resolve({ bytesWritten: 0 }),
  removeRepresentationVmsOfBatch: inBatches(() => Promise.resolve(), (input) => input.vm),
  registerRecoveredVmsOfBatch: inBatches(() => Promise.resolve(), (input) => input.vm),
  protectRecoveredDisks: () => Promise.resolve({ cursor: 0 }),
  recordArrival: () => Promise.resolve(),
  powerOnVm: () => Promise.resolve(),
  destroyRocva: () => Promise.resolve(),
  setDomainStatus: () => Promise.resolve(),
};

async function main(): Promise<void> {
  stopWhenOrphaned();
  const { values } = parseArgs({ options: { orchestration: { type: 'boolean' }, site: { type: 'string' } } });
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address || Boolean(values.orchestration) === Boolean(values.site)) throw new Error('usage: TEMPORAL_ADDRESS=host:port noop-worker.ts --orchestration | --site <name>');
  const connection = await NativeConnection.connect({ address });
  const worker = values.site
    ? await Worker.create({
        connection,
        namespace: 'default',
        taskQueue: `site.${values.site}`,
        activities: noopActivities,
        dataConverter,
        // Experiments only (the benchmark keeps the product's defaults): BENCH_NOOP_ACTIVITY_POLLERS=<n>.
        ...(process.env.BENCH_NOOP_ACTIVITY_POLLERS ? { activityTaskPollerBehavior: { type: 'simple-maximum' as const, maximum: Number(process.env.BENCH_NOOP_ACTIVITY_POLLERS) } } : {}),
      })
    : await Worker.create({
        connection,
        namespace: 'default',
        taskQueue: NOOP_ORCHESTRATION_TASK_QUEUE,
        workflowsPath: require.resolve('./noop-failover'),
        // Compiled as the product's workflows are: the DAG it is compared with pays no other price.
        bundlerOptions: WORKFLOW_BUNDLER_OPTIONS,
        activities: { readRunbookPage },
        dataConverter,
      });
  console.log(`worker running on ${worker.options.taskQueue}`);
  await worker.run();
  await connection.close();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
