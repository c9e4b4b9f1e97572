import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createFailbackDataActivities } from '../../activities/failback-data';
import { commitBase, copyDisksIntoBase, ensureSyncIntent } from '../../datapath/base-image';
import { chainEnd, type DeltaBaseCheck, type DeltaBaseVerified } from '../../datapath/departure';
import { expectedFingerprints, fingerprintDisk } from '../../datapath/disk-fingerprint';
import type { FollowResult } from '../../datapath/follower';
import { resolveChain } from '../../datapath/log-chain';
import type { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { RECORD_FORMAT_VERSION, type DomainDisk, type Manifest } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import type { SiteProvider } from '../../sites/provider';
import { useTestStack } from '../harness/stack';
import { drainJournal, MemorySite } from '../unit/datapath-memory-site';

const MiB = 1024 * 1024;
const DISKS: DomainDisk[] = [
  { vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 8 * MiB },
  { vm: 'app-1', diskId: 'app-1-disk-0', sizeBytes: 6 * MiB },
];
const VMS = ['db-1', 'app-1'];
const WRITTEN_BYTES = 5 * MiB;
const TOTAL_BYTES = DISKS.reduce((sum, d) => sum + d.sizeBytes, 0);

/** A MemorySite as the site worker's provider: the failback activities use only its disk calls and its name. */
const asProvider = (site: MemorySite, name: string) => Object.assign(site, { site: name }) as unknown as SiteProvider;
/** Runs one activity call as Temporal would (with an activity context). */
const run = <O>(call: () => Promise<O>): Promise<O> => new MockActivityEnvironment().run(call);

async function recordManifest(store: ObjectStore, ownership: Ownership, site: string): Promise<void> {
  const manifest: Manifest = {
    formatVersion: RECORD_FORMAT_VERSION,
    domain: ownership.domain,
    protectedSite: site,
    disks: DISKS,
    vms: VMS.map((name) => ({ name, cpus: 1, memoryMiB: 512, diskIds: DISKS.filter((d) => d.vm === name).map((d) => d.diskId), nics: [], metadata: {} })),
    protectionWindowMs: 86_400_000,
    updatedAt: 0,
  };
  await store.put(ownership.keys.manifest(), JSON.stringify(manifest), 'application/json');
}

/** Small scattered guest writes in each disk's first 5 MiB (the rest stays zeros), replicated into `epoch`'s log. */
async function writeAndReplicate(store: ObjectStore, ownership: Ownership, site: MemorySite, o: { epoch: number; site: string; cursor: number; count: number }): Promise<number> {
  for (let i = 0; i < o.count; i++) {
    const disk = DISKS[i % DISKS.length];
    const length = 512 * (1 + (i % 8));
    site.guestWrite(disk.vm, disk.diskId, Math.floor(Math.random() * (WRITTEN_BYTES - length)), randomBytes(length), Date.now());
  }
  return (await drainJournal(store, ownership, site, { epoch: o.epoch, site: o.site, cursor: o.cursor, vms: VMS, maxEntries: 10, maxBytes: MiB })).cursor;
}

/** The initial sync of a new owner: its disks as the base of (epoch, cursor). */
async function initialSync(store: ObjectStore, ownership: Ownership, site: MemorySite, epoch: number, cursor: number, name: string): Promise<void> {
  await ensureSyncIntent(store, ownership, { epoch, cursor, site: name, now: Date.now() });
  await copyDisksIntoBase({ store, ownership, baseId: ownership.keys.baseId(epoch, cursor), disks: DISKS, source: site, onProgress: () => undefined });
  await commitBase(store, ownership, { epoch, cursor, kind: 'initial-sync', disks: DISKS, consistentFrom: null, timestamp: Date.now(), createdAt: Date.now() });
}

const lastSegmentOf = async (store: ObjectStore, ownership: Ownership, epoch: number) => (await resolveChain(store, ownership)).filter((l) => l.epoch === epoch).at(-1)?.segment ?? null;

function assertSameDisks(actual: MemorySite, expected: MemorySite, what: string): void {
  for (const disk of DISKS) assert.ok(actual.disks.get(disk.diskId)!.equals(expected.disks.get(disk.diskId)!), `${what}: ${disk.diskId} differs`);
}

/**
 * A domain protected at the primary (a base with data, then log), failed over to the recovery
 * site (planned: drained, departure recorded, handed over; forced: taken over, departure recorded
 * by the new owner), rebuilt there to the end of the log, protected there from an initial sync,
 * written to, and handed back to the primary.
 */
async function failedOverDomain(store: ObjectStore, name: string, kind: 'planned' | 'forced', options: { unreplicatedAtPrimary?: boolean } = {}) {
  const ownership = new Ownership(store, name);
  await ownership.claim('primary');
  await recordManifest(store, ownership, 'primary');
  const primary = new MemorySite();
  for (const disk of DISKS) {
    await primary.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
    randomBytes(3 * MiB).copy(primary.disks.get(disk.diskId)!, MiB);
  }
  await initialSync(store, ownership, primary, 1, 0, 'primary');
  await writeAndReplicate(store, ownership, primary, { epoch: 1, site: 'primary', cursor: 0, count: 60 });
  const atPrimary = createFailbackDataActivities({ store, provider: asProvider(primary, 'primary') });
  const recovery = new MemorySite();
  const atRecovery = createFailbackDataActivities({ store, provider: asProvider(recovery, 'recovery') });

  if (kind === 'planned') {
    const lastSegment = await lastSegmentOf(store, ownership, 1);
    await run(() => atPrimary.recordDeparture({ domain: name, epoch: 1, kind: 'planned', lastSegment }));
    await ownership.release(1, 'recovery', lastSegment);
  } else {
    // Replication stopped; the primary keeps running until it is fenced, and may go on after.
    if (options.unreplicatedAtPrimary) primary.guestWrite('db-1', 'db-1-disk-0', 5 * MiB + 123, randomBytes(4096), Date.now());
    await ownership.claim('recovery');
    await run(() => atRecovery.recordDeparture({ domain: name, epoch: 1, kind: 'forced' }));
  }

  // The failover: rebuild at the recovery site to the end of the sealed log, then protect from there.
  const rebuilt = await rehydrate({ store, ownership, target: recovery, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
  const end = (await chainEnd(store, ownership, rebuilt.lastApplied!.epoch, rebuilt.lastApplied!.segment))!;
  await run(() => atRecovery.recordArrival({ domain: name, epoch: 2, from: end.position, cursor: 0 }));
  await recordManifest(store, ownership, 'recovery');
  await initialSync(store, ownership, recovery, 2, 0, 'recovery');
  await writeAndReplicate(store, ownership, recovery, { epoch: 2, site: 'recovery', cursor: 0, count: 40 });

  // The failback's handover back: the recovery site drained, the primary owns epoch 3.
  await ownership.release(2, 'primary', await lastSegmentOf(store, ownership, 2));
  return { ownership, primary, recovery, atPrimary };
}

describe('failback by delta on real S3: departure, check, delta rehydration, exact full rehydration onto existing disks', () => {
  const { store } = useTestStack();

  it('a planned departure lets failback apply only the log since: identical disks, far fewer bytes than the disks hold', async () => {
    const { primary, recovery, atPrimary } = await failedOverDomain(store, 'delta-planned', 'planned');
    const check: DeltaBaseCheck = await run(() => atPrimary.checkDeltaBase({ domain: 'delta-planned' }));
    assert.ok(check.usable, `usable: ${check.usable ? '' : check.why}`);
    assert.deepEqual([check.departure.kind, check.from.epoch, check.bytesRead.store], ['planned', 1, 0], 'a planned departure carries its fingerprints');
    const result: FollowResult = await run(() => atPrimary.rehydrateDelta({ domain: 'delta-planned', from: check.from, journalCursor: check.journalCursor }));
    assertSameDisks(primary, recovery, 'after the delta');
    assert.equal(result.bytesRead.base, 0, 'no base is read');
    assert.ok(result.bytesRead.log > 0 && result.bytesRead.log < TOTAL_BYTES / 20, `log read ${result.bytesRead.log} of ${TOTAL_BYTES}`);
    assert.ok(result.bytesWritten > 0 && result.bytesWritten < TOTAL_BYTES / 20, `written ${result.bytesWritten} of ${TOTAL_BYTES}`);
  });

  it('a check cut short goes on after the disks its attempt before verified, and reads none of them again', async () => {
    const { primary } = await failedOverDomain(store, 'delta-resumed', 'planned');
    const [first, second] = DISKS.map((d) => d.diskId);
    const reads = new Map<string, number>();
    let verifiedFirst!: () => void;
    const firstVerified = new Promise<void>((resolve) => (verifiedFirst = resolve));
    // The second disk's reads fail once the first disk is verified: a site worker lost mid-check.
    const failing = Object.assign(Object.create(primary) as MemorySite, {
      site: 'primary',
      readDisk: async (diskId: string, offset: number, length: number) => {
        if (diskId === second) {
          await firstVerified;
          throw new Error('the site stopped answering');
        }
        return primary.readDisk(diskId, offset, length);
      },
    });
    const attempt = new MockActivityEnvironment();
    let checkpoint: unknown;
    attempt.on('heartbeat', (details: unknown) => {
      checkpoint = details;
      if ((details as DeltaBaseVerified | undefined)?.disks === 1) verifiedFirst();
    });
    const atFailing = createFailbackDataActivities({ store, provider: failing as unknown as SiteProvider });
    await assert.rejects(attempt.run(() => atFailing.checkDeltaBase({ domain: 'delta-resumed' })), /stopped answering/);
    assert.equal((checkpoint as DeltaBaseVerified).disks, 1, 'the first disk of the departure is verified');

    const counting = Object.assign(Object.create(primary) as MemorySite, {
      site: 'primary',
      readDisk: (diskId: string, offset: number, length: number) => {
        reads.set(diskId, (reads.get(diskId) ?? 0) + 1);
        return primary.readDisk(diskId, offset, length);
      },
    });
    const atCounting = createFailbackDataActivities({ store, provider: counting as unknown as SiteProvider });
    const retried: DeltaBaseCheck = await new MockActivityEnvironment({ heartbeatDetails: checkpoint }).run(() => atCounting.checkDeltaBase({ domain: 'delta-resumed' }));
    assert.ok(retried.usable, `usable: ${retried.usable ? '' : retried.why}`);
    assert.deepEqual([reads.get(first), retried.bytesRead.disks], [undefined, DISKS[1].sizeBytes], 'the retry reads only the disk not verified yet');

    // A checkpoint of another departure counts for nothing; a damaged disk is still found.
    reads.clear();
    primary.disks.get(second)![17] ^= 0xff;
    const stale: DeltaBaseCheck = await new MockActivityEnvironment({ heartbeatDetails: { departureRecordedAt: 1, disks: 2 } }).run(() => atCounting.checkDeltaBase({ domain: 'delta-resumed' }));
    assert.equal(stale.usable, false);
    assert.match(stale.usable ? '' : stale.why, new RegExp(`${second} differ`));
    assert.ok((reads.get(first) ?? 0) > 0, 'every disk read again');
  });

  it('a check cancelled while it reads the disks ends at its next heartbeat instead of reading them to the end', async () => {
    const { primary } = await failedOverDomain(store, 'delta-cancelled', 'planned');
    let bytesRead = 0;
    const counting = Object.assign(Object.create(primary) as MemorySite, {
      site: 'primary',
      readDisk: async (diskId: string, offset: number, length: number) => {
        const data = await primary.readDisk(diskId, offset, length);
        bytesRead += data.length;
        return data;
      },
    });
    const attempt = new MockActivityEnvironment();
    // The operator's cancel (or the worker asked to stop) lands as the first region is read.
    attempt.once('heartbeat', () => attempt.cancel('CANCELLED'));
    const activities = createFailbackDataActivities({ store, provider: counting as unknown as SiteProvider });
    await assert.rejects(
      attempt.run(() => activities.checkDeltaBase({ domain: 'delta-cancelled' })),
      (error: Error) => error.name === 'CancelledFailure' && /reading the disks was cancelled/.test(error.message),
    );
    // The regions already being read when the cancel came finish; no other starts.
    assert.ok(bytesRead < TOTAL_BYTES, `read ${bytesRead} of the disks' ${TOTAL_BYTES} bytes`);
  });

  it('original disks damaged by one byte: the check refuses, and a full rehydration onto them is exact', async () => {
    const { ownership, primary, recovery, atPrimary } = await failedOverDomain(store, 'delta-damaged', 'planned');
    const disk = primary.disks.get('app-1-disk-0')!;
    disk[4 * MiB + 17] ^= 0xff;
    const check: DeltaBaseCheck = await run(() => atPrimary.checkDeltaBase({ domain: 'delta-damaged' }));
    assert.equal(check.usable, false);
    assert.match(check.usable ? '' : check.why, /app-1-disk-0 differ/);
    const full = await rehydrate({ store, ownership, target: primary, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' }, targetMayHoldData: true });
    assertSameDisks(primary, recovery, 'after the full rehydration');
    assert.ok(full.targetBytesRead! > 0);
  });

  it('a garbage-filled target becomes exact with targetMayHoldData (and is not without it)', async () => {
    const { ownership, recovery } = await failedOverDomain(store, 'delta-garbage', 'planned');
    const garbage = () => {
      const target = new MemorySite();
      for (const disk of DISKS) target.disks.set(disk.diskId, randomBytes(disk.sizeBytes));
      return target;
    };
    const exact = garbage();
    const result = await rehydrate({ store, ownership, target: exact, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' }, targetMayHoldData: true });
    assertSameDisks(exact, recovery, 'with targetMayHoldData');
    assert.ok(result.bytesZeroed! > 0, 'regions the source holds as zeros were zeroed');
    const stale = garbage();
    await rehydrate({ store, ownership, target: stale, disks: DISKS, datastore: 'ds', upTo: { kind: 'latest' } });
    assert.ok(DISKS.some((d) => !stale.disks.get(d.diskId)!.equals(recovery.disks.get(d.diskId)!)), 'without it, stale data stays');
  });

  it('forced: the fingerprint comes from base + log; the check accepts untouched disks and refuses disks with unreplicated writes', async () => {
    const clean = await failedOverDomain(store, 'delta-forced', 'forced');
    const departure: DeltaBaseCheck = await run(() => clean.atPrimary.checkDeltaBase({ domain: 'delta-forced' }));
    assert.ok(departure.usable, `usable: ${departure.usable ? '' : departure.why}`);
    assert.equal(departure.departure.fingerprints, null);
    assert.ok(departure.bytesRead.store > 0, 'derived from the store');
    // The same fingerprints in small batches, over the log kept in memory and over the log read again for each batch.
    for (const keptLogBytes of [undefined, 0]) {
      const batched = await expectedFingerprints(store, clean.ownership, DISKS, departure.from, { batchRegions: 2, ...(keptLogBytes === undefined ? {} : { keptLogBytes }) });
      for (const disk of DISKS) {
        assert.equal(batched.fingerprints.find((f) => f.diskId === disk.diskId)!.sha256, (await fingerprintDisk(clean.primary, disk.diskId, disk.sizeBytes)).sha256, `${disk.diskId}, keeping ${keptLogBytes ?? 'the default'} bytes of the log`);
      }
    }
    await run(() => clean.atPrimary.rehydrateDelta({ domain: 'delta-forced', from: departure.from, journalCursor: departure.journalCursor }));
    assertSameDisks(clean.primary, clean.recovery, 'after the forced delta');

    const diverged = await failedOverDomain(store, 'delta-forced-diverged', 'forced', { unreplicatedAtPrimary: true });
    const check: DeltaBaseCheck = await run(() => diverged.atPrimary.checkDeltaBase({ domain: 'delta-forced-diverged' }));
    assert.equal(check.usable, false);
    assert.match(check.usable ? '' : check.why, /db-1-disk-0 differ.*forced departure/);
  });

  it('a domain that never wrote since its base leaves without a departure record, planned or forced, and its failback finds none (full rehydration)', async () => {
    for (const kind of ['planned', 'forced'] as const) {
      const name = `delta-idle-${kind}`;
      const ownership = new Ownership(store, name);
      await ownership.claim('primary');
      await recordManifest(store, ownership, 'primary');
      const primary = new MemorySite();
      for (const disk of DISKS) await primary.createDisk({ id: disk.diskId, datastore: 'ds', sizeBytes: disk.sizeBytes, protected: true });
      await initialSync(store, ownership, primary, 1, 0, 'primary');
      const atPrimary = createFailbackDataActivities({ store, provider: asProvider(primary, 'primary') });
      const atRecovery = createFailbackDataActivities({ store, provider: asProvider(new MemorySite(), 'recovery') });
      if (kind === 'planned') {
        assert.equal(await run(() => atPrimary.recordDeparture({ domain: name, epoch: 1, kind, lastSegment: null })), null);
        await ownership.release(1, 'recovery', null);
      } else {
        await ownership.claim('recovery');
        // Before: DeltaNotApplicable ("no log up to epoch 1"), which aborted the forced failover of an idle domain.
        assert.equal(await run(() => atRecovery.recordDeparture({ domain: name, epoch: 1, kind })), null);
      }
      const check: DeltaBaseCheck = await run(() => atPrimary.checkDeltaBase({ domain: name }));
      assert.deepEqual([check.usable, check.usable ? '' : check.why], [false, 'no departure from site primary was recorded']);
    }
  });
});
