/**
 * Worker capacity (issue 15, item 4): the shipped defaults (worker/main.ts) against the candidates
 * below, each a DR_WORKER_* setting given to every worker process, on the run where capacity is
 * tested hardest: BENCH_DOMAINS (50) domains of BENCH_VMS_EACH (20) VMs failing over at once, as
 * bench/concurrent-domains.ts runs them. Each candidate's limit is the shipped defaults in the
 * same run:
 *
 *   ratio = median time until the last failover ends with the candidate / median with the defaults
 *
 * over BENCH_RUNS (default 3) rounds, interleaved (defaults, candidate 1, candidate 2, defaults,
 * ...), with min and max and each process's CPU seconds. Below 1 the candidate is faster.
 */
import os from 'node:os';
import { startTestStack } from '../test/harness/stack';
import { cpuSecondsByProcess, forcedFailoversAtOnce, type FailoverRun } from './failover-runs';
import { smallDomains } from './large-domain';
import { ourCpu, round2, spread } from './measure';
import { reportBenchResults } from './results-file';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 50);
const VMS_EACH = Number(process.env.BENCH_VMS_EACH ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Candidate {
  name: string;
  env: NodeJS.ProcessEnv;
}

const SHIPPED: Candidate = { name: 'shipped defaults (worker/main.ts)', env: {} };
/** Each candidate changes one setting, so that a difference has one cause; BENCH_WORKER_SET picks a set. */
const CANDIDATE_SETS: Record<string, Candidate[]> = {
  capacity: [
    { name: 'workflow cache of 500 (shipped: sized from the heap)', env: { DR_WORKER_MAX_CACHED_WORKFLOWS: '500' } },
    { name: '400 activity slots (shipped: 100)', env: { DR_WORKER_MAX_CONCURRENT_ACTIVITIES: '400' } },
  ],
  'workflow-tasks': [
    { name: '10 workflow task slots (shipped: 40)', env: { DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '10' } },
    { name: '200 workflow task slots (shipped: 40)', env: { DR_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '200' } },
  ],
};
const SET = process.env.BENCH_WORKER_CANDIDATES ? 'custom' : (process.env.BENCH_WORKER_SET ?? 'capacity');
const CANDIDATES: Candidate[] = process.env.BENCH_WORKER_CANDIDATES ? (JSON.parse(process.env.BENCH_WORKER_CANDIDATES) as Candidate[]) : CANDIDATE_SETS[SET];
if (!CANDIDATES) throw new Error(`BENCH_WORKER_SET must be one of ${Object.keys(CANDIDATE_SETS).join(', ')}`);
/** Each set and size has its own results file, so that one never overwrites another's. */
const RESULTS_NAME = ['worker-options', ...(SET === 'capacity' ? [] : [SET]), ...(DOMAINS === 50 && VMS_EACH === 20 ? [] : [`${DOMAINS}x${VMS_EACH}`])].join('-');

const domains = (label: string) => smallDomains(label, DOMAINS, VMS_EACH);

async function main(): Promise<void> {
  const stack = await startTestStack();
  try {
    const all = [SHIPPED, ...CANDIDATES];
    const runs = new Map<Candidate, FailoverRun[]>(all.map((c) => [c, []]));
    for (let round = 1; round <= RUNS; round++) {
      for (const [index, candidate] of all.entries()) {
        const run = await forcedFailoversAtOnce(stack, domains(`r${round}c${index}`), `round-${round}-candidate-${index}`, candidate.env);
        runs.get(candidate)!.push(run);
        console.log(`round ${round}: ${candidate.name}: ${run.wallMs} ms until the last of ${DOMAINS} failovers ended`);
      }
    }
    const shippedMs = spread(runs.get(SHIPPED)!.map((r) => r.wallMs));
    const results = {
      setup: {
        candidateSet: SET,
        domains: DOMAINS,
        vmsEach: VMS_EACH,
        runs: RUNS,
        order: 'interleaved: shipped, each candidate, shipped, ...',
        failover: 'forced, the large-domain runbook without waits (bench/failover-runs.ts); the settings go to every worker process',
        cores: os.cpus().length,
      },
      candidates: all.map((candidate) => {
        const own = runs.get(candidate)!;
        const wallMs = spread(own.map((r) => r.wallMs));
        return {
          name: candidate.name,
          env: candidate.env,
          wallMs,
          toShippedRatio: round2(wallMs.median / shippedMs.median),
          ratioPerRound: spread(own.map((r, i) => round2(r.wallMs / runs.get(SHIPPED)![i].wallMs))),
          cpuSeconds: spread(own.map((r) => ourCpu(r.cpuSeconds))),
          cpuSecondsByProcess: cpuSecondsByProcess(own),
        };
      }),
    };
    reportBenchResults(RESULTS_NAME, results);
    for (const c of results.candidates) console.log(`${c.name}: ${c.wallMs.median} ms (min ${c.wallMs.min}, max ${c.wallMs.max}), ${c.toShippedRatio}x the shipped defaults, CPU ${c.cpuSeconds.median} s`);
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
