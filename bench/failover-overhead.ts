/**
 * Orchestration overhead of a failover (issue 6): a FORCED failover of a generated domain of
 * 1,000 VMs (one 1 MiB disk each; boot, shutdown and injected latency zero) against its limit,
 * the same DAG of activities that do nothing, on the same Temporal server in the same run:
 *
 *   ratio = failover wall time / no-op DAG wall time (mean of a run before and one after it)
 *
 * The failover runs as the product runs it: real Temporal dev server and SeaweedFS
 * (test/harness/stack.ts), two simulated site processes, the product's worker processes
 * (test/harness/workers.ts: an orchestration worker and one per site), protection started
 * (workflows/protect.ts) and replicating before the disaster is declared, and the runbook of
 * runbooks/examples/large-domain.ts (four dependent tiers) without heartbeat waits, delays,
 * approvals or webhooks. The no-op DAG (bench/workflows/noop-failover.ts) runs in the same
 * process topology (an orchestration worker process and a site worker process with the
 * product's default worker options), never beside the real workers.
 *
 * Both workflows' histories (and their power-on groups') are read back: activity counts per type
 * must match, else the limit would not be the same DAG and the run fails (the no-op workflow
 * mirrors workflows/failover.ts by hand; a change there shows up here). Per activity type the
 * results show the span, queue wait (scheduled -> started) and run time (started -> closed), and
 * the CPU seconds of every process during each run, including other processes on the machine
 * (it is shared): that is where the time goes. `BENCH_FAILOVER_VMS=<n>` changes the domain size.
 * Timings are never asserted.
 */
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ObjectStore } from '../datapath/object-store';
import type { Runbook } from '../runbooks/schema';
import { diskIdOf } from '../sites/config';
import { startChild, waitUntilReady, type ChildHandle } from '../common/child-process';
import { prepareTestSites } from '../test/harness/sites';
import { startTestStack, type TestStack } from '../test/harness/stack';
import { TestWorkers } from '../test/harness/workers';
import { failover } from '../workflows/failover';
import type { FailoverInput } from '../workflows/failover-messages';
import type { OperationReport } from '../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import { protectionWorkflowId } from '../workflows/workflow-ids';
import { DISK_MIB, benchRunbook, protectUntilReplicating, siteDefinitions, type BenchDomain } from './large-domain';
import { countHistory, cpuDuring, cpuSnapshot, ourCpu, round2, timed, waitForQuietMachine, type HistoryCounts } from './measure';
import { noopFailover, noopProtect, type NoopFailoverInput } from './workflows/noop-failover';
import { NOOP_ORCHESTRATION_TASK_QUEUE } from './workflows/noop-worker';
import { writeBenchResults } from './results-file';

const VMS = Number(process.env.BENCH_FAILOVER_VMS ?? 1000);
const DOMAIN = 'large';
const PRIMARY = 'site-a';
const RECOVERY = 'site-b';
const NOOP_RECOVERY = 'bench-noop-b';
const BENCH_DOMAIN: BenchDomain = { domain: DOMAIN, primary: PRIMARY, recovery: RECOVERY, vms: VMS };

// --- the run ------------------------------------------------------------------------------------

function startNoopWorker(stack: TestStack, args: string[], run: number): Promise<ChildHandle> {
  const child = startChild({
    name: `noop worker ${args.join(' ')}`,
    command: process.execPath,
    args: ['--import', 'tsx', path.join(__dirname, 'workflows', 'noop-worker.ts'), ...args],
    logFile: path.join(stack.dir, `noop-worker${args.join('-')}-${run}.log`),
    env: { ...process.env, TEMPORAL_ADDRESS: stack.temporalSettings.address },
  });
  return waitUntilReady(child, () => (readFileSync(child.logFile, 'utf8').includes('worker running') ? Promise.resolve() : Promise.reject(new Error('starting'))), 120_000).then(() => child);
}

interface Measured {
  workflowId: string;
  wallMs: number;
  quietWaitMs: number;
  cpuSeconds: Record<string, number>;
  counts: HistoryCounts;
}

/** One run of the no-op DAG in its own worker processes, which stop afterwards. */
async function runNoopDag(stack: TestStack, runbook: Runbook, run: number): Promise<Measured> {
  const client = stack.client;
  const workers = await Promise.all([startNoopWorker(stack, ['--orchestration'], run), startNoopWorker(stack, ['--site', NOOP_RECOVERY], run)]);
  try {
    const primaryProtection = `bench-noop/${run}/protect/${PRIMARY}`;
    await client.workflow.start(noopProtect, { taskQueue: NOOP_ORCHESTRATION_TASK_QUEUE, workflowId: primaryProtection });
    const maxPlan = runbook.spec.powerOn.maxParallel;
    const input: NoopFailoverInput = {
      domain: DOMAIN,
      recoverySite: NOOP_RECOVERY,
      vms: runbook.spec.vms.map(({ name }) => ({ name, diskIds: [diskIdOf(name, 0)] })),
      groups: runbook.spec.powerOn.groups.map((g) => ({ name: g.name, dependsOn: g.dependsOn, vms: g.vms.map((v) => v.name), maxParallel: Math.min(g.maxParallel, maxPlan) })),
      primaryProtectionId: primaryProtection,
    };
    const workflowId = `bench-noop/${run}/failover/${DOMAIN}/${new Date().toISOString()}`;
    const pids = { temporal: stack.temporalProcess.pid, seaweedfs: stack.s3Process.pid, 'noop worker orchestration': workers[0].pid, [`noop worker ${NOOP_RECOVERY}`]: workers[1].pid };
    const quietWaitMs = await waitForQuietMachine();
    const before = cpuSnapshot(pids);
    const result = await timed(() => client.workflow.execute(noopFailover, { taskQueue: NOOP_ORCHESTRATION_TASK_QUEUE, workflowId, args: [input] }));
    const cpuSeconds = cpuDuring(before, cpuSnapshot(pids));
    if (result.value.poweredOn !== VMS) throw new Error(`the no-op DAG powered on ${result.value.poweredOn} of ${VMS} VMs`);
    console.log(`no-op DAG run ${run}: ${result.ms} ms (other processes used ${cpuSeconds['other processes']} CPU s meanwhile)`);
    const counts = await countHistory(client, workflowId);
    await client.workflow.getHandle(`${workflowId}/protect/epoch-2`).terminate('benchmark done').catch(() => undefined);
    return { workflowId, wallMs: result.ms, quietWaitMs, cpuSeconds, counts };
  } finally {
    for (const worker of workers) await worker.stop();
  }
}

/** Sites, product workers, protection, then the forced failover; everything of it stops afterwards. */
async function runFailover(stack: TestStack, runbook: Runbook, setup: Record<string, number>): Promise<Measured & { report: OperationReport; recoverySiteStateBytes: number }> {
  const client = stack.client;
  const store = new ObjectStore(stack.s3Client, stack.s3Settings);
  const vms = runbook.spec.vms.map((vm) => vm.name);
  const sites = await prepareTestSites(stack.dir, siteDefinitions(BENCH_DOMAIN));
  const sitesStarted = await timed(() => Promise.all([sites.start(PRIMARY), sites.start(RECOVERY)]));
  const [primary, recovery] = sitesStarted.value;
  setup.sitesMs = sitesStarted.ms;
  const workers = new TestWorkers(stack, sites.token);
  try {
    setup.workersMs = (await timed(() => Promise.all([workers.orchestration(), workers.site(primary, PRIMARY), workers.site(recovery, RECOVERY)]))).ms;

    // Protection at the primary, as a domain is before its disaster: claimed (epoch 1) and replicating.
    let protectionId = '';
    setup.protectionMs = (
      await timed(async () => {
        protectionId = await protectUntilReplicating(client, store, BENCH_DOMAIN, vms);
      })
    ).ms;
    console.log(`setup: sites (${VMS} VMs) ${setup.sitesMs} ms, workers ${setup.workersMs} ms, protection to replicating ${setup.protectionMs} ms`);

    const pids: Record<string, number> = {
      temporal: stack.temporalProcess.pid,
      seaweedfs: stack.s3Process.pid,
      [`site ${PRIMARY}`]: primary.process.pid,
      [`site ${RECOVERY}`]: recovery.process.pid,
      ...Object.fromEntries([...workers.running].map(([name, child]) => [`worker ${name}`, child.pid])),
    };
    const workflowId = `failover/${DOMAIN}/${new Date().toISOString()}`;
    const quietWaitMs = await waitForQuietMachine();
    const input: FailoverInput = { domain: DOMAIN, type: 'forced', runbook, runbookVersion: 1, requestedBy: 'bench', declaredAt: Date.now(), forcedConfirmation: DOMAIN };
    const before = cpuSnapshot(pids);
    const result = await timed(() => client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [input] }));
    const cpuSeconds = cpuDuring(before, cpuSnapshot(pids));
    const report = result.value;
    if (report.outcome !== 'succeeded') throw new Error(`the failover ended ${report.outcome}: ${report.failure ?? ''}`);
    console.log(`forced failover: ${result.ms} ms (other processes used ${cpuSeconds['other processes']} CPU s meanwhile)`);
    const counts = await countHistory(client, workflowId);
    // The simulated site rewrites this whole file on every change: its size is the per-call cost.
    const recoverySiteStateBytes = statSync(path.join(stack.dir, RECOVERY, 'state.json')).size;
    await client.workflow.getHandle(protectionWorkflowId(DOMAIN, RECOVERY, report.epoch!)).terminate('benchmark done').catch(() => undefined);
    await client.workflow.getHandle(protectionId).terminate('benchmark done').catch(() => undefined);
    return { workflowId, wallMs: result.ms, quietWaitMs, cpuSeconds, counts, report, recoverySiteStateBytes };
  } finally {
    await workers.stopAll();
    await Promise.all([primary.process.stop(), recovery.process.stop()]);
  }
}

async function main(): Promise<void> {
  const setup: Record<string, number> = {};
  const started = Date.now();
  const stack = await startTestStack();
  setup.stackMs = Date.now() - started;
  try {
    const runbook = benchRunbook(BENCH_DOMAIN);
    // The limit is measured before and after the failover (the machine is shared: two samples).
    const noopBefore = await runNoopDag(stack, runbook, 1);
    const real = await runFailover(stack, runbook, setup);
    const noopAfter = await runNoopDag(stack, runbook, 2);

    for (const noop of [noopBefore, noopAfter]) {
      const sameActivities = JSON.stringify(Object.entries(real.counts.activitiesByType).sort()) === JSON.stringify(Object.entries(noop.counts.activitiesByType).sort());
      if (!sameActivities || real.counts.childWorkflows !== noop.counts.childWorkflows) {
        throw new Error(
          `the no-op DAG is not the failover's: activities ${JSON.stringify(noop.counts.activitiesByType)} vs ${JSON.stringify(real.counts.activitiesByType)}, children ${noop.counts.childWorkflows} vs ${real.counts.childWorkflows}`,
        );
      }
    }

    const noopMeanMs = Math.round((noopBefore.wallMs + noopAfter.wallMs) / 2);
    const steps = real.report.steps.map((s) => ({ name: s.name, durationMs: s.durationMs }));
    const slowest = [...steps].sort((a, b) => (b.durationMs ?? 0) - (a.durationMs ?? 0)).slice(0, 3);
    const ratio = round2(real.wallMs / noopMeanMs);
    const maxPlan = runbook.spec.powerOn.maxParallel;
    const results = {
      setup: {
        vms: VMS,
        disksPerVm: 1,
        diskMiB: DISK_MIB,
        groups: runbook.spec.powerOn.groups.map((g) => ({ name: g.name, vms: g.vms.length, maxParallel: Math.min(g.maxParallel, maxPlan), dependsOn: g.dependsOn })),
        failover: 'forced, latest consistent point; runbooks/examples/large-domain.ts without heartbeat waits, delays, approvals, webhooks; bootMs 0, shutdownMs 0, injected latency 0',
        workers:
          'product worker processes (worker/main.ts: orchestration + one per site); the no-op DAG (bench/workflows) in the same topology (orchestration + recovery-site process, default worker options), never beside the real ones',
        temporal: 'test/harness/stack.ts dev server (SQLite file), the same server for all runs',
        cores: os.cpus().length,
        setupMs: setup,
      },
      failoverWallMs: real.wallMs,
      noopDagWallMs: { before: noopBefore.wallMs, after: noopAfter.wallMs, mean: noopMeanMs },
      overheadRatio: ratio,
      overheadRatioAgainstFasterNoop: round2(real.wallMs / Math.min(noopBefore.wallMs, noopAfter.wallMs)),
      // Less sensitive to other sessions on the machine than wall time: the CPU our processes spent.
      cpuSeconds: { failover: ourCpu(real.cpuSeconds), noopMean: round2((ourCpu(noopBefore.cpuSeconds) + ourCpu(noopAfter.cpuSeconds)) / 2) },
      cpuRatio: round2(ourCpu(real.cpuSeconds) / ((ourCpu(noopBefore.cpuSeconds) + ourCpu(noopAfter.cpuSeconds)) / 2)),
      activities: {
        failover: real.counts.activitiesScheduled,
        noop: noopBefore.counts.activitiesScheduled,
        byType: real.counts.activitiesByType,
      },
      childWorkflows: { failover: real.counts.childWorkflowsByType, noop: noopBefore.counts.childWorkflowsByType },
      historyEvents: { failover: real.counts.events, noopBefore: noopBefore.counts.events, noopAfter: noopAfter.counts.events },
      failoverSteps: steps,
      recoverySiteStateFileBytes: real.recoverySiteStateBytes,
      timingsByActivityType: { failover: real.counts.timings, noopBefore: noopBefore.counts.timings, noopAfter: noopAfter.counts.timings },
      cpuSecondsDuringRun: { failover: real.cpuSeconds, noopBefore: noopBefore.cpuSeconds, noopAfter: noopAfter.cpuSeconds },
      waitedForQuietMachineMs: { failover: real.quietWaitMs, noopBefore: noopBefore.quietWaitMs, noopAfter: noopAfter.quietWaitMs },
    };
    console.log(JSON.stringify(results, null, 2));
    console.log(`written to ${writeBenchResults('failover-overhead', results)}`);
    console.log(
      `\n${VMS} VMs on ${os.cpus().length} cores: forced failover ${(real.wallMs / 1000).toFixed(1)} s, no-op DAG ${(noopBefore.wallMs / 1000).toFixed(1)} s / ${(noopAfter.wallMs / 1000).toFixed(1)} s ` +
        `(before / after), ratio ${ratio} (CPU ratio ${round2(ourCpu(real.cpuSeconds) / ((ourCpu(noopBefore.cpuSeconds) + ourCpu(noopAfter.cpuSeconds)) / 2))}); ${real.counts.activitiesScheduled} activities and ${real.counts.childWorkflows} child workflows in each; ` +
        `slowest steps: ${slowest.map((s) => `${s.name} ${s.durationMs} ms`).join(', ')}`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
