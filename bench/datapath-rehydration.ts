/**
 * Rehydration and replication ingest against the same S3 server's raw limits, runs interleaved
 * (limit, product, limit, product, ...), median with min and max of each:
 *  - rehydration of a domain of BENCH_REHYDRATION_MIB (default 2048) over BENCH_DISKS (8) disks,
 *    half base chunks and half log, into sparse files / raw parallel GET of the same objects, and
 *    / the same GETs with their bytes written into as many sparse files (the store and the disk
 *    together: what is left between the two ratios is the disk); each run in its own process,
 *    which reports its peak RSS
 *  - replication ingest of BENCH_INGEST_MIB (256) of journal writes / raw parallel PUT of as
 *    many bytes in objects of the segment size
 * plus the CPU cost of each stage of rehydration measured alone on a sample (checksum,
 * decompress, apply into the window, block digests). The data is random: incompressible, the
 * worst case for the store and the cheapest for compression.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { forEachLimited } from '../common/parallel';
import { commitBase, copyDisksIntoBase, BASE_CHUNK_BYTES } from '../datapath/base-image';
import { BlockDigests, PendingWrites } from '../datapath/disk-image';
import { resolveChain } from '../datapath/log-chain';
import { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import type { DomainDisk } from '../datapath/records';
import { decodeSegment, type BlockWrite } from '../datapath/segment-codec';
import { parseSegmentReference, readSegmentObject } from '../datapath/segment-objects';
import { unpackStoredBlocks } from '../datapath/framing';
import { SegmentWriter } from '../datapath/segment-writer';
import { startTestStack } from '../test/harness/stack';
import { drainJournal, MemorySite } from '../test/unit/datapath-memory-site';
import { runRehydrationProcess, type RunConfig, type RunResult } from '../test/harness/rehydration-process';
import { cpuDuring, cpuSnapshot, exitedChildrenCpuSeconds, round2 } from './measure';
import { reportBenchResults } from './results-file';

const MiB = 1024 * 1024;
const BLOCK = 4096;
const DEFAULT_DOMAIN_MIB = 2048;
const DOMAIN_MIB = Number(process.env.BENCH_REHYDRATION_MIB ?? DEFAULT_DOMAIN_MIB);
const DISK_COUNT = Number(process.env.BENCH_DISKS ?? 8);
const INGEST_MIB = Number(process.env.BENCH_INGEST_MIB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** The product's default segment size (activities/datapath.ts) and request parallelism. */
const SEGMENT_BYTES = 8 * MiB;
const PARALLEL = 8;
const CORES = availableParallelism();
const WRITE_SIZES = [4096, 16384, 65536, 262144];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const summary = (values: number[]) => ({ median: round2(median(values)), min: round2(Math.min(...values)), max: round2(Math.max(...values)), runs: values.map(round2) });
const mibps = (bytes: number, seconds: number) => bytes / MiB / seconds;

/** A run of one arm, with the CPU the store's server spent serving it and what the rest of the machine used meanwhile. */
type MeasuredRun = RunResult & { seaweedfsCpuSeconds: number; otherProcessesCpuSeconds: number };

/**
 * Where the two cores go per MiB: the arm's own process and SeaweedFS serving it. An arm can go no
 * faster than the cores divided by its CPU per MiB (its ceiling here), whatever it overlaps, so
 * ceilings compare the arms apart from what other sessions took of the machine during a run.
 * `rehydrationMsPerMiBForGoal` is what the rehydration's own process could spend per MiB for a
 * ceiling of 0.9x the raw GET's, SeaweedFS costing what it cost in these runs. `checkAndWriteFloor`
 * is the least any rehydration must spend: fetch the bytes and write them (the GET and write arm's
 * process) and check each object's SHA-256 (the checksum stage alone), nothing decoded, applied
 * or read back.
 */
function cpuBudget(objectBytes: number, checksumMiBps: number, arms: Record<'rawGet' | 'getAndWrite' | 'rehydration', MeasuredRun[]>) {
  const objectMiB = objectBytes / MiB;
  const processMs = (r: MeasuredRun) => (r.cpuSeconds * 1000) / objectMiB;
  const seaweedfsMs = (r: MeasuredRun) => (r.seaweedfsCpuSeconds * 1000) / objectMiB;
  const perMiB = (runs: MeasuredRun[]) => ({
    processMsPerMiB: summary(runs.map(processMs)),
    seaweedfsMsPerMiB: summary(runs.map(seaweedfsMs)),
    coresBusy: summary(runs.map((r) => (r.cpuSeconds + r.seaweedfsCpuSeconds) / r.seconds)),
    ceilingMiBps: summary(runs.map((r) => (CORES * 1000) / (processMs(r) + seaweedfsMs(r)))),
    otherProcessesCpuSeconds: summary(runs.map((r) => r.otherProcessesCpuSeconds)),
  });
  const rawGetMsPerMiB = median(arms.rawGet.map((r) => processMs(r) + seaweedfsMs(r)));
  const seaweedfsMsPerMiB = median(arms.rehydration.map(seaweedfsMs));
  const floorMsPerMiB = median(arms.getAndWrite.map(processMs)) + 1000 / checksumMiBps;
  return {
    cores: CORES,
    rawGet: perMiB(arms.rawGet),
    getAndWrite: perMiB(arms.getAndWrite),
    rehydration: perMiB(arms.rehydration),
    rehydrationCeilingToRawGetCeiling: round2(rawGetMsPerMiB / median(arms.rehydration.map((r) => processMs(r) + seaweedfsMs(r)))),
    rehydrationMsPerMiBForGoal: round2(rawGetMsPerMiB / 0.9 - seaweedfsMsPerMiB),
    checkAndWriteFloor: { processMsPerMiB: round2(floorMsPerMiB), ceilingToRawGetCeiling: round2(rawGetMsPerMiB / (floorMsPerMiB + seaweedfsMsPerMiB)) },
  };
}

/** Random writes of the sizes above, 4 KiB aligned, spread over the disks. */
function* randomWrites(disks: DomainDisk[], totalBytes: number): Generator<{ disk: DomainDisk; offset: number; data: Buffer }> {
  for (let written = 0, i = 0; written < totalBytes; i++) {
    const disk = disks[i % disks.length];
    const size = Math.min(WRITE_SIZES[randomInt(WRITE_SIZES.length)], totalBytes - written);
    const offset = randomInt((disk.sizeBytes - size) / BLOCK + 1) * BLOCK;
    written += size;
    yield { disk, offset, data: randomBytes(size) };
  }
}

/** A domain of `DOMAIN_MIB`: a base holding the first half of every disk, then a log of as many bytes of random writes. */
async function buildDomain(store: ObjectStore, domain: string, disks: DomainDisk[]): Promise<void> {
  const ownership = new Ownership(store, domain);
  await ownership.claim('primary');
  const baseId = ownership.keys.baseId(1, 0);
  const halfFull = { readDisk: (diskId: string, offset: number, length: number) => Promise.resolve(offset < disks.find((d) => d.diskId === diskId)!.sizeBytes / 2 ? randomBytes(length) : Buffer.alloc(length)) };
  await copyDisksIntoBase({ store, ownership, baseId, disks, source: halfFull, concurrency: PARALLEL, onProgress: () => undefined });
  await commitBase(store, ownership, { epoch: 1, cursor: 0, kind: 'initial-sync', disks, consistentFrom: null, timestamp: Date.now(), createdAt: Date.now() });
  const segments: BlockWrite[][] = [[]];
  let bytes = 0;
  let sequence = 0;
  for (const write of randomWrites(disks, (DOMAIN_MIB * MiB) / 2)) {
    if (bytes + write.data.length > SEGMENT_BYTES) {
      segments.push([]);
      bytes = 0;
    }
    segments.at(-1)!.push({ sequence: ++sequence, timestamp: Date.now(), vm: write.disk.vm, diskId: write.disk.diskId, offset: write.offset, data: write.data });
    bytes += write.data.length;
  }
  const writer = new SegmentWriter(store, ownership, 1, 'primary');
  // Segment keys follow from the sequences, so they can be stored in any order.
  await forEachLimited(segments, 4, async (entries) => {
    await writer.write(entries[0].sequence - 1, entries, entries.at(-1)!.sequence);
  });
}

/** The key of the uploaded bytes a segment's key refers to, if it refers. */
async function referredKeys(store: ObjectStore, key: string): Promise<string[]> {
  const reference = parseSegmentReference(key, (await store.get(key))!);
  return reference ? [reference.data] : [];
}

/** CPU seconds per stage of rehydration, each alone over the same sample of segments. */
async function stageCosts(store: ObjectStore, keys: string[], disks: DomainDisk[]): Promise<Record<string, number>> {
  const objects = await Promise.all(keys.map(async (key) => ({ key, body: (await readSegmentObject(store, key))! })));
  const bytes = objects.reduce((sum, o) => sum + o.body.length, 0);
  const time = (work: () => void) => {
    const started = performance.now();
    work();
    return mibps(bytes, (performance.now() - started) / 1000);
  };
  const segments = objects.map((o) => decodeSegment(o.key, o.body));
  const windows = new Map(disks.map((d) => [d.diskId, new PendingWrites(d.diskId, d.sizeBytes)]));
  const digests = new Map(disks.map((d) => [d.diskId, new BlockDigests(d.diskId, d.sizeBytes)]));
  const runs: Array<{ diskId: string; run: { offset: number; data: Buffer } }> = [];
  return {
    sampleMiB: round2(bytes / MiB),
    checksumMiBps: round2(time(() => objects.forEach((o) => createHash('sha256').update(o.body).digest()))),
    // As the product unpacks: stored blocks copied out, anything else through zlib.
    decompressMiBps: round2(time(() => objects.forEach((o) => unpackStoredBlocks(o.body.subarray(64), o.body.readUInt32BE(32)) ?? inflateRawSync(o.body.subarray(64))))),
    decodeWholeMiBps: round2(time(() => objects.forEach((o) => decodeSegment(o.key, o.body)))),
    applyToWindowMiBps: round2(
      time(() => {
        for (const segment of segments) for (const entry of segment.entries) windows.get(entry.diskId)!.apply(entry.offset, entry.data);
        for (const window of windows.values()) runs.push(...window.take(4 * MiB).map((run) => ({ diskId: window.diskId, run })));
      }),
    ),
    blockDigestsMiBps: round2(time(() => runs.forEach(({ diskId, run }) => digests.get(diskId)!.record(run)))),
  };
}

async function main(): Promise<void> {
  const stack = await startTestStack();
  try {
    const store = new ObjectStore(stack.s3Client, stack.s3Settings);
    const bucket = stack.s3Settings.bucket;

    // --- rehydration ---------------------------------------------------------------------------
    const disks = Array.from({ length: DISK_COUNT }, (_, i) => ({ vm: `vm-${i % 4}`, diskId: `disk-${i}`, sizeBytes: Math.floor((DOMAIN_MIB * MiB) / DISK_COUNT / BASE_CHUNK_BYTES) * BASE_CHUNK_BYTES }));
    const domain = 'bench-rehydration';
    const buildStarted = performance.now();
    await buildDomain(store, domain, disks);
    const buildSeconds = (performance.now() - buildStarted) / 1000;
    const ownership = new Ownership(store, domain);
    const chain = await resolveChain(store, ownership);
    const baseChunks = await store.list(ownership.keys.basesPrefix());
    // A reader fetches a large segment's key (a reference) and then its uploaded bytes: the raw GET fetches both.
    const segmentKeys = (await Promise.all(chain.map(async (l) => [l.key, ...(await referredKeys(store, l.key))]))).flat();
    const keys = [...baseChunks.keys.filter((k) => !k.endsWith('.json')), ...segmentKeys];
    const objectBytes = chain.reduce((sum, l) => sum + l.bytes, 0) + baseChunks.keys.reduce((sum, k) => sum + (k.endsWith('.json') ? 0 : baseChunks.sizes.get(k)!), 0);
    const common = { s3: stack.s3Settings, domain, disks, keys, parallel: PARALLEL, dir: path.join(tmpdir(), `bench-rehydration-${process.pid}`) };
    const rawGet: MeasuredRun[] = [];
    const getAndWrite: MeasuredRun[] = [];
    const rehydration: MeasuredRun[] = [];
    const measured = (config: RunConfig, nodeOptions?: string[]): MeasuredRun => {
      const before = cpuSnapshot({ seaweedfs: stack.s3Process.pid });
      const childrenBefore = exitedChildrenCpuSeconds();
      const result = runRehydrationProcess(config, nodeOptions);
      const cpu = cpuDuring(before, cpuSnapshot({ seaweedfs: stack.s3Process.pid }));
      // An exited child is no longer in the process table the snapshot reads: it counts as another process.
      const otherProcessesCpuSeconds = cpu['other processes'] - (exitedChildrenCpuSeconds() - childrenBefore);
      return { ...result, seaweedfsCpuSeconds: cpu.seaweedfs, otherProcessesCpuSeconds };
    };
    for (let run = 0; run < RUNS; run++) {
      rawGet.push(measured({ ...common, mode: 'raw-get' }));
      getAndWrite.push(measured({ ...common, mode: 'get-and-write' }));
      // BENCH_CPU_PROF=<dir>: a CPU profile of the last rehydration run, for `node --cpu-prof` readers.
      const profile = process.env.BENCH_CPU_PROF && run === RUNS - 1 ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
      rehydration.push(measured({ ...common, mode: 'rehydrate' }, profile));
      console.log(`run ${run + 1}: raw GET ${mibps(objectBytes, rawGet.at(-1)!.seconds).toFixed(1)} MiB/s, GET and write ${mibps(objectBytes, getAndWrite.at(-1)!.seconds).toFixed(1)} MiB/s, rehydration ${mibps(objectBytes, rehydration.at(-1)!.seconds).toFixed(1)} MiB/s, peak RSS ${rehydration.at(-1)!.maxRssMiB} MiB`);
    }
    const stages = await stageCosts(store, chain.slice(0, 8).map((l) => l.key), disks);

    // --- ingest --------------------------------------------------------------------------------
    const ingestDisks = Array.from({ length: DISK_COUNT }, (_, i) => ({ vm: 'vm-ingest', diskId: `ingest-${i}`, sizeBytes: Math.ceil((INGEST_MIB * MiB) / DISK_COUNT / BLOCK) * BLOCK }));
    const writes = [...randomWrites(ingestDisks, INGEST_MIB * MiB)];
    const payload = randomBytes(SEGMENT_BYTES);
    const rawPut: number[] = [];
    const ingest: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const putStarted = performance.now();
      await forEachLimited([...Array(Math.ceil((INGEST_MIB * MiB) / SEGMENT_BYTES)).keys()], PARALLEL, async (i) => {
        await stack.s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: `raw-put/${run}/${i}`, Body: payload }));
      });
      rawPut.push((performance.now() - putStarted) / 1000);
      const source = new MemorySite();
      for (const disk of ingestDisks) await source.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
      for (const write of writes) source.guestWrite(write.disk.vm, write.disk.diskId, write.offset, write.data, Date.now());
      const ingestOwnership = new Ownership(store, `bench-ingest-${run}`);
      await ingestOwnership.claim('primary');
      const ingestStarted = performance.now();
      await drainJournal(store, ingestOwnership, source, { epoch: 1, site: 'primary', cursor: 0, vms: ['vm-ingest'], maxEntries: 100_000, maxBytes: SEGMENT_BYTES, trimJournal: true });
      ingest.push((performance.now() - ingestStarted) / 1000);
      console.log(`run ${run + 1}: raw PUT ${mibps(INGEST_MIB * MiB, rawPut.at(-1)!).toFixed(1)} MiB/s, ingest ${mibps(INGEST_MIB * MiB, ingest.at(-1)!).toFixed(1)} MiB/s`);
    }

    const results = {
      setup: {
        domainMiB: DOMAIN_MIB,
        disks: DISK_COUNT,
        objects: keys.length,
        objectMiB: round2(objectBytes / MiB),
        baseChunks: keys.length - chain.length,
        segments: chain.length,
        segmentMiB: SEGMENT_BYTES / MiB,
        writeSizes: WRITE_SIZES,
        parallelRequests: PARALLEL,
        runs: RUNS,
        order: 'interleaved: raw GET, GET and write, product, raw GET, ...',
        data: 'random (incompressible)',
        target: 'sparse files, positioned writes on the thread pool',
        domainBuildSeconds: round2(buildSeconds),
        ingestMiB: INGEST_MIB,
      },
      rehydration: {
        rawParallelGetMiBps: summary(rawGet.map((r) => mibps(objectBytes, r.seconds))),
        rehydrationMiBps: summary(rehydration.map((r) => mibps(objectBytes, r.seconds))),
        rehydrationToRawGetRatio: summary(rehydration.map((r, i) => rawGet[i].seconds / r.seconds)),
        // The same GETs with their bytes written to as many sparse files: what this machine's store and disk allow together.
        getAndWriteMiBps: summary(getAndWrite.map((r) => mibps(objectBytes, r.seconds))),
        rehydrationToGetAndWriteRatio: summary(rehydration.map((r, i) => getAndWrite[i].seconds / r.seconds)),
        peakRssMiB: summary(rehydration.map((r) => r.maxRssMiB)),
        rawGetPeakRssMiB: summary(rawGet.map((r) => r.maxRssMiB)),
        // Where the RSS went: the JS heap, or buffers outside it (peaks of process.memoryUsage(), sampled).
        memoryPeaksMiB: { rehydration: rehydration.map((r) => r.memoryPeaksMiB), rawGet: rawGet.map((r) => r.memoryPeaksMiB) },
        getAndWriteDiskWriteBusySeconds: summary(getAndWrite.map((r) => r.stages!.diskWriteBusy)),
        verifiedMiB: round2(rehydration[0].bytes / MiB),
        busySecondsOfLastRun: Object.fromEntries(Object.entries(rehydration.at(-1)!.stages!).map(([k, v]) => [k, round2(v)])),
        cpuPerStageAlone: stages,
        cpu: cpuBudget(objectBytes, stages.checksumMiBps, { rawGet, getAndWrite, rehydration }),
      },
      ingest: {
        rawParallelPutMiBps: summary(rawPut.map((s) => mibps(INGEST_MIB * MiB, s))),
        replicationIngestMiBps: summary(ingest.map((s) => mibps(INGEST_MIB * MiB, s))),
        ingestToRawPutRatio: summary(ingest.map((s, i) => rawPut[i] / s)),
      },
    };
    // Another size is another row of issue 15's table (peak RSS flat for 2 and 8 GiB): a file of its own.
    reportBenchResults(DOMAIN_MIB === DEFAULT_DOMAIN_MIB ? 'datapath-rehydration' : `datapath-rehydration-${DOMAIN_MIB}mib`, results);
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
