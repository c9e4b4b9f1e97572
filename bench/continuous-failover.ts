/**
 * Completion time of a continuous failover (issue: near-zero RTO) on a generated 100-VM domain
 * (one 1 MiB disk each, boot and shutdown latency zero) against its limit, the critical path the
 * dry-run planner (runbooks/planner.ts) gives for the same runbook on the same run, with the same
 * zero latencies. Goal: completion within critical path + 5 s.
 *
 *   completion = declaration (Date.now() as the forced completion is sent) -> workflow result
 *
 * The same bench runs a plain forced failover of an identical domain in the same state, measured
 * the same way, so the RTO saving is a ratio: plain completion / continuous completion.
 *
 * Runs are interleaved, continuous then plain, PAIRS times (A B A B A B). Each run has sites of its
 * own (a primary and a recovery site process, with their product site-worker processes) and a
 * domain of its own (`cf-<n>`, `pf-<n>`): a forced failover fences its primary and leaves a
 * recovered domain at the recovery site, so nothing of one run may carry into the next; every run
 * starts from the same state. The Temporal server, SeaweedFS and the orchestration worker process
 * are shared by all runs, as in the product.
 *
 * A run: protection at the primary replicating, a guest workload writing at the primary (so the
 * log grows while the copy follows), then
 *   continuous: the `continuousFailover` workflow started as the desk starts it, awaited until the
 *     domain mode is `Continuous Rehydration in Progress`, left following a few more seconds;
 *   plain: nothing, for as long as the continuous run before it took to get there (same log age);
 * then the primary site goes down (site admin /admin/outage) and the disaster is declared. After
 * the measurement every recovered disk is compared byte for byte with the primary's writes up to
 * the end of the log the takeover sealed, so the bench measures a correct operation.
 *
 * Where the time goes: the report's step durations of the completion (steps with `stage`), the
 * activities the completion scheduled (queue wait and run time per type) and the CPU seconds of
 * every process during the completion. `BENCH_CONTINUOUS_VMS` and `BENCH_CONTINUOUS_PAIRS` change
 * the domain size and the number of pairs. Timings are never asserted.
 */
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readChain, resolveChain } from '../datapath/log-chain';
import { readDomainStatus } from '../datapath/domain-status';
import { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import { DEFAULT_ESTIMATES, planRunbook, type PlanEstimates } from '../runbooks/planner';
import type { Runbook } from '../runbooks/schema';
import { diskIdOf } from '../sites/config';
import type { SiteService } from '../sites/launch';
import { expectedDiskContent, readWorkloadRecord } from '../sites/workload';
import { admin, prepareTestSites } from '../test/harness/sites';
import { startTestStack, type TestStack } from '../test/harness/stack';
import { TestWorkers } from '../test/harness/workers';
import { continuousFailover } from '../workflows/continuous-failover';
import { completeContinuousFailoverUpdate, type ContinuousFailoverInput } from '../workflows/continuous-failover-messages';
import { failover } from '../workflows/failover';
import type { FailoverInput } from '../workflows/failover-messages';
import { operationProgressQuery, type FollowingStatus, type OperationReport } from '../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import { operationWorkflowId, protectionWorkflowId } from '../workflows/workflow-ids';
import { DISK_MIB, benchRunbook, protectUntilReplicating, siteDefinitions, vmName, type BenchDomain } from './large-domain';
import { countHistory, cpuDuring, cpuSnapshot, ourCpu, round2, spread, stepMedians, waitFor, waitForQuietMachine, type ActivityTiming } from './measure';
import { writeBenchResults } from './results-file';

const VMS = Number(process.env.BENCH_CONTINUOUS_VMS ?? 100);
const PAIRS = Number(process.env.BENCH_CONTINUOUS_PAIRS ?? 3);
const GOAL_OVER_CRITICAL_PATH_MS = 5_000;
const FOLLOWING_MODE = 'Continuous Rehydration in Progress';
/** How long the copy follows the growing log after its first catch-up, before the disaster. */
const FOLLOW_AFTER_CATCH_UP_MS = 10_000;
const WORKLOAD = { writesPerSecond: 50, blockSize: 4096, pattern: 'random' as const };
const MiB = 1024 * 1024;

type Kind = 'continuous' | 'plain';

// --- the limit ------------------------------------------------------------------------------------

/**
 * The planner's estimates for what the completion still has to do on these sites: power-on takes
 * the recovery site's boot latency (0), registration has no injected latency (0), and deploying
 * the RocVA and rehydrating are done before the declaration by the continuous failover (0). The
 * runbook has no heartbeat waits, delays, approvals or webhooks.
 */
function completionEstimates(recoveryBootMs: number): Partial<PlanEstimates> {
  return { deployRocvaMs: 0, rehydrateFixedMs: 0, rehydratePerGiBMs: 0, registerVmMs: 0, powerOnMs: recoveryBootMs, heartbeatMs: 0, approvalMs: 0, webhookMs: 0 };
}

function criticalPathOf(runbook: Runbook, estimates: Partial<PlanEstimates>) {
  const plan = planRunbook(runbook, { estimates, diskGiBByVm: Object.fromEntries(runbook.spec.vms.map((vm) => [vm.name, DISK_MIB / 1024])) });
  return { ms: plan.rtoEstimateMs, nodes: plan.criticalPath.length, path: [...plan.criticalPath.slice(0, 3), '...', ...plan.criticalPath.slice(-2)] };
}

// --- one run ----------------------------------------------------------------------------------------

interface Bench {
  stack: TestStack;
  store: ObjectStore;
  workers: TestWorkers;
}

interface RunSites {
  domain: BenchDomain;
  dir: string;
  token: string;
  primary: SiteService;
  recovery: SiteService;
}

interface RunResult {
  kind: Kind;
  run: number;
  domain: string;
  workflowId: string;
  /** Declaration -> workflow result, measured by this process. */
  completionMs: number;
  /** The report's: declaration -> every VM the plan starts running. */
  rtoMs: number | undefined;
  rpoMs: number | undefined;
  criticalPathMs: number;
  overCriticalPathMs: number;
  /** Workload start -> declaration: how much log there was. */
  logAgeAtDeclarationMs: number;
  /** Continuous only: the copy as the disaster found it. */
  followingAtDeclaration?: FollowingStatus;
  tail?: OperationReport['tail'];
  /** The steps after the declaration (a continuous failover's completion stage; a plain failover's every step). */
  steps: Array<{ name: string; durationMs: number | undefined }>;
  activitiesAfterDeclaration: Record<string, ActivityTiming>;
  cpuSeconds: Record<string, number>;
  quietWaitMs: number;
  verified: { disks: number; upToJournalSequence: number; writesReplicated: number; writesLost: number };
}

async function startRunSites(bench: Bench, domain: BenchDomain): Promise<RunSites> {
  const dir = path.join(bench.stack.dir, domain.domain);
  mkdirSync(dir, { recursive: true });
  const sites = await prepareTestSites(dir, siteDefinitions(domain));
  const [primary, recovery] = await Promise.all([sites.start(domain.primary), sites.start(domain.recovery)]);
  // Every run's sites have a token of their own: their workers are given it.
  const env = { DR_SITE_TOKEN: sites.token };
  await Promise.all([bench.workers.site(primary, domain.primary, env), bench.workers.site(recovery, domain.recovery, env)]);
  return { domain, dir, token: sites.token, primary, recovery };
}

async function stopRunSites(bench: Bench, sites: RunSites): Promise<void> {
  await Promise.all([bench.workers.crash(`site ${sites.domain.primary}`), bench.workers.crash(`site ${sites.domain.recovery}`)]);
  await Promise.all([sites.primary.process.stop(), sites.recovery.process.stop()]);
}

function processesOf(bench: Bench, sites: RunSites): Record<string, number> {
  const { primary, recovery } = sites.domain;
  return {
    temporal: bench.stack.temporalProcess.pid,
    seaweedfs: bench.stack.s3Process.pid,
    'site primary': sites.primary.process.pid,
    'site recovery': sites.recovery.process.pid,
    'worker orchestration': bench.workers.running.get('orchestration')!.pid,
    'worker site primary': bench.workers.running.get(`site ${primary}`)!.pid,
    'worker site recovery': bench.workers.running.get(`site ${recovery}`)!.pid,
  };
}

/** Starts the continuous failover as the desk does and waits until its copy has caught up and followed a while. */
async function startFollowing(bench: Bench, runbook: Runbook, domain: string) {
  const startedAt = Date.now();
  const input: ContinuousFailoverInput = { domain, runbook, runbookVersion: 1, requestedBy: 'bench', declaredAt: startedAt };
  const handle = await bench.stack.client.workflow.start(continuousFailover, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: operationWorkflowId('continuous-failover', domain, startedAt),
    args: [input],
  });
  await waitFor(`${domain} ${FOLLOWING_MODE}`, async () => (await readDomainStatus(bench.store, domain))?.mode === FOLLOWING_MODE, 300_000);
  const caughtUpAfterMs = Date.now() - startedAt;
  const runsAtCatchUp = (await handle.query(operationProgressQuery)).following?.followerRuns ?? 0;
  await new Promise((resolve) => setTimeout(resolve, FOLLOW_AFTER_CATCH_UP_MS));
  await waitFor(`${domain} following on after its catch-up`, async () => ((await handle.query(operationProgressQuery)).following?.followerRuns ?? 0) > runsAtCatchUp, 60_000);
  return { handle, caughtUpAfterMs };
}

/** The primary goes down, then the disaster is declared: returns the declaration instant. */
async function stageDisaster(sites: RunSites): Promise<number> {
  await admin(sites.primary, sites.token, '/admin/outage');
  return Date.now();
}

/**
 * Every recovered disk equals the primary's recorded writes up to the last journal sequence of
 * the log the takeover sealed (the epochs before the recovery's own).
 */
async function verifyRecoveredDisks(bench: Bench, sites: RunSites, epoch: number): Promise<RunResult['verified']> {
  const { domain, vms } = sites.domain;
  const chain = (await resolveChain(bench.store, new Ownership(bench.store, domain))).filter((link) => link.epoch < epoch);
  let sequence = 0;
  for await (const { segment } of readChain(bench.store, chain.slice(-1), 1)) sequence = segment.lastSequence;
  const record = readWorkloadRecord(path.join(sites.dir, sites.domain.primary, 'workload-record.jsonl'));
  for (let i = 0; i < vms; i++) {
    const diskId = diskIdOf(vmName(i), 0);
    const recovered = await sites.recovery.client.readDisk(diskId, 0, DISK_MIB * MiB);
    if (!recovered.equals(expectedDiskContent(record, diskId, DISK_MIB * MiB, { sequence }))) {
      throw new Error(`${domain}: recovered ${diskId} differs from the primary's writes up to journal sequence ${sequence}`);
    }
  }
  const writesReplicated = record.filter((w) => w.sequence <= sequence).length;
  if (writesReplicated === 0) throw new Error(`${domain}: no workload write was replicated before the disaster; the check would prove nothing`);
  return { disks: vms, upToJournalSequence: sequence, writesReplicated, writesLost: record.length - writesReplicated };
}

/** One run of either kind on sites and a domain of its own; `logAgeMs` makes a plain run wait as long as the continuous run before it. */
async function runOnce(bench: Bench, kind: Kind, pair: number, logAgeMs?: number): Promise<RunResult> {
  const domain: BenchDomain = { domain: `${kind === 'continuous' ? 'cf' : 'pf'}-${pair}`, primary: `primary-${kind}-${pair}`, recovery: `recovery-${kind}-${pair}`, vms: VMS };
  const runbook = benchRunbook(domain);
  const criticalPathMs = criticalPathOf(runbook, completionEstimates(siteDefinitions(domain)[1].bootMs)).ms;
  const sites = await startRunSites(bench, domain);
  const client = bench.stack.client;
  let workflowId = '';
  let epoch: number | undefined;
  try {
    const vms = runbook.spec.vms.map((vm) => vm.name);
    await protectUntilReplicating(client, bench.store, domain, vms);
    await admin(sites.primary, sites.token, '/admin/workload', { ...WORKLOAD, seed: `bench-${domain.domain}` });
    const loggingSince = Date.now();
    const following = kind === 'continuous' ? await startFollowing(bench, runbook, domain.domain) : undefined;
    const quietWaitMs = await waitForQuietMachine();
    if (logAgeMs !== undefined) await new Promise((resolve) => setTimeout(resolve, Math.max(0, loggingSince + logAgeMs - Date.now())));
    const pids = processesOf(bench, sites);
    const followingAtDeclaration = following && (await following.handle.query(operationProgressQuery)).following;

    const before = cpuSnapshot(pids);
    const declaredAt = await stageDisaster(sites);
    let report: OperationReport;
    if (following) {
      workflowId = following.handle.workflowId;
      await following.handle.executeUpdate(completeContinuousFailoverUpdate, { args: [{ type: 'forced', forcedConfirmation: domain.domain, requestedBy: 'bench', declaredAt }] });
      report = await following.handle.result();
    } else {
      workflowId = operationWorkflowId('failover', domain.domain, declaredAt);
      const input: FailoverInput = { domain: domain.domain, type: 'forced', runbook, runbookVersion: 1, requestedBy: 'bench', declaredAt, forcedConfirmation: domain.domain };
      report = await client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [input] });
    }
    const completionMs = Date.now() - declaredAt;
    const cpuSeconds = cpuDuring(before, cpuSnapshot(pids));
    if (report.outcome !== 'succeeded') throw new Error(`${workflowId} ended ${report.outcome}: ${report.failure ?? ''}`);
    epoch = report.epoch;
    console.log(
      `${kind} ${domain.domain}: completion ${completionMs} ms (rto ${report.rtoMs} ms, critical path ${criticalPathMs} ms)` +
        (following ? `, caught up ${following.caughtUpAfterMs} ms after the start, tail ${JSON.stringify(report.tail)}` : '') +
        `; other processes used ${cpuSeconds['other processes']} CPU s meanwhile`,
    );

    const completionSteps = following ? report.steps.filter((s) => s.stage !== undefined) : report.steps;
    const activities = await countHistory(client, workflowId, declaredAt);
    const verified = await verifyRecoveredDisks(bench, sites, report.epoch!);
    console.log(`  ${verified.disks} recovered disks equal the primary's writes up to journal sequence ${verified.upToJournalSequence} (${verified.writesReplicated} writes)`);
    return {
      kind,
      run: pair,
      domain: domain.domain,
      workflowId,
      completionMs,
      rtoMs: report.rtoMs,
      rpoMs: report.rpoMs,
      criticalPathMs,
      overCriticalPathMs: completionMs - criticalPathMs,
      logAgeAtDeclarationMs: declaredAt - loggingSince,
      ...(followingAtDeclaration ? { followingAtDeclaration } : {}),
      ...(report.tail ? { tail: report.tail } : {}),
      steps: completionSteps.map((s) => ({ name: s.name, durationMs: s.durationMs })),
      activitiesAfterDeclaration: activities.timings,
      cpuSeconds,
      quietWaitMs,
      verified,
    };
  } finally {
    // Protection on both sides would go on replicating into the next run's measurement.
    const protections = [protectionWorkflowId(domain.domain, domain.primary, 1), ...(epoch ? [protectionWorkflowId(domain.domain, domain.recovery, epoch)] : [])];
    await Promise.all(protections.map((id) => client.workflow.getHandle(id).terminate('benchmark run done').catch(() => undefined)));
    if (workflowId && epoch === undefined) await client.workflow.getHandle(workflowId).terminate('benchmark run failed').catch(() => undefined);
    await stopRunSites(bench, sites);
  }
}

// --- summary ---------------------------------------------------------------------------------------

function summarize(continuous: RunResult[], plain: RunResult[]) {
  const overCriticalPath = spread(continuous.map((r) => r.overCriticalPathMs));
  return {
    continuousCompletionMs: spread(continuous.map((r) => r.completionMs)),
    continuousRtoMs: spread(continuous.map((r) => r.rtoMs ?? NaN)),
    plainCompletionMs: spread(plain.map((r) => r.completionMs)),
    plainRtoMs: spread(plain.map((r) => r.rtoMs ?? NaN)),
    criticalPathMs: spread(continuous.map((r) => r.criticalPathMs)),
    continuousOverCriticalPathMs: overCriticalPath,
    goal: `completion - critical path <= ${GOAL_OVER_CRITICAL_PATH_MS} ms`,
    goalMetByMedian: overCriticalPath.median <= GOAL_OVER_CRITICAL_PATH_MS,
    goalMetByEveryRun: overCriticalPath.max <= GOAL_OVER_CRITICAL_PATH_MS,
    // Each plain run against the continuous run right before it (the interleaved pair).
    rtoSavingRatio: spread(continuous.map((c, i) => round2(plain[i].completionMs / c.completionMs))),
    cpuSecondsOfOurProcesses: { continuous: spread(continuous.map((r) => ourCpu(r.cpuSeconds))), plain: spread(plain.map((r) => ourCpu(r.cpuSeconds))) },
    continuousCompletionSteps: stepMedians(continuous),
    plainFailoverSteps: stepMedians(plain),
  };
}

async function main(): Promise<void> {
  const stack = await startTestStack();
  // No site token here: each run's sites have their own, given to their workers (startRunSites).
  const workers = new TestWorkers(stack, '');
  try {
    const bench: Bench = { stack, store: new ObjectStore(stack.s3Client, stack.s3Settings), workers };
    await workers.orchestration();
    const continuous: RunResult[] = [];
    const plain: RunResult[] = [];
    for (let pair = 1; pair <= PAIRS; pair++) {
      const a = await runOnce(bench, 'continuous', pair);
      continuous.push(a);
      plain.push(await runOnce(bench, 'plain', pair, a.logAgeAtDeclarationMs));
    }
    const sample = benchRunbook({ domain: 'cf-1', primary: 'primary', recovery: 'recovery', vms: VMS });
    const summary = summarize(continuous, plain);
    const results = {
      setup: {
        vms: VMS,
        disksPerVm: 1,
        diskMiB: DISK_MIB,
        pairs: PAIRS,
        order: 'interleaved: continuous then plain, per pair; each run on sites and a domain of its own (cf-<n>, pf-<n>)',
        groups: sample.spec.powerOn.groups.map((g) => ({ name: g.name, vms: g.vms.length, maxParallel: Math.min(g.maxParallel, sample.spec.powerOn.maxParallel), dependsOn: g.dependsOn })),
        operation:
          'forced; runbooks/examples/large-domain.ts without heartbeat waits, delays, approvals, webhooks; bootMs 0, shutdownMs 0, injected latency 0; the primary site taken down (/admin/outage) just before the declaration',
        workload: { ...WORKLOAD, where: 'primary, every VM, from protection replicating until the outage' },
        continuous: `continuousFailover started as the desk starts it, declared ${FOLLOW_AFTER_CATCH_UP_MS} ms after the mode became ${FOLLOWING_MODE} (and a quiet-machine wait); completed by the forced completeContinuousFailover update`,
        plain: 'failover workflow, forced, declared after the same log age as the continuous run before it',
        completionMs: 'declaration (Date.now() just before the update / the workflow start) -> workflow result, in this process',
        limit:
          'runbooks/planner.ts critical path of the same runbook with the completion estimates: power-on = the recovery site bootMs (0), registration 0 (no injected latency), deploy RocVA and rehydrate 0 (done before the declaration by the continuous failover), no heartbeats, delays, approvals or webhooks',
        criticalPath: criticalPathOf(sample, completionEstimates(0)),
        criticalPathWithPlannerDefaults: {
          ...criticalPathOf(sample, { deployRocvaMs: 0, rehydrateFixedMs: 0, rehydratePerGiBMs: 0 }),
          estimates: { powerOnMs: DEFAULT_ESTIMATES.powerOnMs, registerVmMs: DEFAULT_ESTIMATES.registerVmMs, registerParallelism: DEFAULT_ESTIMATES.registerParallelism },
          note: 'for reference only: what the planner expects of a real site (vCenter power-on and registration) once the copy is in place',
        },
        verification: 'after each run, every recovered disk byte-identical to the primary workload record up to the last journal sequence of the log the takeover sealed',
        processes: 'Temporal dev server, SeaweedFS and the orchestration worker process shared by all runs; per run a primary and a recovery site process and their product site-worker processes',
        cores: os.cpus().length,
      },
      summary,
      runs: continuous.flatMap((c, i) => [c, plain[i]]),
    };
    console.log(JSON.stringify(summary, null, 2));
    console.log(`written to ${writeBenchResults('continuous-failover', results)}`);
    const c = summary.continuousCompletionMs;
    const p = summary.plainCompletionMs;
    console.log(
      `\n${VMS} VMs on ${os.cpus().length} cores, ${PAIRS} interleaved pairs: continuous completion ${c.median} ms (min ${c.min}, max ${c.max}), ` +
        `critical path ${summary.criticalPathMs.median} ms, over it ${summary.continuousOverCriticalPathMs.median} ms (goal <= ${GOAL_OVER_CRITICAL_PATH_MS}: ${summary.goalMetByMedian ? 'met' : 'missed'}); ` +
        `plain failover ${p.median} ms (min ${p.min}, max ${p.max}); RTO saving ${summary.rtoSavingRatio.median}x (min ${summary.rtoSavingRatio.min}, max ${summary.rtoSavingRatio.max}); ` +
        `slowest completion steps: ${summary.continuousCompletionSteps
          .slice(0, 3)
          .map((s) => `${s.name} ${s.medianMs} ms`)
          .join(', ')}`,
    );
  } finally {
    await workers.stopAll();
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
