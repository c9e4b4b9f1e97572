import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ReaderLease } from '../../datapath/lease';
import { Ownership } from '../../datapath/ownership';
import { rehydrate } from '../../datapath/rehydrate';
import { listRestorePoints } from '../../datapath/restore-points';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { protectStatusQuery } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { atChaosSize } from '../harness/crashes';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';
import { failoverSiteDefinitions, protectAtPrimary } from '../fixtures/failover-domains';
import { MemorySite } from '../unit/datapath-memory-site';

const DOMAIN = 'golf';
/**
 * `npm run chaos -- protection-soak` soaks for the issue's ten minutes; npm test for three
 * protection windows, where the points' contents are checked and the bounds are not (below).
 */
const SOAK_MS = atChaosSize(10 * 60_000, 30_000);
const SOAK_IS_FULL_SIZE = SOAK_MS >= 10 * 60_000;
const PROTECTION_WINDOW_MS = 10_000;
const SAMPLE_EVERY_MS = 2_000;
const POINT_INTERVAL_MS = 3_000;

interface Sample {
  atMs: number;
  rssMiB: Record<string, number>;
  objects: number;
  /** Objects by the first part of their key under the domain (log, bases, points, …). */
  byKind: Record<string, number>;
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];

describe('protection soak on real Temporal, S3, a site and its workers: a workload writing while restore points are taken and garbage collection runs on a short window', () => {
  const { stack, sites, primary, store, workers } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), sites: ['primary'], workers: ['orchestration', 'primary'] });
  const ownership = () => new Ownership(store, DOMAIN);

  it('every restore point taken rehydrates byte-identical to the workload, the workers\' memory stays flat and the bucket\'s object count stays bounded', async (t) => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'soak' });
    // A point every 3 s, compacted away 10 s later, collected after every other replicator run (about every 2 s).
    await protectAtPrimary(stack.client, DOMAIN, { gcEveryRuns: 2, protectionWindowMs: PROTECTION_WINDOW_MS, restorePointIntervalMs: POINT_INTERVAL_MS });
    const record = () => readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));

    const verified = new Set<string>();
    const samples: Sample[] = [];
    const started = Date.now();
    let nextSampleAt = started;
    while (Date.now() - started < SOAK_MS) {
      // Each point as soon as it is listed, under a reader lease as the product's rehydrations read:
      // a pin keeps what the point needs from the newest base, not the older base a plan may
      // already have chosen when a compaction commits (the pinned variant lost a segment mid-read).
      for (const point of (await listRestorePoints(store, ownership())).filter((p) => !verified.has(p.id))) {
        const target = new MemorySite();
        const lease = new ReaderLease(store, ownership(), 'protection-soak');
        await lease.hold(undefined);
        await rehydrate({ store, ownership: ownership(), target, disks: point.disks!, datastore: 'ds', upTo: { kind: 'position', position: point.position }, onPlanned: (base) => lease.hold(base) });
        await lease.release();
        const written = record();
        for (const disk of point.disks!) {
          assert.ok(target.disks.get(disk.diskId)!.equals(expectedDiskContent(written, disk.diskId, disk.sizeBytes, { sequence: point.lastJournalSequence })), `${disk.diskId} at restore point ${point.id}`);
        }
        verified.add(point.id);
      }
      if (Date.now() >= nextSampleAt) {
        const rss = Object.fromEntries([...workers.running.entries()].map(([name, child]) => [name, Math.round(rssMiB(child.pid))]));
        const { keys } = await store.list(ownership().keys.root);
        const byKind: Record<string, number> = {};
        for (const key of keys) byKind[key.slice(ownership().keys.root.length).split('/')[0]] = (byKind[key.slice(ownership().keys.root.length).split('/')[0]] ?? 0) + 1;
        samples.push({ atMs: Date.now() - started, rssMiB: rss, objects: keys.length, byKind });
        nextSampleAt += SAMPLE_EVERY_MS;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    // Warm-up: the first two windows fill the log and the workers' heaps; after that nothing may keep growing.
    const settled = samples.filter((s) => s.atMs >= 2 * PROTECTION_WINDOW_MS);
    const firstHalf = settled.slice(0, Math.floor(settled.length / 2));
    const secondHalf = settled.slice(Math.floor(settled.length / 2));
    const objectsBound = Math.max(...firstHalf.map((s) => s.objects));
    const objectsLater = Math.max(...secondHalf.map((s) => s.objects));
    const rss = Object.keys(settled[0].rssMiB).map((name) => ({
      name,
      early: quantile(firstHalf.map((s) => s.rssMiB[name]), 0.5),
      late: quantile(secondHalf.map((s) => s.rssMiB[name]), 0.5),
      atStart: samples[0].rssMiB[name],
      atEnd: samples.at(-1)!.rssMiB[name],
    }));
    t.diagnostic(
      `measured over ${Math.round(SOAK_MS / 1000)} s: ${verified.size} restore points rehydrated byte-identical; objects of the domain at most ${objectsBound} in the first half after warm-up and ${objectsLater} in the second (${JSON.stringify(settled[0].byKind)} after warm-up, ${JSON.stringify(samples.at(-1)!.byKind)} at the end); RSS: ${rss.map((r) => `${r.name} ${r.atStart} MiB at start, ${r.early} → ${r.late} MiB (medians of the halves after warm-up), ${r.atEnd} MiB at the end`).join('; ')}`,
    );

    const status = await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', 1)).query(protectStatusQuery);
    assert.equal(status.mode, 'log', 'protection never fell back to bitmap mode');
    // Points are taken between replicator runs, which a loaded machine spaces out: a third of the nominal rate at least.
    const expectedPoints = Math.floor(SOAK_MS / (3 * POINT_INTERVAL_MS));
    assert.ok(verified.size >= expectedPoints, `${verified.size} restore points verified, at least ${expectedPoints} expected`);
    // A steady state takes minutes on a loaded machine (CI's 50 s, as npm test soaked before, saw the log still growing before its first compaction): bounds are judged at the soak's full size.
    if (!SOAK_IS_FULL_SIZE) return;
    assert.ok(objectsLater <= objectsBound * 1.25 + 5, `the domain's objects kept growing: at most ${objectsBound} in the first half, ${objectsLater} in the second`);
    for (const { name, early, late } of rss) assert.ok(late <= early * 1.25 + 32, `${name}'s memory kept growing: median ${early} MiB in the first half, ${late} MiB in the second`);
  });
});
