import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SiteClient } from '../../sites/client';
import { SiteError, type RegisterVmSpec } from '../../sites/provider';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { admin, useTestSites } from '../harness/sites';

const MiB = 1024 * 1024;
const recoveryPlacement = { datacenter: 'dc-b', cluster: 'cluster-b1', resourcePool: 'dr-pool', datastore: 'ds-b' };

async function rejectsWith(promise: Promise<unknown>, code: string, status: number, detail?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SiteError, String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.status, status);
    if (detail) assert.match(error.message, detail);
    return true;
  });
}

describe('simulated site service over HTTP, as a real process', () => {
  const { dir, sites, primary, recovery } = useTestSites();

  it('serves its inventory and the provisioned protected domain, powered on', async () => {
    const inventory = await recovery.client.inventory();
    assert.equal(inventory.site, 'recovery');
    assert.deepEqual(inventory.networks, ['dr-db', 'dr-app', 'dr-replication', 'dr-rocva-internal', 'dr-management', 'test-db', 'test-app']);
    const vms = await primary.client.listVms();
    assert.deepEqual(vms.map((v) => [v.name, v.powerState, v.diskIds]), [
      ['app-1', 'poweredOn', ['app-1-disk-0']],
      ['db-1', 'poweredOn', ['db-1-disk-0', 'db-1-disk-1']],
    ]);
    assert.equal((await primary.client.getDisk('db-1-disk-0')).sizeBytes, 2 * MiB);
  });

  it('creates disks, registers a VM idempotently, reconfigures it, and refuses conflicts with typed errors', async () => {
    const client = recovery.client;
    await client.createDisk({ id: 'web-1-disk-0', datastore: 'ds-b', sizeBytes: MiB, protected: false });
    assert.equal((await client.createDisk({ id: 'web-1-disk-0', datastore: 'ds-b', sizeBytes: MiB, protected: false })).sizeBytes, MiB, 'same disk again is fine');
    await rejectsWith(client.createDisk({ id: 'web-1-disk-0', datastore: 'ds-b', sizeBytes: 2 * MiB, protected: false }), 'NameConflict', 409);
    const spec: RegisterVmSpec = { name: 'web-1', cpus: 2, memoryMiB: 2048, placement: recoveryPlacement, nics: [{ network: 'dr-app' }], diskIds: ['web-1-disk-0'] };
    const first = await client.registerVm(spec);
    const again = await client.registerVm(spec);
    assert.deepEqual(again, first);
    assert.equal((await client.listVms()).filter((v) => v.name === 'web-1').length, 1, 'no duplicate VM');
    await rejectsWith(client.registerVm({ ...spec, name: 'web-2' }), 'NameConflict', 409, /already attached to "web-1"/);
    await rejectsWith(client.registerVm({ ...spec, name: 'web-3', diskIds: [], placement: { ...recoveryPlacement, cluster: 'nope' } }), 'UnknownPlacement', 422, /cluster "nope"/);
    await rejectsWith(client.registerVm({ ...spec, name: 'web-3', diskIds: [], nics: [{ network: 'prod-app' }] }), 'UnknownPlacement', 422, /network "prod-app"/);

    const reconfigured = await client.reconfigureVm('web-1', { cpus: 4, nics: [{ network: 'dr-app', ip: { address: '10.20.1.5', prefix: 24, gateway: '10.20.1.1', dns: [] } }], storagePolicy: 'gold' });
    assert.equal(reconfigured.cpus, 4);
    assert.equal(reconfigured.nics[0].ip?.address, '10.20.1.5');
    await rejectsWith(client.reconfigureVm('web-1', { storagePolicy: 'platinum' }), 'UnknownPlacement', 422);
    await rejectsWith(client.getVm('nope'), 'VmNotFound', 404);
    await rejectsWith(client.powerOn('nope'), 'VmNotFound', 404);
  });

  it('powers on with a boot delay before the guest heartbeats, accepts target states, shuts down gracefully or times out', async () => {
    const client = recovery.client;
    assert.equal(await client.guestHeartbeat('web-1'), 'gray');
    assert.equal((await client.powerOn('web-1')).alreadyOn, false);
    assert.equal(await client.guestHeartbeat('web-1'), 'gray', 'still booting');
    await rejectsWith(client.reconfigureVm('web-1', { cpus: 8 }), 'InvalidPowerState', 409);
    await rejectsWith(client.unregisterVm('web-1'), 'InvalidPowerState', 409);
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(await client.guestHeartbeat('web-1'), 'green');
    const again = await client.powerOn('web-1');
    assert.deepEqual([again.vm.powerState, again.alreadyOn], ['poweredOn', true], 'powering on a running VM is fine');
    await rejectsWith(client.shutdownGuest('web-1', 100), 'GuestShutdownTimeout', 409, /did not shut down within 100 ms/);
    assert.equal(await client.shutdownGuest('web-1', 5_000), 'shutDown');
    assert.equal(await client.shutdownGuest('web-1', 5_000), 'alreadyOff');
    assert.equal((await client.powerOff('web-1')).powerState, 'poweredOff');

    const events = await client.events();
    const mine = events.filter((e) => e.vm === 'web-1').map((e) => e.type);
    assert.deepEqual(mine, ['VmRegistered', 'VmReconfigured', 'VmPoweredOn', 'GuestShutdownRequested', 'GuestShutdownTimedOut', 'GuestShutdownRequested', 'VmPoweredOff']);
    assert.ok(events.every((e, i) => i === 0 || e.sequence > events[i - 1].sequence && e.at >= events[i - 1].at));
  });

  it('refuses a power-on whose metadata condition holds, in the same call, and leaves the VM off', async () => {
    const client = recovery.client;
    const spec: RegisterVmSpec = { name: 'stale-1', cpus: 1, memoryMiB: 512, placement: recoveryPlacement, nics: [], diskIds: [], metadata: { drState: 'inactive', drInactiveBy: 'resolve-conflict-1' } };
    await client.registerVm(spec);
    await rejectsWith(client.powerOn('stale-1', { unlessMetadata: { drState: 'inactive' } }), 'PowerOnRefused', 409, /"stale-1" is marked drState=inactive/);
    assert.equal((await client.getVm('stale-1')).powerState, 'poweredOff');
    assert.equal((await client.events()).filter((e) => e.vm === 'stale-1' && e.type === 'VmPoweredOn').length, 0, 'nothing powered on');
    // Every listed value must match: a VM marked otherwise is powered on.
    assert.equal((await client.powerOn('stale-1', { unlessMetadata: { drState: 'inactive', drInactiveBy: 'another-operation' } })).alreadyOn, false);
    const running = await client.powerOn('stale-1', { unlessMetadata: { drState: 'inactive' } });
    assert.deepEqual([running.vm.powerState, running.alreadyOn], ['poweredOn', true], 'a running VM answers alreadyOn whatever it is marked');
    const bad = await fetch(`${recovery.url}/api/vms/stale-1/power-on`, { method: 'POST', headers: { authorization: `Bearer ${sites.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ unlessMetadata: 'inactive' }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { detail: string }).detail, /unlessMetadata/);
  });

  it('deploys and destroys a RocVA idempotently on the runbook networks', async () => {
    const spec = { name: 'rocva-demo-1', placement: recoveryPlacement, networks: { externalReplication: 'dr-replication', internal: 'dr-rocva-internal', management: 'dr-management' } };
    const rocva = await recovery.client.deployRocva(spec);
    await recovery.client.deployRocva(spec);
    assert.equal(rocva.kind, 'rocva');
    assert.equal(rocva.powerState, 'poweredOn');
    assert.deepEqual(rocva.nics.map((n) => n.network), ['dr-replication', 'dr-rocva-internal', 'dr-management']);
    assert.equal((await recovery.client.listVms()).filter((v) => v.kind === 'rocva').length, 1);
    await recovery.client.destroyRocva(spec.name);
    await recovery.client.destroyRocva(spec.name);
    await rejectsWith(recovery.client.getVm(spec.name), 'VmNotFound', 404);
    await rejectsWith(recovery.client.deployRocva({ ...spec, networks: { ...spec.networks, internal: 'nowhere' } }), 'UnknownPlacement', 422);
  });

  it('creates a representation VM holding rehydration target disks, and removes it with its disks', async () => {
    const client = recovery.client;
    await client.createDisk({ id: 'repr-db-1-disk-0', datastore: 'ds-b', sizeBytes: 2 * MiB, protected: false });
    const spec: RegisterVmSpec = { name: 'repr-db-1', kind: 'representation', cpus: 1, memoryMiB: 512, placement: recoveryPlacement, nics: [], diskIds: ['repr-db-1-disk-0'], metadata: { for: 'db-1' } };
    const representation = await client.registerVm(spec);
    assert.equal(representation.kind, 'representation');
    assert.equal(representation.powerState, 'poweredOff');
    assert.deepEqual(await client.allocatedChunks('repr-db-1-disk-0', MiB), [], 'a new thin disk has no chunk allocated');
    await client.writeDisk('repr-db-1-disk-0', MiB, Buffer.alloc(512, 7));
    assert.deepEqual(await client.readDisk('repr-db-1-disk-0', MiB, 512), Buffer.alloc(512, 7));
    assert.deepEqual(await client.allocatedChunks('repr-db-1-disk-0', MiB), [MiB], 'only the chunk written');
    assert.deepEqual(await client.allocatedChunks('repr-db-1-disk-0', 64 * 1024), [MiB]);
    await rejectsWith(client.allocatedChunks('repr-db-1-disk-0', 1000), 'InvalidRequest', 400, /multiple of 4096/);
    await rejectsWith(client.allocatedChunks('repr-db-1-disk-0', 2 ** 40), 'InvalidRequest', 400, /multiple of 4096/);
    await rejectsWith(client.registerVm({ ...spec, kind: 'vm' }), 'NameConflict', 409, /already exists at site recovery as a representation/);
    await rejectsWith(client.deleteDisk('repr-db-1-disk-0'), 'NameConflict', 409, /attached to "repr-db-1"/);
    await client.unregisterVm('repr-db-1', { deleteDisks: true });
    await client.unregisterVm('repr-db-1', { deleteDisks: true });
    await rejectsWith(client.getDisk('repr-db-1-disk-0'), 'DiskNotFound', 404);
  });

  it('fences data-path writers: an older fence than a disk took is refused, also after a SIGKILL and restart, and no fenced write reaches a running VM\'s disk', async () => {
    const client = recovery.client;
    const fencedEvents = async () => (await client.events()).filter((e) => e.type === 'DiskWriteFenced' && e.detail?.disk === 'fenced-disk-0');
    await client.createDisk({ id: 'fenced-disk-0', datastore: 'ds-b', sizeBytes: MiB, protected: false });
    await client.registerVm({ name: 'repr-fenced', kind: 'representation', cpus: 1, memoryMiB: 512, placement: recoveryPlacement, nics: [], diskIds: ['fenced-disk-0'] });
    // A retry (fence 2000) has written: the attempt it replaced (fence 1000) is refused, every time, recorded once.
    await client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 1), { fence: 1000 });
    await client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 2), { fence: 2000 });
    await rejectsWith(client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 3), { fence: 1000 }), 'WriteFenced', 409, /fence 2000.*fence 1000.*superseded/);
    await rejectsWith(client.writeDisk('fenced-disk-0', 512, Buffer.alloc(512, 3), { fence: 1000 }), 'WriteFenced', 409);
    await client.writeDisk('fenced-disk-0', 512, Buffer.alloc(512, 2), { fence: 2000 });
    assert.deepEqual(await client.readDisk('fenced-disk-0', 0, 1024), Buffer.alloc(1024, 2), 'nothing of the superseded writer landed');
    assert.deepEqual((await fencedEvents()).map((e) => e.detail), [{ disk: 'fenced-disk-0', fence: 1000, diskFence: 2000, why: 'superseded' }]);
    assert.equal((await client.getDisk('fenced-disk-0')).writeFence, 2000);

    await recovery.process.kill();
    await sites.start('recovery');
    await rejectsWith(client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 3), { fence: 1999 }), 'WriteFenced', 409, /superseded/);
    assert.deepEqual(await client.readDisk('fenced-disk-0', 0, 1024), Buffer.alloc(1024, 2), 'the fence outlived the restart');

    // The recovered VM holds the disk and runs: only its guest (no fence) writes it, whatever the fence.
    await client.unregisterVm('repr-fenced');
    await client.registerVm({ name: 'fenced-vm', cpus: 1, memoryMiB: 512, placement: recoveryPlacement, nics: [], diskIds: ['fenced-disk-0'] });
    await client.powerOn('fenced-vm');
    await rejectsWith(client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 4), { fence: 5000 }), 'WriteFenced', 409, /"fenced-vm", which is running/);
    await client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 5));
    assert.deepEqual(await client.readDisk('fenced-disk-0', 0, 512), Buffer.alloc(512, 5));
    assert.equal((await fencedEvents()).at(-1)?.vm, 'fenced-vm');
    await client.powerOff('fenced-vm');
    await client.writeDisk('fenced-disk-0', 0, Buffer.alloc(512, 6), { fence: 5000 });
    assert.equal((await client.getDisk('fenced-disk-0')).writeFence, 5000);

    const badFence = await fetch(`${recovery.url}/api/disks/fenced-disk-0/data?offset=0`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${sites.token}`, 'content-type': 'application/octet-stream', 'x-dr-write-fence': 'soon' },
      body: Buffer.alloc(512, 7),
    });
    assert.equal(badFence.status, 400);
    assert.match(((await badFence.json()) as { detail: string }).detail, /header x-dr-write-fence must be a non-negative integer/);
    assert.deepEqual(await client.readDisk('fenced-disk-0', 0, 512), Buffer.alloc(512, 6));
    await client.unregisterVm('fenced-vm', { deleteDisks: true });
  });

  it('reads and writes disk ranges; journals writes to protected disks in order, drained by cursor and trimmed', async () => {
    const client = primary.client;
    const start = (await client.readJournal({ afterSequence: 0, maxEntries: 1 })).lastSequence;
    const writes = Array.from({ length: 20 }, (_, i) => ({ disk: i % 3 === 0 ? 'app-1-disk-0' : 'db-1-disk-1', offset: i * 4096, data: Buffer.alloc(4096, i + 1) }));
    for (const w of writes) await client.writeDisk(w.disk, w.offset, w.data);
    assert.deepEqual(await client.readDisk('db-1-disk-1', 4096, 4096), Buffer.alloc(4096, 2));
    await rejectsWith(client.readDisk('db-1-disk-1', MiB - 10, 20), 'RangeOutOfDisk', 416);
    await rejectsWith(client.writeDisk('db-1-disk-1', MiB, Buffer.alloc(1)), 'RangeOutOfDisk', 416);

    const drained: Array<{ sequence: number; disk: string; first: number }> = [];
    let cursor = start;
    for (;;) {
      const batch = await client.readJournal({ afterSequence: cursor, maxEntries: 7 });
      if (batch.entries.length === 0) break;
      for (const e of batch.entries) drained.push({ sequence: e.sequence, disk: e.diskId, first: e.data[0] });
      cursor = batch.entries.at(-1)!.sequence;
    }
    assert.deepEqual(drained.map((d) => d.first), writes.map((_, i) => i + 1), 'every write once, in order');
    assert.ok(drained.every((d, i) => i === 0 || d.sequence === drained[i - 1].sequence + 1), 'no gaps in the sequence');
    const onlyApp = await client.readJournal({ afterSequence: start, vms: ['app-1'] });
    assert.deepEqual(onlyApp.entries.map((e) => e.diskId), Array(7).fill('app-1-disk-0'));

    await client.trimJournal(cursor - 5);
    const after = await client.readJournal({ afterSequence: 0 });
    assert.equal(after.firstRetainedSequence, cursor - 4);
    const recoveryJournal = await recovery.client.readJournal({ afterSequence: 0 });
    assert.equal(recoveryJournal.lastSequence, 0, 'unprotected disks are not journaled');
  });

  it('holds a journal read with a wait until a write of its VMs arrives; a write of another VM does not end it', async () => {
    const client = primary.client;
    const last = (await client.readJournal({ afterSequence: 0, maxEntries: 1 })).lastSequence;
    const held = client.readJournal({ afterSequence: last, vms: ['app-1'], waitMs: 10_000 });
    // Written while the read is held: the other VM's write first, which must not answer it.
    await client.writeDisk('db-1-disk-1', 0, Buffer.alloc(512, 0x0d));
    await client.writeDisk('app-1-disk-0', 0, Buffer.alloc(512, 0x0a));
    const batch = await held;
    assert.deepEqual(batch.entries.map((e) => [e.diskId, e.data[0]]), [['app-1-disk-0', 0x0a]]);
    assert.equal(batch.lastSequence, last + 2);

    const unheld = await client.readJournal({ afterSequence: batch.lastSequence, vms: ['app-1'], waitMs: 300 });
    assert.deepEqual(unheld.entries, [], 'an idle journal answers empty once the wait is over');
  });

  it('keeps VMs, power states, disks and the journal across a SIGKILL and restart', async () => {
    const before = { vms: await primary.client.listVms(), journal: await primary.client.readJournal({ afterSequence: 0 }), disk: await primary.client.readDisk('db-1-disk-1', 0, 64 * 1024) };
    await primary.process.kill();
    await sites.start('primary');
    assert.deepEqual(await primary.client.listVms(), before.vms);
    const journal = await primary.client.readJournal({ afterSequence: 0 });
    assert.equal(journal.lastSequence, before.journal.lastSequence);
    assert.deepEqual(journal.entries.map((e) => [e.sequence, e.diskId, e.offset, e.data.length]), before.journal.entries.map((e) => [e.sequence, e.diskId, e.offset, e.data.length]));
    assert.deepEqual(await primary.client.readDisk('db-1-disk-1', 0, 64 * 1024), before.disk);
    await primary.client.writeDisk('db-1-disk-1', 0, Buffer.alloc(16, 9));
    assert.equal((await primary.client.readJournal({ afterSequence: 0 })).lastSequence, before.journal.lastSequence + 1, 'the sequence continues');
  });

  it('answers bad requests with 4xx problems and changes nothing', async () => {
    const vmsBefore = await primary.client.listVms();
    const eventsBefore = (await primary.client.events()).length;
    const wrongToken = new SiteClient({ site: 'primary', url: primary.url, token: 'wrong' });
    await rejectsWith(wrongToken.listVms(), 'Unauthorized', 401);
    const raw = (method: string, p: string, body: string, type = 'application/json') =>
      fetch(`${primary.url}${p}`, { method, headers: { authorization: `Bearer ${sites.token}`, 'content-type': type }, body });
    for (const [method, p, body] of [
      ['PUT', '/api/vms/x', '{"cpus": "many"}'],
      ['PUT', '/api/vms/x', '{not json'],
      ['PATCH', '/api/vms/db-1', '{"unknown": 1}'],
      ['PUT', '/api/disks/x', '{"datastore": "ds-a", "sizeBytes": -1}'],
      ['POST', '/api/vms/db-1/guest-shutdown', '{}'],
      ['POST', '/api/journal/trim', '{"upToSequence": "all"}'],
    ] as const) {
      const res = await raw(method, p, body);
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${p} ${body} -> ${res.status}`);
      assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
    }
    assert.equal((await raw('POST', '/api/journal/read', '{"afterSequence": -1}')).status, 400);
    assert.equal((await raw('POST', '/api/journal/read', '{"afterSequence": 0, "waitMs": 3600000}')).status, 400);
    assert.equal((await raw('PUT', '/api/disks/db-1-disk-1/data?offset=0', 'x', 'text/plain')).status, 400);
    assert.deepEqual(await primary.client.listVms(), vmsBefore);
    assert.equal((await primary.client.events()).length, eventsBefore);
  });

  it('stages disasters: latency, failing calls, hanging guest shutdowns, and a whole-site outage', async () => {
    await admin(primary, sites.token, '/admin/faults', { latencyMs: 300 });
    const started = Date.now();
    await primary.client.inventory();
    assert.ok(Date.now() - started >= 300);
    await admin(primary, sites.token, '/admin/faults', { latencyMs: 0, errorRate: 1 });
    await rejectsWith(primary.client.inventory(), 'SiteUnavailable', 503, /injected failure/);
    await admin(primary, sites.token, '/admin/faults', { errorRate: 0, hangGuestShutdown: true });
    await rejectsWith(primary.client.shutdownGuest('app-1', 500), 'GuestShutdownTimeout', 409);
    assert.equal((await primary.client.getVm('app-1')).powerState, 'poweredOn');
    await admin(primary, sites.token, '/admin/faults', { hangGuestShutdown: false });

    await admin(primary, sites.token, '/admin/outage');
    await rejectsWith(primary.client.listVms(), 'SiteUnavailable', 503, /unreachable/);
    await admin(primary, sites.token, '/admin/restore');
    assert.equal((await primary.client.listVms()).length, 2);
  });

  it('stages a partition for a while: requests dropped (the site unreachable) or delayed, healed by itself or by DELETE', async () => {
    const cut = await admin(recovery, sites.token, '/admin/partition', { mode: 'drop', forMs: 1_500 });
    assert.equal((cut.partition as { mode: string }).mode, 'drop');
    await rejectsWith(recovery.client.listVms(), 'SiteUnavailable', 503, /unreachable/);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    assert.ok(Array.isArray(await recovery.client.listVms()), 'the partition healed by itself');
    assert.equal((await admin(recovery, sites.token, '/admin/state', undefined, 'GET')).partition, null);

    await admin(recovery, sites.token, '/admin/partition', { mode: 'delay', delayMs: 400, forMs: 60_000 });
    let started = Date.now();
    await recovery.client.inventory();
    assert.ok(Date.now() - started >= 400, 'a delayed request is answered after the delay');
    await admin(recovery, sites.token, '/admin/partition', undefined, 'DELETE');
    started = Date.now();
    await recovery.client.inventory();
    assert.ok(Date.now() - started < 400, 'answered at once once the partition ended');
    await assert.rejects(admin(recovery, sites.token, '/admin/partition', { mode: 'drop' }), /answered 400/);
  });

  it('refuses a write that does not fit its datastore, naming it, once an operator shrank its capacity; accepts it once space is freed', async () => {
    const client = recovery.client;
    await client.createDisk({ id: 'full-0', datastore: 'ds-b-flash', sizeBytes: MiB, protected: false });
    await client.writeDisk('full-0', 0, Buffer.alloc(64 * 1024, 7));
    const usage = async () => ((await admin(recovery, sites.token, '/admin/state', undefined, 'GET')).datastores as Array<{ name: string; capacityBytes: number; usedBytes: number }>).find((d) => d.name === 'ds-b-flash')!;
    const { usedBytes } = await usage();
    assert.ok(usedBytes >= 64 * 1024, `the written blocks count as used: ${usedBytes}`);

    await admin(recovery, sites.token, '/admin/datastores/ds-b-flash', { capacityBytes: usedBytes + 4096 });
    assert.equal((await client.inventory()).datastores.find((d) => d.name === 'ds-b-flash')?.capacityBytes, usedBytes + 4096);
    await rejectsWith(client.writeDisk('full-0', 512 * 1024, Buffer.alloc(64 * 1024, 8)), 'DatastoreFull', 507, /datastore "ds-b-flash" at site recovery is full/);
    assert.deepEqual(await client.readDisk('full-0', 512 * 1024, 4), Buffer.alloc(4), 'nothing of the refused write is stored');
    await client.writeDisk('full-0', 0, Buffer.alloc(4096, 9));

    await client.deleteDisk('full-0');
    assert.equal((await usage()).usedBytes, 0, 'a deleted disk frees its space');
    await admin(recovery, sites.token, '/admin/datastores/ds-b-flash', { capacityBytes: 1024 ** 4 });
    await assert.rejects(admin(recovery, sites.token, '/admin/datastores/nowhere', { capacityBytes: 1 }), /answered 404/);
  });

  it('runs a guest workload whose own record reproduces every disk byte for byte at any journal position', async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 200, blockSize: 4096, pattern: 'random', seed: 'verify' });
    await new Promise((r) => setTimeout(r, 1500));
    const midway = (await primary.client.readJournal({ afterSequence: 0, maxEntries: 1 })).lastSequence;
    await new Promise((r) => setTimeout(r, 1000));
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    const record = readWorkloadRecord(path.join(dir, 'primary', 'workload-record.jsonl'));
    assert.ok(record.length >= 200, `${record.length} writes recorded`);
    assert.ok(record.some((w) => w.sequence > midway) && record.some((w) => w.sequence <= midway));

    // Disks written by the workload only: compare them whole with the record's reconstruction.
    for (const diskId of ['db-1-disk-0']) {
      const size = (await primary.client.getDisk(diskId)).sizeBytes;
      const actual = await primary.client.readDisk(diskId, 0, size);
      assert.ok(actual.equals(expectedDiskContent(record, diskId, size, { sequence: Number.MAX_SAFE_INTEGER })), `${diskId} equals its record`);
    }
    // At a past position, the journal entries up to it applied to zeros must give the record's image.
    const journal = await primary.client.readJournal({ afterSequence: 0, maxEntries: 1_000_000, maxBytes: 1024 * MiB });
    const image = Buffer.alloc(2 * MiB);
    for (const e of journal.entries) if (e.diskId === 'db-1-disk-0' && e.sequence <= midway) e.data.copy(image, e.offset);
    assert.ok(image.equals(expectedDiskContent(record, 'db-1-disk-0', 2 * MiB, { sequence: midway })));
  });
  it('starts journaling a recovered disk when protection resumes there, from the sequence it reports', async () => {
    const client = recovery.client;
    await client.createDisk({ id: 'resumed-disk-0', datastore: 'ds-b', sizeBytes: MiB, protected: false });
    await client.writeDisk('resumed-disk-0', 0, Buffer.alloc(4096, 1));
    const { disk, journalSequence } = await client.setDiskProtection('resumed-disk-0', true);
    assert.equal(disk.protected, true);
    assert.equal((await client.setDiskProtection('resumed-disk-0', true)).journalSequence, journalSequence, 'idempotent');
    await client.writeDisk('resumed-disk-0', 4096, Buffer.alloc(4096, 2));
    const journaled = await client.readJournal({ afterSequence: journalSequence });
    assert.deepEqual(journaled.entries.map((e) => [e.diskId, e.offset, e.data[0]]), [['resumed-disk-0', 4096, 2]], 'only writes after the switch');
    await client.setDiskProtection('resumed-disk-0', false);
    await client.writeDisk('resumed-disk-0', 8192, Buffer.alloc(4096, 3));
    assert.equal((await client.readJournal({ afterSequence: journalSequence })).entries.length, 1);
    await rejectsWith(client.setDiskProtection('no-such-disk', true), 'DiskNotFound', 404);
  });
  it('frees journal entries only once the replicators of every protected VM acknowledged them', async () => {
    const client = primary.client;
    await client.writeDisk('db-1-disk-0', 0, Buffer.alloc(512, 1));
    await client.writeDisk('app-1-disk-0', 0, Buffer.alloc(512, 2));
    const { lastSequence, firstRetainedSequence } = await client.readJournal({ afterSequence: 0, maxEntries: 1 });
    await client.trimJournal(lastSequence, ['db-1']);
    assert.equal((await client.readJournal({ afterSequence: 0, maxEntries: 1 })).firstRetainedSequence, firstRetainedSequence, 'app-1 has not acknowledged yet');
    await client.trimJournal(lastSequence, ['app-1']);
    assert.equal((await client.readJournal({ afterSequence: 0, maxEntries: 1 })).firstRetainedSequence, lastSequence + 1);
  });
});
