/**
 * Disk I/O through the simulated site service (HTTP, journal for protected disks, sparse files)
 * against raw file I/O of the same sizes on the same machine, as ratios. The site is the data
 * source of replication and the target of rehydration, so its overhead bounds both.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { prepareTestSites } from '../test/harness/sites';
import { writeBenchResults } from './results-file';

const MiB = 1024 * 1024;
const TOTAL = 128 * MiB;
const CHUNK = 1 * MiB;
const PARALLEL = 4;

async function timed(work: () => Promise<void> | void): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function inParallel(count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    for (let i = next++; i < count; i = next++) await work(i);
  }));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-bench-site-'));
  const sites = await prepareTestSites(dir);
  const recovery = await sites.start('recovery');
  const primary = await sites.start('primary');
  try {
    const chunks = TOTAL / CHUNK;
    const data = randomBytes(CHUNK);
    await recovery.client.createDisk({ id: 'bench-unprotected', datastore: 'ds-b', sizeBytes: TOTAL, protected: false });
    await primary.client.createDisk({ id: 'bench-protected', datastore: 'ds-a', sizeBytes: TOTAL, protected: true });

    const rawFile = path.join(dir, 'raw.img');
    const fd = openSync(rawFile, 'w+');
    const rawWrite = await timed(() => {
      for (let i = 0; i < chunks; i++) writeSync(fd, data, 0, CHUNK, i * CHUNK);
    });
    const buffer = Buffer.alloc(CHUNK);
    const rawRead = await timed(() => {
      for (let i = 0; i < chunks; i++) readSync(fd, buffer, 0, CHUNK, i * CHUNK);
    });
    closeSync(fd);

    const siteWrite = await timed(() => inParallel(chunks, (i) => recovery.client.writeDisk('bench-unprotected', i * CHUNK, data)));
    const journaledWrite = await timed(() => inParallel(chunks, (i) => primary.client.writeDisk('bench-protected', i * CHUNK, data)));
    const siteRead = await timed(() => inParallel(chunks, async (i) => void (await recovery.client.readDisk('bench-unprotected', i * CHUNK, CHUNK))));
    const journalRead = await timed(async () => {
      for (let after = 0; ; ) {
        const batch = await primary.client.readJournal({ afterSequence: after, maxBytes: 16 * MiB });
        if (batch.entries.length === 0) break;
        after = batch.entries.at(-1)!.sequence;
      }
    });

    const mbps = (seconds: number) => Math.round((TOTAL / MiB / seconds) * 10) / 10;
    const ratio = (a: number, b: number) => Math.round((b / a) * 1000) / 1000;
    const results = {
      bytes: TOTAL,
      chunkBytes: CHUNK,
      parallelRequests: PARALLEL,
      limit: { rawFileWriteMiBps: mbps(rawWrite), rawFileReadMiBps: mbps(rawRead) },
      site: {
        writeMiBps: mbps(siteWrite),
        journaledWriteMiBps: mbps(journaledWrite),
        readMiBps: mbps(siteRead),
        journalDrainMiBps: mbps(journalRead),
      },
      ratios: {
        writeToRawWrite: ratio(siteWrite, rawWrite),
        journaledWriteToRawWrite: ratio(journaledWrite, rawWrite),
        readToRawRead: ratio(siteRead, rawRead),
        journalDrainToRawRead: ratio(journalRead, rawRead),
      },
    };
    const file = writeBenchResults('site-io', results);
    console.log(JSON.stringify(results, null, 2));
    console.log(`results written to ${file}`);
  } finally {
    await primary.process.stop();
    await recovery.process.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
