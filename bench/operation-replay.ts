/**
 * `npm run bench -- operation-replay`: how long a worker that takes a large operation over replays
 * its history, the time it has for that being the operation's workflow task timeout
 * (workflows/task-timeout.ts). A drill and a forced failover of BENCH_REPLAY_VMS VMs (10,000 by
 * default) run to the end against stub sites (test/harness/stub-sites.ts: the same histories as
 * real sites, in a fraction of the time), then each history is replayed by the workflow code as
 * the product compiles it and as the SDK compiles it by default, interleaved (A B A B A B), each
 * replay on a bundle loaded before it is timed. Writes bench/results/operation-replay.json: per
 * history, both medians with min and max, their ratio, and the product's median against the task
 * timeout the operation has.
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
import { PRIMARY, RECOVERY, newStubDomain, startWorkflowEnv, type WorkflowEnv } from '../test/harness/workflow-env';
import { historyEvents, round2, spread, timed } from './measure';
import { reportBenchResults } from './results-file';

const VMS = Number(process.env.BENCH_REPLAY_VMS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WORKFLOWS = path.join(__dirname, '../workflows/index.ts');

/** The domain's VMs at the stub primary: one database VM, the rest in the app tier. */
const domainVms = (domain: string) => [`${domain}-db-1`, ...Array.from({ length: VMS - 1 }, (_, i) => `${domain}-app-${i + 1}`)];

/** A two-tier runbook of the domain's VMs, with test networks and a check of each VM of the app tier, as a drill runs it. */
function runbookYaml(domain: string): string {
  const [db, ...apps] = domainVms(domain);
  return `apiVersion: dr.example.io/v1alpha1
kind: Runbook
metadata:
  name: ${domain}
spec:
  protectedDomain: ${domain}
  sites: { primary: ${PRIMARY}, recovery: ${RECOVERY} }
  placement: { datacenter: dc-b, cluster: cluster-b1, datastore: ds-b }
  networkMapping:
    - { source: prod-db, target: dr-db }
    - { source: prod-app, target: dr-app }
  testNetworkMapping:
    - { source: dr-db, target: test-db }
    - { source: dr-app, target: test-app }
  checks:
    - { name: db-port, type: tcp, vm: ${db}, port: 5432, timeout: 5s }
    - { name: app-health, type: http, group: app, port: 8080, path: /health, timeout: 5s }
  vms:
${[db, ...apps].map((vm) => `    - name: ${vm}`).join('\n')}
  rocva:
    networks: { externalReplication: dr-replication, internal: dr-rocva-internal, management: dr-management }
  primaryShutdown: { timeout: 10s, onTimeout: powerOff }
  protection: { restorePointInterval: 1h, protectionWindow: 1d }
  powerOn:
    groups:
      - name: database
        vms:
          - { name: ${db} }
      - name: app
        dependsOn: [database]
        vms:
${apps.map((vm) => `          - { name: ${vm} }`).join('\n')}
`;
}

interface Recorded {
  operation: string;
  workflowId: string;
  runMs: number;
  events: temporal.api.history.v1.IHistoryEvent[];
}

async function record(t: WorkflowEnv, operation: 'drill' | 'failover'): Promise<Recorded> {
  const domain = newStubDomain(t, `replay-${operation}`, domainVms);
  t.runbooks.put(domain, 1, runbookYaml(domain));
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
