/**
 * Orchestration overhead of a failover (issue 6): a FORCED failover of a generated domain of
 * 1,000 VMs (one 1 MiB disk each; boot, shutdown and injected latency zero) against its limit,
 * the same DAG of activities that do nothing, on the same Temporal server in the same run:
 *
 *   ratio = median failover wall time / median no-op DAG wall time
 *
 * over BENCH_RUNS (default 3) of each, interleaved (no-op, failover, no-op, failover, ...), so that
 * a change in the shared machine's load falls on both; each figure with its min and max.
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
 * results show the span, queue wait (scheduled -> started) and run time (started -> closed), the
 * failover's step durations, and the CPU seconds of every process during each run, including other
 * processes on the machine (it is shared): that is where the time goes. Each failover recovers a
 * domain of its own on sites of their own. `BENCH_FAILOVER_VMS=<n>` changes the domain size.
 * Timings are never asserted.
 */
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Runbook } from '../runbooks/schema';
import { validateRunbook } from '../runbooks/validate';
import { diskIdOf } from '../sites/config';
import { startChild, TYPESCRIPT_LOADER, waitUntilReady, type ChildHandle } from '../common/child-process';
import { startTestStack, type TestStack } from '../test/harness/stack';
import type { OperationReport } from '../workflows/operation-messages';
import { forcedFailoversAtOnce } from './failover-runs';
import { DISK_MIB, benchRunbook, type BenchDomain } from './large-domain';
import { countHistory, cpuDuring, cpuSnapshot, median, ourCpu, round2, serversAndSitesCpu, spread, stepMedians, timed, waitForQuietMachine, type HistoryCounts } from './measure';
import { noopFailover, noopProtect, type NoopFailoverInput } from './workflows/noop-failover';
import { NOOP_ORCHESTRATION_TASK_QUEUE } from './workflows/noop-worker';
import { reportBenchResults } from './results-file';

const VMS = Number(process.env.BENCH_FAILOVER_VMS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PRIMARY = 'site-a';
const RECOVERY = 'site-b';
const NOOP_RECOVERY = 'bench-noop-b';
/** Run `run`'s domain: protected and failed over once, so each run starts from a domain before its disaster. */
const benchDomain = (run: number): BenchDomain => ({ domain: `large-${run}`, primary: PRIMARY, recovery: RECOVERY, vms: VMS });

// --- the run ------------------------------------------------------------------------------------

function startNoopWorker(stack: TestStack, args: string[], run: number): Promise<ChildHandle> {
  const child = startChild({
    name: `noop worker ${args.join(' ')}`,
    command: process.execPath,
    args: [...TYPESCRIPT_LOADER, path.join(__dirname, 'workflows', 'noop-worker.ts'), ...args],
    logFile: path.join(stack.dir, `noop-worker${args.join('-')}-${run}.log`),
    env: { ...process.env, TEMPORAL_ADDRESS: stack.temporalSettings.address },
  });
  return waitUntilReady(child, () => (readFileSync(child.logFile, 'utf8').includes('worker running') ? Promise.resolve() : Promise.reject(new Error('starting'))), 120_000).then(() => child);
}

/** CPU seconds of the Temporal server and the orchestration worker (the product's or the no-op DAG's). */
const orchestrationCpu = (cpuSeconds: Record<string, number>): number =>
  round2(Object.entries(cpuSeconds).reduce((sum, [process, seconds]) => (process === 'temporal' || process.endsWith('worker orchestration') ? sum + seconds : sum), 0));

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
      domain: runbook.spec.protectedDomain,
      recoverySite: NOOP_RECOVERY,
      vms: runbook.spec.vms.map(({ name }) => ({ name, diskIds: [diskIdOf(name, 0)] })),
      groups: runbook.spec.powerOn.groups.map((g) => ({ name: g.name, dependsOn: g.dependsOn, vms: g.vms.map((v) => v.name), maxParallel: Math.min(g.maxParallel, maxPlan) })),
      primaryProtectionId: primaryProtection,
      runbook: { name: runbook.metadata.name, chars: JSON.stringify(validateRunbook(JSON.stringify(runbook)).runbook).length },
    };
    const workflowId = `bench-noop/${run}/failover/${runbook.spec.protectedDomain}/${new Date().toISOString()}`;
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

/** The forced failover of run `run`'s domain, on sites and workers of its own (bench/failover-runs.ts). */
async function runFailover(stack: TestStack, run: number): Promise<Measured & { report: OperationReport; recoverySiteStateBytes: number; setup: Record<string, number> }> {
  const measured = await forcedFailoversAtOnce(stack, [benchDomain(run)], `large-${run}`);
  const [{ workflowId, report }] = measured.failovers;
  console.log(`forced failover run ${run}: ${measured.wallMs} ms (other processes used ${measured.cpuSeconds['other processes']} CPU s meanwhile)`);
  const counts = await countHistory(stack.client, workflowId);
  // The simulated site rewrites this whole file on every change: its size is the per-call cost.
  const recoverySiteStateBytes = statSync(path.join(measured.dir, RECOVERY, 'state.json')).size;
  return { workflowId, wallMs: measured.wallMs, quietWaitMs: measured.quietWaitMs, cpuSeconds: measured.cpuSeconds, counts, report, recoverySiteStateBytes, setup: measured.setup };
}

async function main(): Promise<void> {
  const started = Date.now();
  const stack = await startTestStack();
  const stackMs = Date.now() - started;
  try {
    // The no-op DAG's shape: the runbook of every run's domain but its name.
    const shape = benchRunbook(benchDomain(0));
    const noops: Measured[] = [];
    const failovers: Array<Awaited<ReturnType<typeof runFailover>>> = [];
    for (let run = 1; run <= RUNS; run++) {
      const noop = await runNoopDag(stack, shape, run);
      const real = await runFailover(stack, run);
      // Checked at once: a DAG that is not the failover's makes every later run worthless.
      const sameActivities = JSON.stringify(Object.entries(real.counts.activitiesByType).sort()) === JSON.stringify(Object.entries(noop.counts.activitiesByType).sort());
      if (!sameActivities || real.counts.childWorkflows !== noop.counts.childWorkflows) {
        throw new Error(
          `the no-op DAG is not the failover's: activities ${JSON.stringify(noop.counts.activitiesByType)} vs ${JSON.stringify(real.counts.activitiesByType)}, children ${noop.counts.childWorkflows} vs ${real.counts.childWorkflows}`,
        );
      }
      noops.push(noop);
      failovers.push(real);
    }

    const real = failovers[0];

    const failoverMs = spread(failovers.map((f) => f.wallMs));
    const noopMs = spread(noops.map((n) => n.wallMs));
    const ratio = round2(failoverMs.median / noopMs.median);
    const cpu = { failover: spread(failovers.map((f) => ourCpu(f.cpuSeconds))), noop: spread(noops.map((n) => ourCpu(n.cpuSeconds))) };
    const orchestration = { failover: spread(failovers.map((f) => orchestrationCpu(f.cpuSeconds))), noop: spread(noops.map((n) => orchestrationCpu(n.cpuSeconds))) };
    const steps = stepMedians(failovers.map((f) => ({ steps: f.report.steps })));
    const maxPlan = shape.spec.powerOn.maxParallel;
    const results = {
      setup: {
        vms: VMS,
        runs: RUNS,
        disksPerVm: 1,
        diskMiB: DISK_MIB,
        groups: shape.spec.powerOn.groups.map((g) => ({ name: g.name, vms: g.vms.length, maxParallel: Math.min(g.maxParallel, maxPlan), dependsOn: g.dependsOn })),
        failover: 'forced, latest consistent point; runbooks/examples/large-domain.ts without heartbeat waits, delays, approvals, webhooks; bootMs 0, shutdownMs 0, injected latency 0; each run a domain of its own, a 20 writes/s workload at the primary from protection on (a forced failover records where the fenced log ends: it needs a segment)',
        workers:
          'product worker processes (worker/main.ts: orchestration + one per site); the no-op DAG (bench/workflows) in the same topology (orchestration + recovery-site process, default worker options), never beside the real ones',
        temporal: 'test/harness/stack.ts dev server (SQLite file), the same server for all runs',
        order: 'interleaved: no-op, failover, no-op, failover, ...',
        cores: os.cpus().length,
        stackMs,
        setupMsPerFailover: failovers.map((f) => f.setup),
      },
      failoverWallMs: failoverMs,
      noopDagWallMs: noopMs,
      overheadRatio: ratio,
      overheadRatioPerPair: spread(failovers.map((f, i) => round2(f.wallMs / noops[i].wallMs))),
      // Less sensitive to other sessions on the machine than wall time: the CPU our processes spent.
      cpuSeconds: cpu,
      cpuRatio: round2(cpu.failover.median / cpu.noop.median),
      // The orchestration's share alone (the Temporal server and the orchestration worker): the rest
      // of the failover's CPU is the sites' work, the simulated managers and their workers' calls.
      orchestrationCpuSeconds: orchestration,
      orchestrationCpuRatio: round2(orchestration.failover.median / orchestration.noop.median),
      // The CPU ratio if the product's workers cost no more than the no-op DAG's: the no-op DAG's CPU
      // plus what the simulated sites and SeaweedFS spent on the failover beyond the no-op DAG (which
      // calls no site). On cores the runs fill, the wall ratio cannot go below it on this machine.
      cpuRatioWithoutProductOverhead: round2(
        (cpu.noop.median + median(failovers.map((f) => serversAndSitesCpu(f.cpuSeconds, { temporal: false }))) - median(noops.map((n) => serversAndSitesCpu(n.cpuSeconds, { temporal: false })))) /
          cpu.noop.median,
      ),
      activities: { failover: real.counts.activitiesScheduled, noop: noops[0].counts.activitiesScheduled, byType: real.counts.activitiesByType },
      childWorkflows: { failover: real.counts.childWorkflowsByType, noop: noops[0].counts.childWorkflowsByType },
      historyEvents: { failover: spread(failovers.map((f) => f.counts.events)), noop: spread(noops.map((n) => n.counts.events)) },
      failoverSteps: steps,
      recoverySiteStateFileBytes: real.recoverySiteStateBytes,
      timingsByActivityType: { failovers: failovers.map((f) => f.counts.timings), noops: noops.map((n) => n.counts.timings) },
      cpuSecondsDuringRun: { failovers: failovers.map((f) => f.cpuSeconds), noops: noops.map((n) => n.cpuSeconds) },
      waitedForQuietMachineMs: { failovers: failovers.map((f) => f.quietWaitMs), noops: noops.map((n) => n.quietWaitMs) },
    };
    // Another size has a file of its own: the 1,000-VM figures are the issue's reference.
    reportBenchResults(VMS === 1000 ? 'failover-overhead' : `failover-overhead-${VMS}vms`, results);
    console.log(
      `\n${VMS} VMs on ${os.cpus().length} cores, ${RUNS} interleaved runs of each: forced failover ${failoverMs.median} ms (min ${failoverMs.min}, max ${failoverMs.max}), ` +
        `no-op DAG ${noopMs.median} ms (min ${noopMs.min}, max ${noopMs.max}); ratio of medians ${ratio} (CPU ratio ${results.cpuRatio}); ` +
        `${real.counts.activitiesScheduled} activities and ${real.counts.childWorkflows} child workflows in each; ` +
        `slowest steps (median): ${steps
          .slice(0, 3)
          .map((s) => `${s.name} ${s.medianMs} ms`)
          .join(', ')}`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
