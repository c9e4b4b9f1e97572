/**
 * One rehydration in a process of its own, so that its peak RSS and heap limit are its alone
 * (the rehydration benchmark, and the test that rehydrates more than the heap limit): `rehydrate`
 * rebuilds a domain's disks into sparse files with positioned writes (as a site's datastore
 * holds them), `raw-get` fetches the objects it would read as fast as the store serves them
 * (the benchmark's limit), `get-and-write` also writes their bytes into as many sparse files (the
 * limit of this machine's store and disk together, without decoding, applying or reading back).
 * Configured by the JSON file REHYDRATION_PROCESS_CONFIG names; prints one JSON line. Start it
 * with `runRehydrationProcess`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { S3Settings } from '../../common/config';
import { forEachLimited } from '../../common/parallel';
import { createS3Client } from '../../common/s3';
import { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import type { DomainDisk } from '../../datapath/records';
import { rehydrate, type TargetDisks } from '../../datapath/rehydrate';
import type { CreateDiskSpec, VirtualDisk } from '../../sites/provider';
import { withMallocSettings } from '../../common/malloc-settings';
import { TYPESCRIPT_LOADER } from '../../common/child-process';

export interface RunConfig {
  mode: 'raw-get' | 'get-and-write' | 'rehydrate';
  s3: S3Settings;
  domain: string;
  disks: DomainDisk[];
  /** raw-get, get-and-write: the objects rehydration reads. */
  keys: string[];
  parallel: number;
  /** rehydrate, get-and-write: where the disk files `<diskId>.img` go; removed afterwards unless `keepFiles`. */
  dir: string;
  keepFiles?: boolean;
}

export interface RunResult {
  seconds: number;
  bytes: number;
  maxRssMiB: number;
  /** The highest of each of `process.memoryUsage()`'s figures, sampled every 200 ms: where the RSS went (the JS heap, or buffers outside it). */
  memoryPeaksMiB: { heapUsed: number; external: number; arrayBuffers: number; rss: number };
  /** rehydrate: busy time of each kind of call, summed over concurrent calls. */
  stages?: Record<string, number>;
  /** CPU seconds of this process (every thread: the main one and the pool's) from the start of the run to its end. */
  cpuSeconds: number;
}

/** Disks as sparse files, written and read with positioned I/O on the thread pool. */
class FileDisks implements TargetDisks {
  private readonly files = new Map<string, FileHandle>();
  readonly busySeconds = { write: 0, readBack: 0 };

  constructor(private readonly dir: string) {}

  async createDisk(spec: CreateDiskSpec): Promise<VirtualDisk> {
    const handle = await open(path.join(this.dir, `${spec.id}.img`), 'w+');
    await handle.truncate(spec.sizeBytes);
    this.files.set(spec.id, handle);
    return { id: spec.id, datastore: spec.datastore, sizeBytes: spec.sizeBytes, protected: spec.protected };
  }

  async writeDisk(diskId: string, offset: number, data: Buffer): Promise<void> {
    const started = performance.now();
    let done = 0;
    while (done < data.length) done += (await this.files.get(diskId)!.write(data, done, data.length - done, offset + done)).bytesWritten;
    this.busySeconds.write += (performance.now() - started) / 1000;
  }

  async readDisk(diskId: string, offset: number, length: number): Promise<Buffer> {
    const started = performance.now();
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.files.get(diskId)!.read(buffer, done, length - done, offset + done);
      // Past the end of a file reads as zeros, as on a sparse disk.
      if (bytesRead === 0) buffer.fill(0, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    this.busySeconds.readBack += (performance.now() - started) / 1000;
    return buffer;
  }

  async close(): Promise<void> {
    for (const handle of this.files.values()) await handle.close();
  }
}

/**
 * This process's peak RSS. Not `resourceUsage().maxRSS`: Linux carries that across exec, so it
 * starts at the parent's RSS; the high-water mark of /proc starts afresh with the new program.
 */
function maxRssMiB(): number {
  return Math.round(Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024);
}

/** Counts the time spent waiting for the GETs of segments and base chunks (summed over the ones in flight). */
class TimedStore extends ObjectStore {
  busySeconds = 0;

  override async getFramed(key: string): Promise<Buffer | undefined> {
    const started = performance.now();
    try {
      return await super.getFramed(key);
    } finally {
      this.busySeconds += (performance.now() - started) / 1000;
    }
  }
}

/** Samples `process.memoryUsage()` until stopped; returns the highest of each figure, in MiB. */
function sampleMemory(): () => RunResult['memoryPeaksMiB'] {
  const peaks = { heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0 };
  const sample = () => {
    const usage = process.memoryUsage();
    for (const key of Object.keys(peaks) as Array<keyof typeof peaks>) peaks[key] = Math.max(peaks[key], usage[key]);
  };
  // Never what keeps the process alive: a run that throws exits without stopping it.
  const timer = setInterval(sample, 200).unref();
  return () => {
    clearInterval(timer);
    sample();
    return Object.fromEntries(Object.entries(peaks).map(([key, bytes]) => [key, Math.round(bytes / 2 ** 20)])) as RunResult['memoryPeaksMiB'];
  };
}

async function run(config: RunConfig): Promise<RunResult> {
  const memoryPeaks = sampleMemory();
  const client = createS3Client(config.s3);
  const started = performance.now();
  const startedCpu = process.cpuUsage();
  const elapsed = () => (performance.now() - started) / 1000;
  const cpuSeconds = () => {
    const { user, system } = process.cpuUsage(startedCpu);
    return (user + system) / 1e6;
  };
  const rawGet = async (key: string) => (await client.send(new GetObjectCommand({ Bucket: config.s3.bucket, Key: key }))).Body!.transformToByteArray();
  if (config.mode === 'raw-get') {
    let bytes = 0;
    await forEachLimited(config.keys, config.parallel, async (key) => {
      bytes += (await rawGet(key)).length;
    });
    return { seconds: elapsed(), bytes, maxRssMiB: maxRssMiB(), memoryPeaksMiB: memoryPeaks(), cpuSeconds: cpuSeconds() };
  }
  mkdirSync(config.dir, { recursive: true });
  if (config.mode === 'get-and-write') return getAndWrite(config, rawGet, elapsed, cpuSeconds, memoryPeaks);
  const target = new FileDisks(config.dir);
  try {
    const store = new TimedStore(client, config.s3);
    const result = await rehydrate({ store, ownership: new Ownership(store, config.domain), target, disks: config.disks, datastore: 'bench', upTo: { kind: 'latest' }, readConcurrency: config.parallel, writeConcurrency: config.parallel });
    const seconds = elapsed();
    const verified = result.disks.reduce((sum, d) => sum + d.verifiedBytes, 0);
    return { seconds, bytes: verified, maxRssMiB: maxRssMiB(), memoryPeaksMiB: memoryPeaks(), cpuSeconds: cpuSeconds(), stages: { getBusy: store.busySeconds, diskWriteBusy: target.busySeconds.write, readBackBusy: target.busySeconds.readBack } };
  } finally {
    await target.close();
    if (!config.keepFiles) rmSync(config.dir, { recursive: true, force: true });
  }
}

/** Object i is written after the objects before it on disk i mod the disk count: as many bytes as rehydration reads, to as many files. */
async function getAndWrite(config: RunConfig, rawGet: (key: string) => Promise<Uint8Array>, elapsed: () => number, cpuSeconds: () => number, memoryPeaks: () => RunResult['memoryPeaksMiB']): Promise<RunResult> {
  const target = new FileDisks(config.dir);
  try {
    for (const disk of config.disks) await target.createDisk({ id: disk.diskId, datastore: 'bench', sizeBytes: disk.sizeBytes, protected: false });
    const nextOffset = config.disks.map(() => 0);
    let bytes = 0;
    await forEachLimited(
      config.keys.map((key, index) => ({ key, index })),
      config.parallel,
      async ({ key, index }) => {
        const body = await rawGet(key);
        const disk = index % config.disks.length;
        const offset = nextOffset[disk];
        nextOffset[disk] += body.length;
        await target.writeDisk(config.disks[disk].diskId, offset, Buffer.from(body.buffer, body.byteOffset, body.length));
        bytes += body.length;
      },
    );
    return { seconds: elapsed(), bytes, maxRssMiB: maxRssMiB(), memoryPeaksMiB: memoryPeaks(), cpuSeconds: cpuSeconds(), stages: { diskWriteBusy: target.busySeconds.write } };
  } finally {
    await target.close();
    if (!config.keepFiles) rmSync(config.dir, { recursive: true, force: true });
  }
}

/** Runs `config` in a new Node process with `nodeOptions` (such as a heap limit) and returns what it printed. */
export function runRehydrationProcess(config: RunConfig, nodeOptions: string[] = []): RunResult {
  // In a file, not the environment: the object keys of an 8 GiB domain pass the kernel's 128 KiB limit for one variable.
  const configFile = path.join(mkdtempSync(path.join(tmpdir(), 'rehydration-process-')), 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  try {
    const child = spawnSync(process.execPath, [...nodeOptions, ...TYPESCRIPT_LOADER, __filename], { env: withMallocSettings({ ...process.env, REHYDRATION_PROCESS_CONFIG: configFile }), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (child.status !== 0) throw new Error(`${config.mode} process failed (${child.status ?? child.signal ?? child.error?.message}): ${child.stderr}`);
    return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as RunResult;
  } finally {
    rmSync(path.dirname(configFile), { recursive: true, force: true });
  }
}

if (process.env.REHYDRATION_PROCESS_CONFIG) {
  run(JSON.parse(readFileSync(process.env.REHYDRATION_PROCESS_CONFIG, 'utf8')) as RunConfig).then(
    (result) => console.log(JSON.stringify(result)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
