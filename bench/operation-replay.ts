/**
 * `npm run bench -- operation-replay`: how long a worker that takes a large operation over replays
 * its history, the time it has for that being the operation's workflow task timeout
 * (workflows/task-timeout.ts). A drill and a forced failover of BENCH_REPLAY_VMS VMs (10,000 by
 * default: the workflow tier's fixture runbook grown to that size) run to the end against stub
 * sites (test/harness/stub-sites.ts: the same histories as real sites, in a fraction of the time),
 * then each history is replayed by the workflow code as the product compiles it and as the SDK
 * compiles it by default, interleaved (A B A B A B), each replay on a bundle loaded before it is
 * timed. Writes bench/results/operation-replay.json: per history, both medians with min and max,
 * their ratio, and the product's median against the task timeout the operation has.
 */
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import path from 'node:path';
import { dataConverter } from '../common/payload-compression';
import { WORKFLOW_BUNDLER_OPTIONS } from '../worker/workflow-code';
import { drill } from '../workflows/drill';
import { failover } from '../workflows/failover';
import { operationTaskTimeoutMs } from '../workflows/task-timeout';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import { runbookYaml, vmNames } from '../test/fixtures/workflow-runbooks';
import { newStubDomain, startWorkflowEnv, type WorkflowEnv } from '../test/harness/workflow-env';
import { validateRunbook } from '../runbooks/validate';
import { historyEvents, round2, spread, timed } from './measure';
import { reportBenchResults } from './results-file';

const VMS = Number(process.env.BENCH_REPLAY_VMS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WORKFLOWS = path.join(__dirname, '../workflows/index.ts');

/** The domain's VMs at the stub primary: the fixture runbook's three, and the rest in its app tier. */
const domainVms = (domain: string) => [...vmNames(domain), ...Array.from({ length: VMS - 3 }, (_, i) => `${domain}-app-${i + 3}`)];

/** The fixture runbook over all the domain's VMs, with test networks and a check of every VM of the app tier, as a drill runs it. */
function runbookText(domain: string): string {
  const [db] = vmNames(domain);
  const checked = validateRunbook(`${runbookYaml(domain)}  testNetworkMapping:
    - { source: dr-db, target: test-db }
    - { source: dr-app, target: test-app }
  checks:
    - { name: db-port, type: tcp, vm: ${db}, port: 5432, timeout: 5s }
    - { name: app-health, type: http, group: app, port: 8080, path: /health, timeout: 5s }
`);
  if (!checked.runbook) throw new Error(`the bench's runbook does not validate: ${JSON.stringify(checked.errors)}`);
  const { spec } = checked.runbook;
  const app = spec.powerOn.groups.find((g) => g.name === 'app')!;
  for (const name of domainVms(domain).slice(3)) {
    spec.vms.push({ ...spec.vms[1], name });
    app.vms.push({ ...app.vms[0], name });
  }
  // JSON is YAML: the runbook store keeps it as it is.
  return JSON.stringify(checked.runbook);
}

interface Recorded {
  operation: string;
  workflowId: string;
  runMs: number;
  events: temporal.api.history.v1.IHistoryEvent[];
}

async function record(t: WorkflowEnv, operation: 'drill' | 'failover'): Promise<Recorded> {
  const domain = newStubDomain(t, `replay-${operation}`, domainVms);
  t.runbooks.put(domain, 1, runbookText(domain));
  const workflowId = `${operation}/${domain}/bench`;
  const common = { domain, runbook: { name: domain }, runbookVersion: 1, requestedBy: 'bench', declaredAt: Date.now() };
  const options = { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId };
  const { ms } = await timed(() =>
    operation === 'drill'
      ? t.client.workflow.execute(drill, { ...options, args: [{ ...common, keepForMs: 0 }] })
      : t.client.workflow.execute(failover, { ...options, args: [{ ...common, type: 'forced', forcedConfirmation: domain }] }),
  );
  console.log(`${operation} of ${VMS} VMs on stub sites: ${(ms / 1000).toFixed(1)} s`);
  return { operation, workflowId, runMs: ms, events: await historyEvents(t.client, workflowId) };
}

async function main() {
  const t = await startWorkflowEnv();
  let recorded: Recorded[];
  try {
    recorded = [await record(t, 'drill'), await record(t, 'failover')];
  } finally {
    await t.teardown();
  }
  const logger = new DefaultLogger('WARN');
  const bundles = {
    product: await bundleWorkflowCode({ workflowsPath: WORKFLOWS, logger, ...WORKFLOW_BUNDLER_OPTIONS }),
    sdkDefault: await bundleWorkflowCode({ workflowsPath: WORKFLOWS, logger }),
  };
  const replay = (bundle: keyof typeof bundles, { events, workflowId }: Recorded) => timed(() => Worker.runReplayHistory({ workflowBundle: bundles[bundle], dataConverter }, { events }, workflowId));
  const taskTimeoutMs = operationTaskTimeoutMs(VMS);
  const histories = [];
  for (const history of recorded) {
    await replay('product', history); // loads the bundles' contexts once, outside the timings
    await replay('sdkDefault', history);
    const ms = { sdkDefault: [] as number[], product: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      ms.sdkDefault.push((await replay('sdkDefault', history)).ms);
      ms.product.push((await replay('product', history)).ms);
      console.log(`${history.operation} replay ${run + 1}/${RUNS}: SDK default ${ms.sdkDefault.at(-1)} ms, product ${ms.product.at(-1)} ms`);
    }
    const product = spread(ms.product);
    const sdkDefault = spread(ms.sdkDefault);
    histories.push({
      operation: history.operation,
      events: history.events.length,
      ranOnStubSitesMs: history.runMs,
      replayMs: { product, sdkDefault },
      productOverSdkDefault: round2(product.median / sdkDefault.median),
      productOverTaskTimeout: round2(product.median / taskTimeoutMs),
    });
  }
  reportBenchResults('operation-replay', { vms: VMS, runs: RUNS, taskTimeoutMs, histories });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
