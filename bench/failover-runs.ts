/**
 * Forced failovers of generated bench domains as the product runs them, shared by the benchmarks
 * that time them: two simulated site processes holding the domains, the product's worker processes
 * (an orchestration worker and one per site), each domain protected and replicating before its
 * disaster, then every domain's forced failover started at once and timed until the last ends.
 * Everything of the run stops afterwards; the histories stay on the Temporal server.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DomainKeys } from '../datapath/keys';
import { ObjectStore } from '../datapath/object-store';
import { RunbookStore } from '../runbooks/store';
import { admin, prepareTestSites } from '../test/harness/sites';
import type { TestStack } from '../test/harness/stack';
import { TestWorkers } from '../test/harness/workers';
import { failover } from '../workflows/failover';
import type { FailoverInput } from '../workflows/failover-messages';
import type { OperationReport } from '../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import { protectionWorkflowId } from '../workflows/workflow-ids';
import { benchRunbook, protectUntilReplicating, siteDefinitions, type BenchDomain } from './large-domain';
import { cpuDuring, cpuSnapshot, spread, timed, waitFor, waitForQuietMachine } from './measure';

/** Protections started at once while a run is set up: each runs an initial sync on the same two cores. */
const PROTECTIONS_AT_ONCE = 10;

/**
 * The primary's guest writes while the domains are protected and fail over: 20 a second per 1,000
 * VMs, however many domains hold them (the site spreads them over all its VMs), so that domains
 * failing over together carry the load of one domain as large. Each domain's log needs a segment
 * (a forced failover records where the fenced site's log ends): a domain of 20 VMs gets a write
 * every 2.5 s on average.
 */
function writesPerSecondFor(domains: BenchDomain[]): number {
  const vms = domains.reduce((sum, d) => sum + d.vms, 0);
  return Math.max(2, Math.round((20 * vms) / 1000));
}

export interface FailoverRun {
  /** From the first start to the last end. */
  wallMs: number;
  /** When the first started and the last ended (epoch ms). */
  span: { fromMs: number; toMs: number };
  quietWaitMs: number;
  cpuSeconds: Record<string, number>;
  failovers: Array<{ workflowId: string; report: OperationReport }>;
  setup: Record<string, number>;
  /** The run's folder: the sites' state files are in `<dir>/<site>/`. */
  dir: string;
}

/**
 * `domains` share their primary and recovery sites (the first one's); `label` names the run's
 * folder; `workerEnv` is added to every worker process's environment (its DR_WORKER_* capacity).
 */
export async function forcedFailoversAtOnce(stack: TestStack, domains: BenchDomain[], label: string, workerEnv: NodeJS.ProcessEnv = {}): Promise<FailoverRun> {
  const client = stack.client;
  const store = new ObjectStore(stack.s3Client, stack.s3Settings);
  const { primary: primaryName, recovery: recoveryName } = domains[0];
  const setup: Record<string, number> = {};
  const dir = path.join(stack.dir, label);
  mkdirSync(dir, { recursive: true });
  const sites = await prepareTestSites(dir, siteDefinitions(domains));
  const sitesStarted = await timed(() => Promise.all([sites.start(primaryName), sites.start(recoveryName)]));
  const [primary, recovery] = sitesStarted.value;
  setup.sitesMs = sitesStarted.ms;
  const workers = new TestWorkers(stack, sites.token);
  const protections: string[] = [];
  try {
    setup.workersMs = (await timed(() => Promise.all([workers.orchestration(workerEnv), workers.site(primary, primaryName, workerEnv), workers.site(recovery, recoveryName, workerEnv)]))).ms;
    // As domains are before their disaster: claimed (epoch 1) and replicating, each log with a segment
    // (a forced failover records where the fenced site's log ends).
    setup.protectionMs = (
      await timed(async () => {
        for (let next = 0; next < domains.length; next += PROTECTIONS_AT_ONCE) {
          const batch = domains.slice(next, next + PROTECTIONS_AT_ONCE);
          protections.push(...(await Promise.all(batch.map((d) => protectUntilReplicating(client, store, d, benchRunbook(d).spec.vms.map((vm) => vm.name))))));
        }
        await admin(primary, sites.token, '/admin/workload', { writesPerSecond: writesPerSecondFor(domains), blockSize: 4096, pattern: 'random', seed: `bench-${label}` });
        for (const { domain } of domains) {
          const log = new DomainKeys(store.prefix, domain).logPrefix(1);
          await waitFor(`a segment of ${domain} in the log`, async () => (await store.list(log, { limit: 1 })).keys.length > 0, 180_000);
        }
      })
    ).ms;
    console.log(`${label} setup: sites (${domains.length} domains) ${setup.sitesMs} ms, workers ${setup.workersMs} ms, protection to replicating ${setup.protectionMs} ms`);

    const pids: Record<string, number> = {
      temporal: stack.temporalProcess.pid,
      seaweedfs: stack.s3Process.pid,
      [`site ${primaryName}`]: primary.process.pid,
      [`site ${recoveryName}`]: recovery.process.pid,
      ...Object.fromEntries([...workers.running].map(([name, child]) => [`worker ${name}`, child.pid])),
    };
    // Stored and named, as the API starts operations: a runbook of 10,000 VMs is over Temporal's 2 MB per payload.
    const runbooks = new RunbookStore(stack.s3Client, stack.s3Settings);
    const inputs = await Promise.all(
      domains.map(async (d): Promise<FailoverInput> => {
        const runbook = benchRunbook(d);
        const stored = await runbooks.put(runbook.metadata.name, JSON.stringify(runbook), 'bench');
        return { domain: d.domain, type: 'forced', runbook: { name: runbook.metadata.name }, runbookVersion: stored.version, requestedBy: 'bench', declaredAt: Date.now(), forcedConfirmation: d.domain };
      }),
    );
    const quietWaitMs = await waitForQuietMachine();
    const before = cpuSnapshot(pids);
    const fromMs = Date.now();
    const result = await timed(() =>
      Promise.all(
        inputs.map(async (input) => {
          const workflowId = `failover/${input.domain}/${new Date().toISOString()}`;
          const report = await client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [{ ...input, declaredAt: Date.now() }] });
          return { workflowId, report };
        }),
      ),
    );
    const cpuSeconds = cpuDuring(before, cpuSnapshot(pids));
    const failed = result.value.filter((f) => f.report.outcome !== 'succeeded');
    if (failed.length > 0) throw new Error(`${failed.length} of ${domains.length} failovers did not succeed, first ${failed[0].workflowId}: ${failed[0].report.outcome} ${failed[0].report.failure ?? ''}`);
    for (const { report } of result.value) protections.push(protectionWorkflowId(report.domain, recoveryName, report.epoch!));
    return { wallMs: result.ms, span: { fromMs, toMs: fromMs + result.ms }, quietWaitMs, cpuSeconds, failovers: result.value, setup, dir };
  } finally {
    for (const id of protections) await client.workflow.getHandle(id).terminate('benchmark done').catch(() => undefined);
    await workers.stopAll();
    await Promise.all([primary.process.stop(), recovery.process.stop()]);
  }
}

/** Each process's CPU seconds over the runs (median, min, max): where the extra work goes. */
export function cpuSecondsByProcess(runs: FailoverRun[]): Record<string, ReturnType<typeof spread>> {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.cpuSeconds)))];
  return Object.fromEntries(names.map((name) => [name, spread(runs.map((r) => r.cpuSeconds[name] ?? 0))]));
}
