import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { listResyncs } from '../../datapath/bitmap';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { Ownership } from '../../datapath/ownership';
import { membersDigest } from '../../datapath/membership';
import { manifestSchema, parseRecord, type DomainDisk, type RestorePoint } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import { readRestorePoint } from '../../datapath/restore-points';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { protect, protectStatusQuery, restorePointNowUpdate, stopProtectionSignal, type ProtectStatus } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { admin } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;
const placement = { datacenter: 'dc-a', cluster: 'cluster-a1', resourcePool: 'prod', datastore: 'ds-a' };

describe('protection follows the VMs and disks of its domain while it runs', () => {
  const bed = useTestbed({ workers: ['orchestration', 'primary'] });
  let handle: WorkflowHandle<typeof protect>;
  const store = () => bed.store;
  const ownership = () => new Ownership(store(), 'demo');
  /** The protection answers with the point's summary; the point itself is in the store. */
  const pointTaken = async ({ id }: { id: string }) => (await readRestorePoint(store(), ownership(), id))!;
  const manifest = async () => parseRecord(manifestSchema, 'manifest', (await store().get(ownership().keys.manifest()))!);

  const waitFor = async (what: string, done: (status: ProtectStatus) => boolean | Promise<boolean>, timeoutMs = 60_000) => {
    for (let waited = 0; ; waited += 200) {
      const status = await handle.query(protectStatusQuery);
      if (await done(status)) return status;
      assert.ok(waited < timeoutMs, `${what}: ${JSON.stringify(status)}`);
      await sleep(200);
    }
  };
  /** Waits until every journaled write so far is logged and no disk sync runs. */
  const caughtUp = async () => {
    const { lastSequence } = await bed.primary.client.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 });
    return waitFor('replication did not catch up', (s) => s.mode === 'log' && !s.diskSync && s.cursor >= lastSequence);
  };
  /** A new disk holding data written before protection knew of it (unprotected: not journaled). */
  const diskWithData = async (id: string, sizeBytes: number) => {
    await bed.primary.client.createDisk({ id, datastore: 'ds-a', sizeBytes, protected: false });
    for (let offset = 0; offset < sizeBytes; offset += 256 * 1024) await bed.primary.client.writeDisk(id, offset, Buffer.alloc(4096, `${id}:${offset}`));
  };
  const rebuildEquals = async (point: RestorePoint, disks: DomainDisk[], label: string) => {
    await rehydrate({ store: store(), ownership: ownership(), target: bed.recovery.client, disks, datastore: 'ds-b', upTo: { kind: 'position', position: point.position }, targetDiskId: (id) => `${label}-${id}` });
    for (const disk of disks) {
      const expected = await bed.primary.client.readDisk(disk.diskId, 0, disk.sizeBytes);
      assert.ok((await bed.recovery.client.readDisk(`${label}-${disk.diskId}`, 0, disk.sizeBytes)).equals(expected), `${disk.diskId} rebuilt to ${point.id} equals the primary's`);
    }
  };

  it('adds a tagged VM and an attached disk through a disk sync while the others keep being logged, and drops a detached disk', async () => {
    handle = await bed.stack.client.workflow.start(protect, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'protect/demo-membership',
      args: [{ domain: 'demo', site: 'primary', vms: ['db-1', 'app-1'], protectionWindowMs: 3_600_000, restorePointIntervalMs: 600_000, replicatorRunMs: 1_000 }],
    });
    await waitFor('the initial sync did not finish', (s) => s.mode === 'log');
    await admin(bed.primary, bed.sites.token, '/admin/workload', { writesPerSecond: 150, blockSize: 4096, pattern: 'random', seed: 'membership' });
    // A restore point needs a replicated write: waited for, not slept on (a loaded machine takes longer than a second).
    await waitFor('no write was replicated', (s) => s.cursor > 0);
    const before = await pointTaken(await handle.executeUpdate(restorePointNowUpdate, { args: [{}] }));

    // While the workload writes: a new VM tagged for the domain, a disk attached to db-1, one detached from it.
    await diskWithData('web-1-disk-0', 2 * MiB);
    await bed.primary.client.registerVm({ name: 'web-1', cpus: 2, memoryMiB: 2048, placement, nics: [{ network: 'prod-app' }], diskIds: ['web-1-disk-0'], metadata: { protectedDomain: 'demo' } });
    await bed.primary.client.powerOn('web-1');
    await diskWithData('db-1-disk-2', MiB);
    await bed.primary.client.reconfigureVm('db-1', { diskIds: ['db-1-disk-0', 'db-1-disk-2'] });
    await bed.primary.client.deleteDisk('db-1-disk-1');

    const current = ['app-1-disk-0', 'db-1-disk-0', 'db-1-disk-2', 'web-1-disk-0'];
    // The manifest is written inside the membership check, the status after it returns: wait for both.
    const noticed = await waitFor('protection did not notice the change', async (s) => s.vms.join() === 'app-1,db-1,web-1' && (await manifest()).disks.map((d) => d.diskId).sort().join() === current.join());
    assert.deepEqual(noticed.vms, ['app-1', 'db-1', 'web-1']);
    const listed = await manifest();
    assert.equal((await bed.primary.client.getDisk('web-1-disk-0')).protected, true, 'a disk that joined is journaled');
    // The workflow holds the members by digest; the store keeps the list it names and at most the one before.
    const storedMembers = (await store().list(ownership().keys.membersPrefix())).keys;
    assert.ok(storedMembers.includes(ownership().keys.members(membersDigest(listed.vms))) && storedMembers.length <= 2, storedMembers.join(', '));
    await sleep(1_500);
    await admin(bed.primary, bed.sites.token, '/admin/workload', undefined, 'DELETE');
    await caughtUp();
    const after = await pointTaken(await handle.executeUpdate(restorePointNowUpdate, { args: [{}] }));

    // The disk syncs' stretches (one, or one per change protection noticed apart): finished, and
    // the others' writes were logged inside them one by one.
    const stretches = (await listResyncs(store(), ownership())).filter((r) => r.segment > before.position.segment);
    assert.ok(stretches.length > 0 && stretches.every((r) => r.consistentFrom), 'each disk sync recorded where the log is exact again');
    const insideAStretch = (segment: number) => stretches.some((r) => segment >= r.segment && segment <= r.consistentFrom!.segment);
    const newDisks = new Set(['web-1-disk-0', 'db-1-disk-2']);
    const since = (await resolveChain(store(), ownership())).filter((l) => l.segment > before.position.segment);
    let othersLogged = 0;
    let copied = 0;
    for await (const { link, segment } of readChain(store(), since, 4)) {
      if (insideAStretch(link.segment)) othersLogged += segment.entries.filter((e) => e.sequence > 0 && !newDisks.has(e.diskId)).length;
      copied += segment.entries.filter((e) => e.sequence === 0).reduce((sum, e) => sum + e.data.length, 0);
      // The disk was deleted before protection noticed any change; the last sync started after the last notice.
      if (link.segment >= stretches.at(-1)!.segment) assert.ok(!segment.entries.some((e) => e.diskId === 'db-1-disk-1'), 'nothing writes the removed disk after it left');
    }
    assert.ok(othersLogged > 0, 'the workload was logged write by write during the disk sync');
    assert.equal(copied, 3 * MiB, 'each new disk was copied once');

    // The point before the change rebuilds the disks it had, as the workload record says they were.
    assert.deepEqual(before.disks?.map((d) => d.diskId).sort(), ['app-1-disk-0', 'db-1-disk-0', 'db-1-disk-1']);
    const record = readWorkloadRecord(path.join(bed.stack.dir, 'primary', 'workload-record.jsonl'));
    await rehydrate({ store: store(), ownership: ownership(), target: bed.recovery.client, disks: before.disks, datastore: 'ds-b', upTo: { kind: 'position', position: before.position }, targetDiskId: (id) => `before-${id}` });
    for (const disk of before.disks) {
      const expected = expectedDiskContent(record, disk.diskId, disk.sizeBytes, { sequence: before.lastJournalSequence });
      assert.ok((await bed.recovery.client.readDisk(`before-${disk.diskId}`, 0, disk.sizeBytes)).equals(expected), `${disk.diskId} at the point before the change`);
    }

    // The point after it records the new configuration and rebuilds every current disk byte for byte.
    assert.deepEqual(after.vms.map((vm) => [vm.name, vm.diskIds]), [['app-1', ['app-1-disk-0']], ['db-1', ['db-1-disk-0', 'db-1-disk-2']], ['web-1', ['web-1-disk-0']]]);
    assert.deepEqual(after.disks, listed.disks);
    await rebuildEquals(after, after.disks, 'after');
  });

  it('survives the site worker killed in the middle of a disk sync: no gap, no copy twice', async () => {
    await admin(bed.primary, bed.sites.token, '/admin/workload', { writesPerSecond: 150, blockSize: 4096, pattern: 'random', seed: 'kill' });
    const stretchesBefore = (await listResyncs(store(), ownership())).length;
    await diskWithData('app-1-disk-1', 24 * MiB);
    await bed.primary.client.reconfigureVm('app-1', { diskIds: ['app-1-disk-0', 'app-1-disk-1'] });
    for (let waited = 0; (await listResyncs(store(), ownership())).length === stretchesBefore; waited += 50) {
      assert.ok(waited < 30_000, 'the disk sync did not start');
      await sleep(50);
    }
    await bed.workers.crash('site primary');
    assert.equal((await listResyncs(store(), ownership())).at(-1)!.consistentFrom, undefined, 'killed before the disk sync finished');
    await sleep(1_000);
    await bed.workers.site(bed.primary, 'primary');
    await sleep(1_000);
    await admin(bed.primary, bed.sites.token, '/admin/workload', undefined, 'DELETE');
    await caughtUp();
    const point = await pointTaken(await handle.executeUpdate(restorePointNowUpdate, { args: [{}] }));
    await handle.signal(stopProtectionSignal);
    await handle.result();

    const stretches = await listResyncs(store(), ownership());
    assert.equal(stretches.length, stretchesBefore + 1, 'one stretch for the sync, however often it was retried');
    const stretch = stretches.at(-1)!;
    assert.ok(stretch.consistentFrom);
    let copied = 0;
    const chain = (await resolveChain(store(), ownership())).filter((l) => l.segment >= stretch.segment);
    for await (const { segment } of readChain(store(), chain, 4)) copied += segment.entries.filter((e) => e.sequence === 0 && e.diskId === 'app-1-disk-1').reduce((sum, e) => sum + e.data.length, 0);
    assert.equal(copied, 24 * MiB, 'the disk was copied exactly once');
    await rebuildEquals(point, point.disks!, 'killed');
  });
});
