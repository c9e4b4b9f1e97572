/**
 * Write-to-durable lag of protection (issue 15's goal: p99 under 1 s at 20 MB/s, no bitmap mode),
 * measured on the product as it runs: a simulated primary site whose guest workload writes 4 KiB to
 * 1 MiB writes (each power of two as often) across 8 disks at 20 MB/s for 60 s, the product's
 * worker processes and the protection workflow replicating into SeaweedFS.
 *
 *   lag of a write = the instant the segment holding it is listed in the store - its acknowledgement at the site
 *
 * Measured from outside the product: a poller lists the domain's log every POLL_MS and reads each
 * new segment's 64-byte header (its last journal sequence), so a lag is at most POLL_MS plus one
 * listing late, never early. The workload's own record gives every write's sequence and instant.
 * The protection workflow's mode changes say whether bitmap mode was entered. The goal has no limit
 * to measure in the same run; the achieved write rate and the CPU of every process are reported
 * beside it, since the machine is shared. `BENCH_LAG_MBPS`, `BENCH_LAG_SECONDS` and `BENCH_RUNS`
 * (runs one after another, each on a domain of its own) change the setup.
 */
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parseSegmentReference } from '../datapath/segment-objects';
import { DomainKeys } from '../datapath/keys';
import { ObjectStore } from '../datapath/object-store';
import type { SiteDefinition } from '../sites/config';
import { readWorkloadRecord } from '../sites/workload';
import { admin, prepareTestSites, type TestSites } from '../test/harness/sites';
import { startTestStack, type TestStack } from '../test/harness/stack';
import { TestWorkers } from '../test/harness/workers';
import { protectStatusQuery } from '../workflows/protect';
import { protectUntilReplicating } from './large-domain';
import { tsToMs } from '@temporalio/common/lib/time';
import { cpuDuring, cpuSnapshot, historyEvents, percentile, round2 } from './measure';
import { reportBenchResults } from './results-file';

const MiB = 1024 * 1024;
const TARGET_MBPS = Number(process.env.BENCH_LAG_MBPS ?? 20);
const SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 60);
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const POLL_MS = 50;
/** Writes at least this late are listed by when they were made (the goal's p99 is 1 s). */
const SLOW_WRITE_MS = 800;
const PRIMARY = 'lag-primary';
const DISKS_PER_VM = 4;
const VMS = 2;
const DISK_MIB = 256;
const MIN_WRITE = 4096;
const MAX_WRITE = MiB;
/** Each power of two from 4 KiB to 1 MiB as often: the mean write. */
const WRITE_SIZES = Array.from({ length: Math.log2(MAX_WRITE / MIN_WRITE) + 1 }, (_, i) => MIN_WRITE * 2 ** i);
const MEAN_WRITE = WRITE_SIZES.reduce((a, b) => a + b, 0) / WRITE_SIZES.length;

type SiteInput = Omit<SiteDefinition, 'port' | 'adminPort'>;

function siteDefinition(domains: string[]): SiteInput {
  return {
    name: PRIMARY,
    bootMs: 0,
    shutdownMs: 0,
    inventory: { datacenters: ['dc-a'], clusters: [{ name: 'cluster-a1', datacenter: 'dc-a' }], resourcePools: [], datastores: [{ name: 'ds-a', capacityBytes: 1024 ** 4 }], networks: ['prod-app'], storagePolicies: [] },
    protectedDomains: domains.map((domain, d) => ({
      name: domain,
      placement: { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' },
      vms: Array.from({ length: VMS }, (_, i) => ({ name: `${domain}-vm-${i}`, cpus: 2, memoryMiB: 4096, network: 'prod-app', address: `10.40.${d}.${i + 10}`, diskMiB: Array(DISKS_PER_VM).fill(DISK_MIB) })),
    })),
  };
}

/** Lists the log as it grows and notes when each segment, and so each journal sequence up to its end, is first seen stored. */
function watchLog(stack: TestStack, store: ObjectStore, domain: string) {
  const keys = new DomainKeys(store.prefix, domain);
  const durable: Array<{ lastSequence: number; seenAt: number }> = [];
  let startAfter: string | undefined;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const listed = await store.list(keys.logPrefix(1), startAfter ? { startAfter } : {});
      const seenAt = Date.now();
      const header = async (key: string) => {
        const answer = await stack.s3Client.send(new GetObjectCommand({ Bucket: stack.s3Settings.bucket, Key: key, Range: 'bytes=0-63' }));
        return Buffer.from(await answer.Body!.transformToByteArray());
      };
      for (const key of listed.keys) {
        let bytes = await header(key);
        // A large segment's key holds a reference to its uploaded bytes, which hold the header.
        const reference = parseSegmentReference(key, bytes[0] === 0x7b ? (await store.get(key))! : bytes);
        if (reference) bytes = await header(reference.data);
        durable.push({ lastSequence: Number(bytes.readBigUInt64BE(24)), seenAt });
        startAfter = key;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  })();
  return {
    durable,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

async function run(stack: TestStack, store: ObjectStore, sites: TestSites, workers: TestWorkers, domain: string) {
  const protectionId = await protectUntilReplicating(stack.client, store, { domain, primary: PRIMARY, recovery: PRIMARY, vms: VMS }, Array.from({ length: VMS }, (_, i) => `${domain}-vm-${i}`));
  const site = sites.site(PRIMARY);
  const log = watchLog(stack, store, domain);
  const writesPerSecond = (TARGET_MBPS * MiB) / MEAN_WRITE;
  const recordFile = path.join(stack.dir, PRIMARY, 'workload-record.jsonl');
  const writtenBefore = readWorkloadRecord(recordFile).length;
  const pids = { temporal: stack.temporalProcess.pid, seaweedfs: stack.s3Process.pid, site: site.process.pid, ...Object.fromEntries([...workers.running.entries()].map(([name, child]) => [`worker ${name}`, child.pid])) };
  const before = cpuSnapshot(pids);
  const writingFrom = Date.now();
  await admin(site, sites.token, '/admin/workload', { writesPerSecond, blockSize: MIN_WRITE, maxBlockSize: MAX_WRITE, pattern: 'random', seed: domain, vms: Array.from({ length: VMS }, (_, i) => `${domain}-vm-${i}`) });
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  await admin(site, sites.token, '/admin/workload', undefined, 'DELETE');
  const cpu = cpuDuring(before, cpuSnapshot(pids));
  const writes = readWorkloadRecord(recordFile).slice(writtenBefore);
  const lastSequence = Math.max(...writes.map((w) => w.sequence));
  const drainStarted = Date.now();
  while ((log.durable.at(-1)?.lastSequence ?? 0) < lastSequence && Date.now() - drainStarted < 300_000) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  await log.stop();

  const lags: number[] = [];
  const slowWrites: Array<{ atMs: number; lagMs: number }> = [];
  let segment = 0;
  for (const write of [...writes].sort((a, b) => a.sequence - b.sequence)) {
    while (segment < log.durable.length && log.durable[segment].lastSequence < write.sequence) segment++;
    if (segment === log.durable.length) throw new Error(`write ${write.sequence} never became durable within 5 min of the workload's end`);
    const lag = log.durable[segment].seenAt - write.at;
    lags.push(lag);
    if (lag >= SLOW_WRITE_MS) slowWrites.push({ atMs: write.at - writingFrom, lagMs: lag });
  }
  const status = await stack.client.workflow.getHandle(protectionId).query(protectStatusQuery);
  const bytes = writes.reduce((sum, w) => sum + w.length, 0);
  const firstAt = Math.min(...writes.map((w) => w.at));
  const lastAt = Math.max(...writes.map((w) => w.at));
  return {
    domain,
    writingFrom: new Date(writingFrom).toISOString(),
    writes: writes.length,
    writtenMiB: round2(bytes / MiB),
    achievedMBps: round2(bytes / MiB / ((lastAt - firstAt) / 1000)),
    segments: log.durable.length,
    lagMs: { p50: percentile(lags, 50), p90: percentile(lags, 90), p99: percentile(lags, 99), max: Math.max(...lags) },
    bitmapModeEntered: status.modeChanges.some((change) => change.at >= writingFrom && change.mode === 'bitmap'),
    modeChanges: status.modeChanges,
    cpuSecondsWhileWriting: Object.fromEntries(Object.entries(cpu).map(([name, s]) => [name, round2(s)])),
    // When the tail happened, against the replicator's runs: a write made while no run drains the
    // journal (between two runs, or while a membership look runs between them) waits for the next.
    slowWrites: episodes(slowWrites),
    protectionActivities: await protectionActivities(stack, protectionId, writingFrom, writingFrom + SECONDS * 1000),
  };
}

/** Slow writes less than a second apart, as one episode: from, to (ms since writing began), how many, the worst lag. */
function episodes(slow: Array<{ atMs: number; lagMs: number }>): Array<{ fromMs: number; toMs: number; writes: number; worstLagMs: number }> {
  const result: Array<{ fromMs: number; toMs: number; writes: number; worstLagMs: number }> = [];
  for (const write of slow.sort((a, b) => a.atMs - b.atMs)) {
    const last = result.at(-1);
    if (last && write.atMs - last.toMs < 1000) {
      last.toMs = write.atMs;
      last.writes++;
      last.worstLagMs = Math.max(last.worstLagMs, write.lagMs);
    } else result.push({ fromMs: write.atMs, toMs: write.atMs, writes: 1, worstLagMs: write.lagMs });
  }
  return result;
}

/** The protection's activities while the workload wrote (replicator runs, membership looks, garbage collection, restore points), in ms since it began: when each started and ended. */
async function protectionActivities(stack: TestStack, protectionId: string, fromMs: number, toMs: number): Promise<Array<{ activity: string; startedMs: number; endedMs?: number }>> {
  const events = await historyEvents(stack.client, protectionId, 1000);
  const byScheduled = new Map<string, { activity: string; startedMs: number; endedMs?: number }>();
  const names = new Map<string, string>();
  for (const event of events) {
    const at = tsToMs(event.eventTime);
    const id = String(event.eventId);
    if (event.activityTaskScheduledEventAttributes) names.set(id, event.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const started = event.activityTaskStartedEventAttributes;
    if (started) byScheduled.set(String(started.scheduledEventId), { activity: names.get(String(started.scheduledEventId)) ?? '?', startedMs: at - fromMs });
    const ended = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    const run = ended && byScheduled.get(String(ended.scheduledEventId));
    if (run) run.endedMs = at - fromMs;
  }
  return [...byScheduled.values()].filter((r) => (r.endedMs ?? Number.POSITIVE_INFINITY) >= 0 && r.startedMs <= toMs - fromMs);
}

async function main(): Promise<void> {
  const domains = Array.from({ length: RUNS }, (_, i) => `lag-${i + 1}`);
  const stack = await startTestStack();
  const sites = await prepareTestSites(stack.dir, [siteDefinition(domains)]);
  const workers = new TestWorkers(stack, sites.token);
  try {
    await sites.startAll([PRIMARY]);
    await workers.orchestration();
    await workers.site(sites.site(PRIMARY), PRIMARY);
    const store = new ObjectStore(stack.s3Client, stack.s3Settings);
    const runs = [];
    for (const domain of domains) {
      const result = await run(stack, store, sites, workers, domain);
      console.log(`${domain}: ${result.achievedMBps} MB/s, lag p50 ${result.lagMs.p50} ms, p99 ${result.lagMs.p99} ms, max ${result.lagMs.max} ms, bitmap mode ${result.bitmapModeEntered ? 'entered' : 'not entered'}`);
      runs.push(result);
    }
    const p99s = runs.map((r) => r.lagMs.p99);
    reportBenchResults('replication-lag', {
      setup: {
        targetMBps: TARGET_MBPS,
        seconds: SECONDS,
        disks: VMS * DISKS_PER_VM,
        diskMiB: DISK_MIB,
        writeSizes: `${MIN_WRITE / 1024} KiB to ${MAX_WRITE / 1024} KiB, each power of two as often (mean ${Math.round(MEAN_WRITE / 1024)} KiB)`,
        data: 'AES-CTR keystream per write (incompressible)',
        measurement: `segment listed in the store (polled every ${POLL_MS} ms, header read) minus the write's acknowledgement at the site`,
        processes: 'simulated primary site, product orchestration and site worker processes, Temporal dev server, SeaweedFS',
      },
      goal: { p99Ms: 1000, bitmapMode: 'never' },
      p99Ms: { median: percentile(p99s, 50), min: Math.min(...p99s), max: Math.max(...p99s) },
      goalMet: runs.every((r) => r.lagMs.p99 < 1000 && !r.bitmapModeEntered),
      runs,
    });
  } finally {
    await workers.stopAll();
    await sites.stopAll();
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
