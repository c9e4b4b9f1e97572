import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDatapathActivities, type FollowLogInput, type RehydrateInput } from '../../activities/datapath';
import { commitBase, copyDisksIntoBase, ensureSyncIntent } from '../../datapath/base-image';
import { finishResync, trackDirtyRegions, writeResyncSegment } from '../../datapath/bitmap';
import { follow, laterCursor, type FollowCursor, type FollowOptions, type FollowResult } from '../../datapath/follower';
import { collectGarbage } from '../../datapath/gc';
import { ReaderLease } from '../../datapath/lease';
import { resolveChain } from '../../datapath/log-chain';
import type { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { leaseSchema, parseRecord, RECORD_FORMAT_VERSION, type DomainDisk, type Manifest } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import { SegmentWriter } from '../../datapath/segment-writer';
import type { SiteProvider } from '../../sites/provider';
import { useTestSites } from '../harness/sites';
import { useTestStack } from '../harness/stack';
import { drainJournal, MemorySite } from '../unit/datapath-memory-site';

const DISKS: DomainDisk[] = [
  { vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 1024 * 1024 },
  { vm: 'app-1', diskId: 'app-1-disk-0', sizeBytes: 512 * 1024 },
];
const VMS = ['db-1', 'app-1'];

async function recordManifest(store: ObjectStore, ownership: Ownership, disks: DomainDisk[]): Promise<void> {
  const manifest: Manifest = {
    formatVersion: RECORD_FORMAT_VERSION,
    domain: ownership.domain,
    protectedSite: 'primary',
    disks,
    vms: VMS.map((name) => ({ name, cpus: 1, memoryMiB: 512, diskIds: disks.filter((d) => d.vm === name).map((d) => d.diskId), nics: [], metadata: {} })),
    protectionWindowMs: 1_000,
    updatedAt: 0,
  };
  await store.put(ownership.keys.manifest(), JSON.stringify(manifest), 'application/json');
}

/**
 * A protected domain at a primary in memory: `burst` makes random guest writes (at clock
 * `start + i`) and replicates them in segments of 15 writes; with `initialSync` the log starts
 * from a committed initial-sync base of disks that already hold data.
 */
async function protectedDomain(store: ObjectStore, domain: string, options: { initialSync?: boolean; disks?: DomainDisk[] } = {}) {
  const disks = options.disks ?? DISKS;
  const ownership = new Ownership(store, domain);
  await ownership.claim('primary');
  const primary = new MemorySite();
  for (const disk of disks) {
    await primary.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
    if (options.initialSync) randomBytes(100_000).copy(primary.disks.get(disk.diskId)!, 8192);
  }
  await recordManifest(store, ownership, disks);
  if (options.initialSync) {
    await ensureSyncIntent(store, ownership, { epoch: 1, cursor: 0, site: 'primary', now: 900 });
    await copyDisksIntoBase({ store, ownership, baseId: ownership.keys.baseId(1, 0), disks, source: primary, onProgress: () => undefined });
    await commitBase(store, ownership, { epoch: 1, cursor: 0, kind: 'initial-sync', disks, consistentFrom: null, timestamp: 950, createdAt: 950 });
  }
  const log = { cursor: 0 };
  const write = (count: number, start: number, on = disks) => {
    for (let i = 0; i < count; i++) {
      const disk = on[i % on.length];
      const length = 512 * (1 + (i % 16));
      primary.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (disk.sizeBytes - length)), randomBytes(length), start + i);
    }
  };
  const drain = async () => {
    if ((primary.journal.at(-1)?.sequence ?? 0) <= log.cursor) return;
    ({ cursor: log.cursor } = await drainJournal(store, ownership, primary, { epoch: 1, site: 'primary', cursor: log.cursor, vms: VMS, maxEntries: 15, maxBytes: 1024 * 1024, inlineMaxBytes: 4096 }));
  };
  const burst = async (count: number, start: number, on = disks) => {
    write(count, start, on);
    await drain();
  };
  const newTarget = async (targetDisks = disks) => {
    const target = new MemorySite();
    for (const disk of targetDisks) await target.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: false });
    return target;
  };
  return { ownership, primary, log, write, drain, burst, newTarget };
}

function assertSameDisks(target: MemorySite, expected: MemorySite, disks: DomainDisk[], what: string): void {
  for (const disk of disks) assert.ok(target.disks.get(disk.diskId)!.equals(expected.disks.get(disk.diskId)!), `${what}: ${disk.diskId} differs`);
}

const clone = (cursor: FollowCursor | undefined): FollowCursor | undefined => (cursor ? (JSON.parse(JSON.stringify(cursor)) as FollowCursor) : undefined);

describe('log follower on real S3: continuous rehydration from base + log, resumable, GC-safe, held at inconsistent stretches', () => {
  const { store } = useTestStack();
  const { recovery } = useTestSites({ start: ['recovery'] });
  const followTo = (ownership: Ownership, target: MemorySite, extra: Partial<FollowOptions> = {}) =>
    follow({ store, ownership, target, disks: DISKS, untilEnd: true, idlePollMs: 10, ...extra });

  it('follows from the latest base to the end, then applies only the new segments from its cursor', async () => {
    const domain = await protectedDomain(store, 'follow-basic', { initialSync: true });
    await domain.burst(90, 1_000);
    const target = await domain.newTarget();
    let planned: string | null | undefined;
    const first = await followTo(domain.ownership, target, { onPlanned: (base) => void (planned = base) });
    assert.equal(planned, domain.ownership.keys.baseId(1, 0));
    assert.deepEqual([first.caughtUp, first.heldAt, first.membershipChanged, first.lag], [true, undefined, undefined, { segments: 0, bytes: 0, ms: 0 }]);
    assert.equal(first.segmentsApplied, 6);
    assert.ok(first.bytesRead.base > 0 && first.bytesRead.log > 0);
    assert.equal(first.appliedUpTo?.timestamp, 1_089);
    assertSameDisks(target, domain.primary, DISKS, 'after the first follow');
    const rehydrated = await domain.newTarget();
    await rehydrate({ store, ownership: domain.ownership, target: rehydrated, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
    assertSameDisks(target, rehydrated, DISKS, 'against a rehydration to the end');

    await domain.burst(45, 2_000);
    const applied = first.cursor!.applied!;
    const newSegments = (await resolveChain(store, domain.ownership)).filter((l) => l.segment > applied.segment);
    assert.equal(newSegments.length, 3);
    const second = await followTo(domain.ownership, target, { cursor: first.cursor! });
    assert.equal(second.segmentsApplied, 3);
    assert.deepEqual(second.bytesRead, { base: 0, log: newSegments.reduce((sum, l) => sum + l.bytes, 0) }, 'only the new segments are read');
    assert.equal(second.appliedUpTo?.timestamp, 2_044);
    assertSameDisks(target, domain.primary, DISKS, 'after the second follow');
  });

  it('a run stopped while it writes the base leaves a cursor past the chunks written, and the next run writes only the others', async () => {
    const disks: DomainDisk[] = Array.from({ length: 12 }, (_, i) => ({ vm: VMS[i % 2], diskId: `base-stop-${i}`, sizeBytes: 1024 * 1024 }));
    const domain = await protectedDomain(store, 'follow-base-stop', { initialSync: true, disks });
    await domain.burst(30, 1_000);
    const target = await domain.newTarget();
    const writes: string[] = [];
    const recording = Object.assign(Object.create(target) as MemorySite, {
      writeDisk: (diskId: string, offset: number, data: Buffer) => {
        writes.push(diskId);
        return target.writeDisk(diskId, offset, data);
      },
    });
    // A run's time is up after five chunks of the twelve.
    const first = await followTo(domain.ownership, recording, { disks, readConcurrency: 2, shouldStop: () => writes.length >= 5 });
    assert.equal(first.cursor?.baseWritten, false);
    const checkpoint = first.cursor?.baseChunksWritten;
    assert.ok(checkpoint && checkpoint.disk >= 1 && checkpoint.disk <= 5, `the cursor is past the chunks written: ${JSON.stringify(first.cursor)}`);
    const writtenFirst = new Set(writes);
    writes.length = 0;
    const second = await followTo(domain.ownership, recording, { disks, cursor: clone(first.cursor)! });
    assert.equal(second.cursor?.baseWritten, true);
    assert.equal(second.cursor?.baseChunksWritten, undefined);
    const baseWrites = writes.slice(0, disks.length - checkpoint.disk);
    assert.deepEqual(
      baseWrites.filter((id) => Number(id.split('-').at(-1)) < checkpoint.disk),
      [],
      `no chunk before the cursor (disk ${checkpoint.disk}) is written again; the first run wrote ${[...writtenFirst].join(', ')}`,
    );
    assertSameDisks(target, domain.primary, disks, 'after the second run');
    assert.equal(laterCursor(first.cursor, { base: first.cursor.base, baseWritten: false, baseChunksWritten: { disk: 0, offset: 0 } }), first.cursor, 'a cursor further into the base is the later one');
  });

  it('resumes after a kill or a stop from the last reported cursor without reading the base again, and a replay from an older cursor ends the same', async () => {
    const domain = await protectedDomain(store, 'follow-resume', { initialSync: true });
    await domain.burst(150, 1_000);
    const target = await domain.newTarget();
    let reported: FollowCursor | undefined;
    let firstApplied: FollowCursor | undefined;
    const killed = followTo(domain.ownership, target, {
      readConcurrency: 2,
      onProgress: (progress) => {
        reported = clone(progress.cursor);
        if (progress.cursor?.applied) firstApplied ??= clone(progress.cursor);
        if (progress.segmentsApplied === 4) throw new Error('worker killed');
      },
    });
    await assert.rejects(killed, /worker killed/);
    assert.equal(reported?.baseWritten, true);

    let stopAfter = 3;
    const stopped = await followTo(domain.ownership, target, { cursor: reported, shouldStop: () => stopAfter-- <= 0 });
    assert.equal(stopped.bytesRead.base, 0, 'the base is not read again');
    assert.equal(stopped.caughtUp, false);
    assert.ok(stopped.lag.segments > 0 && stopped.lag.bytes > 0 && stopped.lag.ms > 0, JSON.stringify(stopped.lag));

    const finished = await followTo(domain.ownership, target, { cursor: stopped.cursor! });
    assert.equal(finished.bytesRead.base, 0);
    assert.equal(4 + stopped.segmentsApplied + finished.segmentsApplied, 10, 'every segment applied once');
    assertSameDisks(target, domain.primary, DISKS, 'after kill, stop and resume');

    const replay = await followTo(domain.ownership, target, { cursor: firstApplied! });
    assert.equal(replay.segmentsApplied, 9);
    assertSameDisks(target, domain.primary, DISKS, 'after a replay from an older cursor');
  });

  it('follows across a forced takeover into the next epoch, leaving out what the fenced writer put after the handoff', async () => {
    const domain = await protectedDomain(store, 'follow-takeover');
    await domain.burst(30, 1_000);
    const target = await domain.newTarget();
    const before = await followTo(domain.ownership, target);

    // A writer that acknowledged one more segment before the takeover and puts another after it.
    domain.write(10, 2_000);
    const { entries } = await domain.primary.readJournal({ afterSequence: domain.log.cursor });
    const staleWriter = new SegmentWriter(store, domain.ownership, 1, 'primary');
    await staleWriter.write(domain.log.cursor, entries.slice(0, 5), entries[4].sequence);
    const takeover = await domain.ownership.claim('recovery');
    assert.equal(takeover.epoch, 2);
    await assert.rejects(staleWriter.write(entries[4].sequence, entries.slice(5), entries.at(-1)!.sequence), /fenced/);
    assert.ok(await store.get(domain.ownership.keys.segment(1, entries[4].sequence)), 'the fenced writer put a late segment');
    const atTakeover = await domain.newTarget();
    await rehydrate({ store, ownership: domain.ownership, target: atTakeover, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });

    // The new owner logs its own writes, from disks as they were at the takeover.
    const recovery = atTakeover;
    for (let i = 0; i < 30; i++) recovery.guestWrite(DISKS[i % 2].vm, DISKS[i % 2].diskId, 4096 * i, randomBytes(1024), 3_000 + i);
    await drainJournal(store, domain.ownership, recovery, { epoch: 2, site: 'recovery', cursor: 0, vms: VMS, maxEntries: 15, maxBytes: 1024 * 1024 });

    const after = await followTo(domain.ownership, target, { cursor: before.cursor! });
    assert.equal(after.segmentsApplied, 3, 'the acknowledged segment of epoch 1 and the two of epoch 2, not the late one');
    assert.deepEqual([after.cursor?.applied?.epoch, after.appliedUpTo?.epoch], [2, 2]);
    assertSameDisks(target, recovery, DISKS, 'after following into epoch 2');
  });

  it('garbage collection deletes the segments a live follower has applied, keeps those after its position, and the follower goes on', async () => {
    const domain = await protectedDomain(store, 'follow-gc');
    for (const start of [1_000, 2_000, 4_500]) await domain.burst(60, start);
    const chain = await resolveChain(store, domain.ownership);
    assert.equal(chain.length, 12);
    const target = await domain.newTarget();
    let segments = 0;
    const partway = await followTo(domain.ownership, target, { shouldStop: () => segments++ >= 3 });
    const position = partway.cursor!.applied!;
    assert.equal(position.segment, chain[2].segment, 'the follower stands inside the first burst, behind the compaction point');

    const clock = { now: 4_700 };
    const lease = new ReaderLease(store, domain.ownership, 'follow/follow-gc/follower', () => clock.now);
    await lease.holdAfter(position);
    const gc = await collectGarbage({ store, ownership: domain.ownership, disks: DISKS, windowMs: 1_000, now: clock.now });
    assert.ok(gc.compactedInto, 'the two bursts before the window were compacted');
    assert.equal(gc.deleted.segments, 3, 'only the segments the follower applied are deleted');
    const left = await resolveChain(store, domain.ownership);
    assert.deepEqual(left.map((l) => l.segment), chain.slice(3).map((l) => l.segment), 'every segment after its position stays');

    const rest = await followTo(domain.ownership, target, { cursor: partway.cursor! });
    assert.equal(rest.segmentsApplied, 9);
    assertSameDisks(target, domain.primary, DISKS, 'after following on past the collection');

    // Caught up (its lease moved with the next refresh), the follower holds nothing before the compaction base back.
    clock.now += 2 * 60_000;
    await lease.holdAfter(rest.cursor!.applied!);
    const again = await collectGarbage({ store, ownership: domain.ownership, disks: DISKS, windowMs: 1_000, now: 4_700 });
    assert.equal(again.deleted.segments, 5, 'the rest of the two compacted bursts goes');
    assert.ok((await resolveChain(store, domain.ownership)).every((l) => l.segment > chain[7].segment));
  });

  it('holds before an unfinished resync and applies through it once the resync is done and the log reaches its consistent point', async () => {
    const domain = await protectedDomain(store, 'follow-resync');
    await domain.burst(30, 1_000);
    const target = await domain.newTarget();
    const before = await followTo(domain.ownership, target);
    const resyncAt = domain.log.cursor;

    // Bitmap mode: the next writes are tracked as dirty regions and resynced in one segment.
    domain.write(40, 2_000);
    const regions = await trackDirtyRegions({
      store,
      ownership: domain.ownership,
      source: domain.primary,
      epoch: 1,
      cursor: resyncAt,
      vms: VMS,
      maxEntries: 1_000,
      caughtUpWithin: 0,
      trimJournal: false,
      now: () => 2_100,
      onProgress: () => undefined,
      shouldStop: () => false,
    });
    const written = await writeResyncSegment({ writer: new SegmentWriter(store, domain.ownership, 1, 'primary'), source: domain.primary, regions, disks: DISKS, now: () => 2_100 });
    domain.log.cursor = written.cursor;
    await domain.burst(45, 3_000);

    const held = await followTo(domain.ownership, target, { cursor: before.cursor! });
    assert.equal(held.segmentsApplied, 0);
    assert.match(held.heldAt ?? '', /held before segment \d+ of epoch 1: the resync of epoch 1 .* has not finished/);
    assert.deepEqual(held.cursor, before.cursor);
    assert.equal(held.caughtUp, true);
    assert.equal(held.lag.segments, 4);

    const done = await finishResync(store, domain.ownership, domain.primary, { epoch: 1, segment: resyncAt, entries: written.entries, cursor: written.cursor, vms: VMS, journalMark: written.journalMark, markedAt: written.markedAt });
    assert.ok(done?.consistentFrom);
    const reports: Array<{ segment?: number; segmentsApplied: number }> = [];
    const through = await followTo(domain.ownership, target, { cursor: before.cursor!, onProgress: (p) => void reports.push({ segment: p.cursor?.applied?.segment, segmentsApplied: p.segmentsApplied }) });
    assert.equal(through.heldAt, undefined);
    assert.equal(through.segmentsApplied, 4);
    const moved = reports.filter((r) => r.segment !== before.cursor!.applied?.segment);
    assert.deepEqual([...new Set(moved.map((r) => r.segment))], [done.consistentFrom.segment], 'the cursor moves only once the stretch is consistent again');
    // Inside the stretch the follower still reports after each segment (a heartbeat, or a large stretch outlasts the activity's heartbeat timeout), as of its last consistent point.
    const inside = reports.slice(0, reports.indexOf(moved[0]));
    assert.ok(inside.length >= 3, `a report after each segment inside the stretch: ${JSON.stringify(reports)}`);
    assert.ok(inside.every((r) => r.segmentsApplied === 0), 'counting nothing a retry from the unchanged cursor would apply again');
    assertSameDisks(target, domain.primary, DISKS, 'after the resync');
  });

  it('waits while the initial sync is unfinished instead of failing', async () => {
    const domain = await protectedDomain(store, 'follow-syncing');
    await ensureSyncIntent(store, domain.ownership, { epoch: 1, cursor: 0, site: 'primary', now: 900 });
    await domain.burst(30, 1_000);
    const target = await domain.newTarget();
    const waiting: FollowResult = await followTo(domain.ownership, target);
    assert.match(waiting.heldAt ?? '', /initial sync of epoch 1 .* is not finished/);
    assert.equal(waiting.cursor, undefined);
    await copyDisksIntoBase({ store, ownership: domain.ownership, baseId: domain.ownership.keys.baseId(1, 0), disks: DISKS, source: domain.primary, onProgress: () => undefined });
    await commitBase(store, domain.ownership, { epoch: 1, cursor: 0, kind: 'initial-sync', disks: DISKS, consistentFrom: null, timestamp: 950, createdAt: 950 });
    const followed = await followTo(domain.ownership, target);
    assert.equal(followed.heldAt, undefined);
    assertSameDisks(target, domain.primary, DISKS, 'after the initial sync');
  });

  it('returns membershipChanged before a segment that writes a disk the manifest added, and skips writes to a disk in neither set', async () => {
    const extra: DomainDisk = { vm: 'app-1', diskId: 'app-1-disk-1', sizeBytes: 256 * 1024 };
    const removed: DomainDisk = { vm: 'db-1', diskId: 'db-1-disk-9', sizeBytes: 256 * 1024 };
    const domain = await protectedDomain(store, 'follow-members', { disks: [...DISKS, extra, removed] });
    await recordManifest(store, domain.ownership, DISKS);
    await domain.burst(30, 1_000, [...DISKS, removed]);
    await domain.burst(30, 2_000, [...DISKS, extra]);
    const chain = await resolveChain(store, domain.ownership);
    const target = await domain.newTarget(DISKS);

    const changed = await followTo(domain.ownership, target, {
      onProgress: async (progress) => {
        if (progress.segmentsApplied === 1) await recordManifest(store, domain.ownership, [...DISKS, extra]);
      },
    });
    assert.deepEqual(changed.membershipChanged?.disks, [...DISKS, extra]);
    assert.equal(changed.cursor?.applied?.segment, chain[1].segment, 'stopped before the first segment that writes the new disk');
    assert.equal(changed.caughtUp, false);

    await target.createDisk({ id: extra.diskId, datastore: 'ds', sizeBytes: extra.sizeBytes, protected: false });
    const grown = await follow({ store, ownership: domain.ownership, target, disks: [...DISKS, extra], cursor: changed.cursor, untilEnd: true });
    assert.equal(grown.membershipChanged, undefined);
    assert.equal(grown.segmentsApplied, chain.length - 2);
    assertSameDisks(target, domain.primary, [...DISKS, extra], 'after following with the new disk set');
    assert.equal(target.disks.has(removed.diskId), false, 'the writes to the removed disk were skipped');

    const stale = await followTo(domain.ownership, target, { cursor: grown.cursor! });
    assert.deepEqual(stale.membershipChanged?.disks, [...DISKS, extra], 'a follower with an outdated disk set returns before applying anything');
  });

  it('activity followLog: runs for its time holding the workflow follower lease on its position, stops at once when cancelled, releases the lease at the end', async () => {
    const domain = await protectedDomain(store, 'follow-activity', { initialSync: true });
    await domain.burst(60, 1_000);
    const target = await domain.newTarget();
    const activities = createDatapathActivities({ store, site: () => target as unknown as SiteProvider });
    const followLog = (input: FollowLogInput) => activities.followLog(input);
    const info = { workflowExecution: { workflowId: 'continuous-failover/follow-activity/1', runId: 'run-1' } };
    const leaseKey = domain.ownership.keys.lease(`${info.workflowExecution.workflowId}/follower`);
    const input = { domain: 'follow-activity', targetSite: 'recovery', disks: DISKS, runForMs: 2_000 };

    const heartbeats: FollowResult[] = [];
    const running = new MockActivityEnvironment(info);
    running.on('heartbeat', (details: FollowResult) => heartbeats.push(details));
    const first: FollowResult = await running.run(followLog, input);
    assert.equal(first.caughtUp, true);
    assert.ok(heartbeats.some((h) => h.caughtUp && h.lag.segments === 0), 'heartbeats while idle');
    assertSameDisks(target, domain.primary, DISKS, 'after the first run');
    const lease = parseRecord(leaseSchema, leaseKey, (await store.get(leaseKey))!);
    // The position is stored when first applied, then with each refresh (an older one keeps more).
    assert.deepEqual(lease.position, { epoch: 1, segment: 0 }, 'the lease names an applied position, not a base');
    assert.ok(lease.expiresAt > Date.now());

    await domain.burst(30, 2_000);
    const cancelled = new MockActivityEnvironment(info);
    cancelled.on('heartbeat', () => cancelled.cancel());
    const startedAt = Date.now();
    await assert.rejects(cancelled.run(followLog, { ...input, cursor: first.cursor!, runForMs: 60_000 }), (error: unknown) => error instanceof CancelledFailure);
    assert.ok(Date.now() - startedAt < 5_000, 'a cancelled run returns at once');

    const last: FollowResult = await new MockActivityEnvironment(info).run(followLog, { ...input, cursor: first.cursor!, untilEnd: true });
    assert.deepEqual([last.caughtUp, last.bytesRead.base], [true, 0]);
    assertSameDisks(target, domain.primary, DISKS, 'after the run to the end');
    assert.equal(await store.get(leaseKey), undefined, 'the lease is released once the end is applied');
  });

  it('activity rehydrateDomain: a worker runs at most its rehydrations at once; one waiting heartbeats, starts when a turn frees, and stops at once when cancelled', async () => {
    const domain = await protectedDomain(store, 'rehydrate-turns', { initialSync: true });
    await domain.burst(30, 1_000);
    const first = await domain.newTarget();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let writing!: () => void;
    const firstWrites = new Promise<void>((resolve) => (writing = resolve));
    const held = Object.assign(Object.create(first) as MemorySite, {
      writeDisk: async (diskId: string, offset: number, data: Buffer) => {
        writing();
        await gate;
        return first.writeDisk(diskId, offset, data);
      },
    });
    const second = await domain.newTarget();
    const third = await domain.newTarget();
    const writesTo = new Map<string, number>();
    const counted = (name: string, target: MemorySite) =>
      Object.assign(Object.create(target) as MemorySite, {
        writeDisk: (diskId: string, offset: number, data: Buffer) => {
          writesTo.set(name, (writesTo.get(name) ?? 0) + 1);
          return target.writeDisk(diskId, offset, data);
        },
      });
    const targets: Record<string, MemorySite> = { first: held, second: counted('second', second), third: counted('third', third) };
    const activities = createDatapathActivities({ store, site: (name) => targets[name] as unknown as SiteProvider, rehydrationsAtOnce: 1 });
    const rehydrateDomain = (input: RehydrateInput) => activities.rehydrateDomain(input);
    const rehydrateTo = (targetSite: string): RehydrateInput => ({ domain: 'rehydrate-turns', targetSite, datastore: 'ds', upTo: { kind: 'latest' } });
    const environment = (name: string) => new MockActivityEnvironment({ workflowExecution: { workflowId: `failover/rehydrate-turns/${name}`, runId: name }, activityId: name });

    const running = environment('first').run(rehydrateDomain, rehydrateTo('first'));
    await firstWrites;
    const waiting = environment('second');
    let waitingHeartbeats = 0;
    waiting.on('heartbeat', () => waitingHeartbeats++);
    const waited = waiting.run(rehydrateDomain, rehydrateTo('second'));
    const cancelled = environment('third');
    const abandoned = cancelled.run(rehydrateDomain, rehydrateTo('third'));
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.ok(waitingHeartbeats >= 1, 'one waiting for its turn heartbeats');
    assert.equal(writesTo.size, 0, 'nothing is written by the ones waiting');
    cancelled.cancel();
    const outcome = await Promise.race([abandoned.then(() => 'completed', (error: unknown) => error), new Promise((resolve) => setTimeout(() => resolve('still waiting after 1 s'), 1_000))]);
    assert.ok(outcome instanceof CancelledFailure, `a cancelled one stops waiting at once: ${String(outcome)}`);

    open();
    await running;
    await waited;
    assertSameDisks(first, domain.primary, DISKS, 'the first rehydration');
    assertSameDisks(second, domain.primary, DISKS, 'the one that waited for its turn');
    assert.ok((writesTo.get('second') ?? 0) > 0);
    assert.equal(writesTo.get('third'), undefined, 'the cancelled one never wrote');
  });

  it('activity rehydrateDomain at a real site process: once a retry has written the disks, the attempt it replaced is refused at each disk it reaches and changes nothing; a later attempt writes again', async () => {
    const domain = await protectedDomain(store, 'fenced-rehydration', { initialSync: true });
    await domain.burst(60, 1_000);
    const activities = createDatapathActivities({ store, site: () => recovery.client });
    const rehydrateDomain = (input: RehydrateInput) => activities.rehydrateDomain(input);
    const input: RehydrateInput = { domain: 'fenced-rehydration', targetSite: 'recovery', datastore: 'ds-b', diskIdPrefix: 'fenced-', upTo: { kind: 'latest' } };
    // Attempts of one activity as the server schedules them: each retry later than the attempt it replaces.
    const attempt = (attempt: number, scheduledAt: number) =>
      new MockActivityEnvironment({ workflowExecution: { workflowId: 'failover/fenced-rehydration/1', runId: 'run-1' }, activityId: 'rehydrate', attempt, currentAttemptScheduledTimestampMs: scheduledAt });
    const targetHolds = async (expected: (disk: DomainDisk) => Buffer, what: string) => {
      for (const disk of DISKS) assert.ok((await recovery.client.readDisk(`fenced-${disk.diskId}`, 0, disk.sizeBytes)).equals(expected(disk)), `${what}: fenced-${disk.diskId}`);
    };

    await attempt(2, 20_000).run(rehydrateDomain, input);
    await targetHolds((disk) => domain.primary.disks.get(disk.diskId)!, 'the retry rebuilt the disk');
    // The recovered data moves on (a guest writes every byte); then the attempt given up on wakes up and goes on.
    const moved = new Map(DISKS.map((disk) => [disk.diskId, randomBytes(disk.sizeBytes)]));
    for (const disk of DISKS) await recovery.client.writeDisk(`fenced-${disk.diskId}`, 0, moved.get(disk.diskId)!);
    const eventsBefore = (await recovery.client.events()).at(-1)?.sequence ?? 0;
    await assert.rejects(attempt(1, 10_000).run(rehydrateDomain, input), (error: unknown) => error instanceof ApplicationFailure && error.type === 'WriteFenced' && error.nonRetryable && /superseded/.test(error.message));
    await targetHolds((disk) => moved.get(disk.diskId)!, 'the superseded attempt wrote nothing');
    const refusals = (await recovery.client.events(eventsBefore)).filter((e) => e.type === 'DiskWriteFenced');
    assert.ok(refusals.length >= 1);
    assert.deepEqual([...new Set(refusals.map((e) => `${String(e.detail?.fence)}/${String(e.detail?.diskFence)}/${String(e.detail?.why)}`))], ['10000/20000/superseded']);

    await attempt(3, 30_000).run(rehydrateDomain, input);
    await targetHolds((disk) => domain.primary.disks.get(disk.diskId)!, 'a later attempt is not fenced');
  });
});
