/**
 * Concurrent domains (issue 15): BENCH_DOMAINS (50) domains of BENCH_VMS_EACH (20) VMs failing
 * over at once, against its limit measured in the same run: one domain of the same total size
 * (1,000 VMs) failing over alone, on the same servers and the same kind of sites and workers:
 *
 *   ratio = median time until the last of the concurrent failovers ends / median time of the lone one
 *
 * over BENCH_RUNS (default 3) of each, interleaved (alone, together, alone, together, ...), each
 * figure with its min and max. The goal is 1.5x at most, every failover succeeding. All runs are
 * forced failovers of the large-domain runbook (bench/large-domain.ts) as bench/failover-runs.ts
 * runs them. Each pair also reports, by workflow type, the history events recorded during each
 * run (`temporalWorkByWorkflowType`, protections beside the failovers): what the Temporal
 * server's CPU went to. Timings are never asserted.
 */
import os from 'node:os';
import { startTestStack } from '../test/harness/stack';
import { cpuSecondsByProcess, forcedFailoversAtOnce, type FailoverRun } from './failover-runs';
import { smallDomains, type BenchDomain } from './large-domain';
import { median, ourCpu, round2, serversAndSitesCpu, serverWorkDuring, spread, stepMedians, type ServerWork } from './measure';
import { reportBenchResults } from './results-file';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 50);
const VMS_EACH = Number(process.env.BENCH_VMS_EACH ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PRIMARY = 'site-a';
const RECOVERY = 'site-b';

const lone = (run: number): BenchDomain[] => [{ domain: `alone-${run}`, primary: PRIMARY, recovery: RECOVERY, vms: DOMAINS * VMS_EACH }];
const together = (run: number) => smallDomains(`together-${run}`, DOMAINS, VMS_EACH);

/** Each failover's own time, from its declaration to its end as its report gives it: how evenly the workers served them. */
const failoverSeconds = (run: FailoverRun) => spread(run.failovers.map((f) => round2((f.report.rtoMs ?? 0) / 1000)));

async function main(): Promise<void> {
  const stack = await startTestStack();
  try {
    const alone: FailoverRun[] = [];
    const concurrent: FailoverRun[] = [];
    /** Read after each pair, off the clock. */
    const serverWork: Array<{ alone: Record<string, ServerWork>; together: Record<string, ServerWork> }> = [];
    for (let run = 1; run <= RUNS; run++) {
      alone.push(await forcedFailoversAtOnce(stack, lone(run), `alone-${run}`));
      console.log(`run ${run}: one domain of ${DOMAINS * VMS_EACH} VMs alone: ${alone[run - 1].wallMs} ms`);
      concurrent.push(await forcedFailoversAtOnce(stack, together(run), `together-${run}`));
      console.log(`run ${run}: ${DOMAINS} domains of ${VMS_EACH} VMs at once: ${concurrent[run - 1].wallMs} ms until the last ended`);
      serverWork.push({ alone: await serverWorkDuring(stack.client, alone[run - 1].span.fromMs, alone[run - 1].span.toMs), together: await serverWorkDuring(stack.client, concurrent[run - 1].span.fromMs, concurrent[run - 1].span.toMs) });
    }
    const aloneMs = spread(alone.map((r) => r.wallMs));
    const togetherMs = spread(concurrent.map((r) => r.wallMs));
    const ratio = round2(togetherMs.median / aloneMs.median);
    const results = {
      setup: {
        domains: DOMAINS,
        vmsEach: VMS_EACH,
        runs: RUNS,
        order: 'interleaved: alone, together, alone, together, ...',
        failover: 'forced, latest consistent point, the large-domain runbook without waits (bench/large-domain.ts); one primary and one recovery site process, the product worker processes (orchestration + one per site)',
        cores: os.cpus().length,
        goal: 'every failover succeeds; ratio <= 1.5',
      },
      aloneWallMs: aloneMs,
      togetherWallMs: togetherMs,
      togetherToAloneRatio: ratio,
      ratioPerPair: spread(concurrent.map((r, i) => round2(r.wallMs / alone[i].wallMs))),
      cpuSeconds: { alone: spread(alone.map((r) => ourCpu(r.cpuSeconds))), together: spread(concurrent.map((r) => ourCpu(r.cpuSeconds))) },
      cpuSecondsByProcess: { alone: cpuSecondsByProcess(alone), together: cpuSecondsByProcess(concurrent) },
      // The servers and simulated sites alone (Temporal, SeaweedFS, the site processes) on the machine's
      // cores, with every product worker costing nothing: the ratio cannot go below it here. Temporal's
      // share follows from the workflow tasks and activities the product asks of it (temporalWorkByWorkflowType).
      ratioFloorFromServersAndSites: round2(median(concurrent.map((r) => serversAndSitesCpu(r.cpuSeconds, { temporal: true }))) / os.cpus().length / (aloneMs.median / 1000)),
      temporalWorkByWorkflowType: serverWork,
      togetherEachFailoverSeconds: concurrent.map(failoverSeconds),
      aloneSteps: stepMedians(alone.map((r) => ({ steps: r.failovers[0].report.steps }))),
      succeeded: { alone: alone.length, together: concurrent.reduce((n, r) => n + r.failovers.length, 0) },
      setupMs: { alone: alone.map((r) => r.setup), together: concurrent.map((r) => r.setup) },
      waitedForQuietMachineMs: { alone: alone.map((r) => r.quietWaitMs), together: concurrent.map((r) => r.quietWaitMs) },
    };
    // Another shape has a file of its own: 50 x 20 is the issue's.
    reportBenchResults(DOMAINS === 50 && VMS_EACH === 20 ? 'concurrent-domains' : `concurrent-domains-${DOMAINS}x${VMS_EACH}`, results);
    console.log(
      `\n${DOMAINS} domains x ${VMS_EACH} VMs at once: ${togetherMs.median} ms (min ${togetherMs.min}, max ${togetherMs.max}); ` +
        `one domain of ${DOMAINS * VMS_EACH} VMs alone: ${aloneMs.median} ms (min ${aloneMs.min}, max ${aloneMs.max}); ratio of medians ${ratio} (goal <= 1.5), ${RUNS} interleaved runs`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
