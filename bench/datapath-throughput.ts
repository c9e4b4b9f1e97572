/**
 * Replication data path against the same S3 server's raw limits, as ratios:
 *  - replication ingest (journal -> compressed, checksummed, fenced segments) / raw parallel PUT
 *  - rehydration (segments -> disks, verified) / raw parallel GET of the same objects
 *  - replication lag (guest write -> segment acknowledged in S3) p50/p99 at a stated write rate
 *  - initial sync (live disks -> checksummed base chunks) / raw parallel PUT, and rehydration
 *    from that base
 * The site side is an in-memory journal and disk set, so the numbers are the data path's own;
 * the written data is random (incompressible), the worst case for segment size.
 */
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ObjectStore } from '../datapath/object-store';
import { BASE_CHUNK_BYTES, commitBase, copyDisksIntoBase } from '../datapath/base-image';
import { Ownership } from '../datapath/ownership';
import { forEachLimited } from '../common/parallel';
import { rehydrate } from '../datapath/rehydrate';
import { replicate } from '../datapath/replicator';
import { resolveChain } from '../datapath/log-chain';
import { SegmentWriter } from '../datapath/segment-writer';
import { startTestStack } from '../test/harness/stack';
import { drainJournal, MemorySite } from '../test/unit/datapath-memory-site';
import { reportBenchResults } from './results-file';

const MiB = 1024 * 1024;
const BLOCK = 4096;
const TOTAL = 48 * MiB;
const SEGMENT_BYTES = 2 * MiB;
const PARALLEL = 8;
const DISKS = [0, 1, 2].map((i) => ({ vm: 'vm-1', diskId: `disk-${i}`, sizeBytes: 16 * MiB }));
const LAG_WRITES_PER_SECOND = 500;
const LAG_SECONDS = 10;

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function newSource(writes: number, clock: () => number): Promise<MemorySite> {
  const site = new MemorySite();
  for (const disk of DISKS) await site.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
  for (let i = 0; i < writes; i++) {
    const disk = DISKS[i % DISKS.length];
    site.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (disk.sizeBytes / BLOCK)) * BLOCK, randomBytes(BLOCK), clock());
  }
  return site;
}

async function main(): Promise<void> {
  const stack = await startTestStack();
  try {
    const store = new ObjectStore(stack.s3Client, stack.s3Settings);
    const bucket = stack.s3Settings.bucket;
    const objects = TOTAL / SEGMENT_BYTES;
    const payload = randomBytes(SEGMENT_BYTES);

    const rawPut = await seconds(() =>
      forEachLimited([...Array(objects).keys()], PARALLEL, async (i) => {
        await stack.s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${i}`, Body: payload }));
      }),
    );
    const rawGet = await seconds(() =>
      forEachLimited([...Array(objects).keys()], PARALLEL, async (i) => {
        const result = await stack.s3Client.send(new GetObjectCommand({ Bucket: bucket, Key: `raw/${i}` }));
        await result.Body!.transformToByteArray();
      }),
    );

    const source = await newSource(TOTAL / BLOCK, Date.now);
    const ownership = new Ownership(store, 'bench');
    await ownership.claim('primary');
    const ingest = await seconds(() => drainJournal(store, ownership, source, { epoch: 1, site: 'primary', cursor: 0, vms: ['vm-1'], maxEntries: 100_000, maxBytes: SEGMENT_BYTES, trimJournal: true }));
    const segments = (await resolveChain(store, ownership)).length;

    const target = new MemorySite();
    const rehydration = await seconds(() => rehydrate({ store, ownership, target, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' }, readConcurrency: PARALLEL }));

    // Initial sync of the disks the ingest wrote (about 63% of their 4 KiB blocks hold random data, the rest zeros).
    const syncOwnership = new Ownership(store, 'bench-sync');
    await syncOwnership.claim('primary');
    const diskBytes = DISKS.reduce((sum, d) => sum + d.sizeBytes, 0);
    const baseId = syncOwnership.keys.baseId(1, 0);
    const initialSync = await seconds(() => copyDisksIntoBase({ store, ownership: syncOwnership, baseId, disks: DISKS, source, concurrency: PARALLEL, onProgress: () => undefined }));
    await commitBase(store, syncOwnership, { epoch: 1, cursor: 0, kind: 'initial-sync', disks: DISKS, consistentFrom: null, timestamp: Date.now(), createdAt: Date.now() });
    const fromBase = await seconds(() => rehydrate({ store, ownership: syncOwnership, target: new MemorySite(), disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' }, readConcurrency: PARALLEL }));

    // Lag: a paced writer and a replicator running together; each write's lag ends when the segment holding it is acknowledged.
    const lagOwnership = new Ownership(store, 'bench-lag');
    await lagOwnership.claim('primary');
    const live = await newSource(0, Date.now);
    const lags: number[] = [];
    let writing = true;
    let acked = 0;
    const writer = (async () => {
      const started = Date.now();
      let issued = 0;
      while (Date.now() - started < LAG_SECONDS * 1000) {
        const due = Math.floor(((Date.now() - started) / 1000) * LAG_WRITES_PER_SECOND) - issued;
        for (let i = 0; i < due; i++, issued++) {
          const disk = DISKS[issued % DISKS.length];
          live.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (disk.sizeBytes / BLOCK)) * BLOCK, randomBytes(BLOCK), Date.now());
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      writing = false;
    })();
    await replicate({
      source: live,
      writer: new SegmentWriter(store, lagOwnership, 1, 'primary'),
      vms: ['vm-1'],
      cursor: 0,
      maxEntries: 100_000,
      maxBytes: SEGMENT_BYTES,
      idlePollMs: 5,
      trimJournal: false,
      onSegment: (p) => {
        const now = Date.now();
        for (const entry of live.journal) if (entry.sequence > acked && entry.sequence <= p.cursor) lags.push(now - entry.timestamp);
        acked = p.cursor;
      },
      shouldStop: () => !writing && acked >= (live.journal.at(-1)?.sequence ?? 0),
    });
    await writer;

    const mbps = (bytes: number, s: number) => Math.round((bytes / MiB / s) * 10) / 10;
    const results = {
      setup: { totalMiB: TOTAL / MiB, blockBytes: BLOCK, segmentMiB: SEGMENT_BYTES / MiB, parallelRequests: PARALLEL, data: 'random (incompressible)', segments },
      rawParallelPutMiBps: mbps(TOTAL, rawPut),
      rawParallelGetMiBps: mbps(TOTAL, rawGet),
      replicationIngestMiBps: mbps(TOTAL, ingest),
      rehydrationMiBps: mbps(TOTAL, rehydration),
      ingestToRawPutRatio: Math.round((rawPut / ingest) * 100) / 100,
      rehydrationToRawGetRatio: Math.round((rawGet / rehydration) * 100) / 100,
      initialSync: {
        diskMiB: diskBytes / MiB,
        chunkMiB: BASE_CHUNK_BYTES / MiB,
        parallelChunks: PARALLEL,
        initialSyncMiBps: mbps(diskBytes, initialSync),
        initialSyncToRawPutRatio: Math.round((rawPut / TOTAL / (initialSync / diskBytes)) * 100) / 100,
        rehydrationFromBaseMiBps: mbps(diskBytes, fromBase),
      },
      lag: {
        writesPerSecond: LAG_WRITES_PER_SECOND,
        writeBytes: BLOCK,
        seconds: LAG_SECONDS,
        writes: lags.length,
        p50Ms: percentile(lags, 50),
        p99Ms: percentile(lags, 99),
        maxMs: Math.max(...lags),
      },
    };
    reportBenchResults('datapath-throughput', results);
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
