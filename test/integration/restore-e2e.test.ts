import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { restoreRouter } from '../../api/restore';
import { restorePointsRouter } from '../../api/restore-points';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import { DomainKeys } from '../../datapath/keys';
import { Ownership } from '../../datapath/ownership';
import { manifestSchema, parseRecord, restorePointSchema, type RestorePoint } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import { blockContent, expectedDiskContent, readWorkloadRecord, type WorkloadWrite } from '../../sites/workload';
import type { OperationReport } from '../../workflows/operation-messages';
import { protectStatusQuery, restorePointNowUpdate } from '../../workflows/protect';
import type { RestoreReport } from '../../workflows/restore-messages';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { replayClosedHistories } from '../harness/histories';
import { siteWorkersBehindProxy, type S3FaultProxy } from '../harness/s3-fault-proxy';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DOMAIN = 'india';
const [DB, APP] = domainVms(DOMAIN);

describe('restore in place end to end, on real Temporal, S3, a site and worker processes: the domain reverted while its workload writes, undone, one VM alone', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  // The primary's site worker reaches the store through a proxy: a test holds the initial sync's chunk writes there.
  const bed = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration'] });
  const { stack, sites, primary, recovery, store, runbooks } = bed;
  let proxy: S3FaultProxy | undefined;
  const api = useTestApi({
    principals: [operator],
    routers: (log) => [
      runbooksRouter({ store: runbooks, log }),
      operationsRouter({ client: stack.client, runbooks, store, log }),
      restoreRouter({ client: stack.client, runbooks, store, log }),
      restorePointsRouter({ client: stack.client, store, runbooks, log }),
    ],
  });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);
  let seeds = 0;
  const startWorkload = () => admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: `restore-e2e-${++seeds}` });
  const stopWorkload = () => admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
  const record = () => readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));

  before(async () => {
    proxy = await siteWorkersBehindProxy(bed, ['primary']);
    await startWorkload();
    await protectAtPrimary(stack.client, DOMAIN);
    await submitRunbook(runbookYaml(DOMAIN, {}));
    await waitFor(`${DOMAIN} recorded as Protected`, async () => (await readDomainStatus(store, DOMAIN))?.mode === 'Protected', 30_000);
  });

  after(() => proxy?.close());

  /** Every disk of the domain at the primary: its id and size. */
  async function disks(vms = domainVms(DOMAIN)): Promise<Array<{ id: string; size: number }>> {
    const ids = (await Promise.all(vms.map(async (vm) => (await primary.client.getVm(vm)).diskIds))).flat();
    return Promise.all(ids.map(async (id) => ({ id, size: (await primary.client.getDisk(id)).sizeBytes })));
  }

  const readDisk = async ({ id, size }: { id: string; size: number }) => primary.client.readDisk(id, 0, size);

  /** `image` with `writes` to the disk applied in order. */
  function overlay(image: Buffer, diskId: string, writes: WorkloadWrite[]): Buffer {
    for (const w of writes) if (w.diskId === diskId) blockContent(w.seed, w.n, w.length).copy(image, w.offset);
    return image;
  }

  async function restore(body: Record<string, unknown>): Promise<OperationReport & { restore: RestoreReport }> {
    const started = await call('POST', `/domains/${DOMAIN}/restore`, { confirm: DOMAIN, ...body });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.match(String(started.body.workflowId), new RegExp(`^restore/${DOMAIN}/`));
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport & { restore?: RestoreReport };
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.ok(report.restore, 'the report has a restore section');
    return report as OperationReport & { restore: RestoreReport };
  }

  /** When the restore's VMs were all shut down: they wrote nothing from then until the plan powered them on again. */
  function shutDownAt(report: OperationReport): number {
    const step = report.steps.find((s) => s.name.startsWith('shut down VMs'));
    assert.ok(step?.endedAt, 'the restore shut the VMs down');
    return step.endedAt;
  }

  async function savedPoint(id: string): Promise<RestorePoint> {
    const key = new DomainKeys(store.prefix, DOMAIN).point(id);
    const body = await store.get(key);
    assert.ok(body, `restore point ${id} is on the storage site`);
    return parseRecord(restorePointSchema, key, body);
  }

  /** Protection of the current epoch logs every write again (its initial sync committed), and has replicated the journal so far. */
  async function protectionCaughtUp(): Promise<number> {
    const { epoch } = await new Ownership(store, DOMAIN).inspect();
    const handle = stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', epoch));
    const { lastSequence } = await primary.client.readJournal({ afterSequence: 0, maxEntries: 1 });
    await waitFor(`protection of epoch ${epoch} logging and caught up`, async () => {
      const status = await handle.query(protectStatusQuery);
      return status.mode === 'log' && status.cursor >= lastSequence;
    }, 60_000);
    return epoch;
  }

  it('refuses bad input with 400 naming the field, and another site than the owner with 409', async () => {
    const future = new Date(Date.now() + 60_000).toISOString();
    const refusals: Array<[Record<string, unknown>, number, RegExp]> = [
      [{ pointInTime: { at: future } }, 400, /pointInTime/],
      [{ pointInTime: { at: new Date(Date.now() - 2 * 86_400_000).toISOString() } }, 400, /pointInTime\.at.*outside the protection window/],
      [{ pointInTime: { restorePoint: '0000000001-0000000000000042-17' } }, 400, /pointInTime\.restorePoint/],
      [{ pointInTime: { at: new Date().toISOString() }, vms: ['no-such-vm'] }, 400, /vms/],
      [{ pointInTime: { at: new Date().toISOString() }, confirm: undefined }, 400, /confirm/],
      [{ pointInTime: { at: new Date().toISOString() }, confirm: 'another-domain' }, 400, /confirm/],
      [{ pointInTime: { at: new Date().toISOString() }, site: 'recovery' }, 409, /primary/],
    ];
    for (const [body, status, named] of refusals) {
      const refused = await call('POST', `/domains/${DOMAIN}/restore`, { confirm: DOMAIN, ...body });
      assert.equal(refused.status, status, `${JSON.stringify(body)}: ${JSON.stringify(refused.body)}`);
      assert.match(JSON.stringify(refused.body), named);
    }
    assert.equal((await call('GET', `/domains/${DOMAIN}/operations`)).body.running, null, 'nothing started');
  });

  it('reverts the whole domain to an instant a few seconds back while its workload writes, byte-identical; a restore to the point it saved undoes it', async () => {
    await sleep(3_000);
    const instant = Date.now();
    await sleep(5_000);
    const first = await restore({ pointInTime: { at: new Date(instant).toISOString() } });
    assert.deepEqual(first.restore.epochs, { before: 1, after: 2 });
    assert.deepEqual(first.restore.vms.map((v) => [v.vm, v.restored]).sort(), domainVms(DOMAIN).map((vm) => [vm, true]).sort());
    assert.ok(first.rpoMs! >= 5_000, `RPO ${first.rpoMs} ms: the data is from the instant`);
    assert.ok(first.restore.vms.every((v) => v.restored && v.state === 'poweredOn'), 'the plan powered every VM on');
    const saved = await savedPoint(first.restore.savedPoint.id);
    assert.equal(saved.position.epoch, 1, 'the state replaced was saved in the epoch the restore left');

    await stopWorkload();
    const afterFirst = record();
    const restoredAt = shutDownAt(first);
    for (const disk of await disks()) {
      const expected = overlay(expectedDiskContent(afterFirst, disk.id, disk.size, { instant }), disk.id, afterFirst.filter((w) => w.at > restoredAt));
      assert.ok((await readDisk(disk)).equals(expected), `${disk.id} holds what it held at the instant, and what the workload wrote since the restore`);
    }

    await startWorkload();
    await protectionCaughtUp();
    const undo = await restore({ pointInTime: { restorePoint: saved.id } });
    assert.deepEqual(undo.restore.epochs, { before: 2, after: 3 });
    await stopWorkload();
    const afterUndo = record();
    const undoneAt = shutDownAt(undo);
    for (const disk of await disks()) {
      const expected = overlay(expectedDiskContent(afterUndo, disk.id, disk.size, { sequence: saved.lastJournalSequence }), disk.id, afterUndo.filter((w) => w.at > undoneAt));
      assert.ok((await readDisk(disk)).equals(expected), `${disk.id} holds again what it held when the first restore saved it`);
    }
  });

  it('restores one VM: the other keeps running and keeps every write, and protection of the whole domain goes on in the new epoch', async () => {
    // A point whose contents are known: taken with the workload stopped and the log caught up.
    const epoch = await protectionCaughtUp();
    const point = await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', epoch)).executeUpdate(restorePointNowUpdate, { args: [{}] });
    const atPoint = new Map(await Promise.all((await disks()).map(async (d) => [d.id, await readDisk(d)] as const)));
    const lastBefore = Math.max(...record().map((w) => w.sequence));
    await startWorkload();
    await sleep(4_000);

    const dbStates = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        dbStates.add((await primary.client.getVm(DB)).powerState);
        await sleep(150);
      }
    })();
    const report = await restore({ pointInTime: { restorePoint: point.id }, vms: [APP] });
    watching = false;
    await watch;
    assert.deepEqual(report.restore.vms.map((v) => [v.vm, v.restored]).sort(), [[APP, true], [DB, false]]);
    assert.deepEqual([...dbStates], ['poweredOn'], `${DB} ran throughout`);
    assert.equal((await primary.client.getVm(APP)).powerState, 'poweredOn');

    await stopWorkload();
    const writes = record();
    const restoredAt = shutDownAt(report);
    for (const disk of await disks([APP])) {
      const expected = overlay(Buffer.from(atPoint.get(disk.id)!), disk.id, writes.filter((w) => w.at > restoredAt));
      assert.ok((await readDisk(disk)).equals(expected), `${disk.id} holds the point, and what the workload wrote since the restore`);
    }
    for (const disk of await disks([DB])) {
      const expected = overlay(Buffer.from(atPoint.get(disk.id)!), disk.id, writes.filter((w) => w.sequence > lastBefore));
      assert.ok((await readDisk(disk)).equals(expected), `${disk.id} was not touched: every write the workload made is on it`);
    }
    // The new epoch's protection covers the VM not restored too: its base and log rebuild the whole domain as it is now.
    assert.equal(await protectionCaughtUp(), epoch + 1);
    const now = await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', epoch + 1)).executeUpdate(restorePointNowUpdate, { args: [{}] });
    const manifest = parseRecord(manifestSchema, new DomainKeys(store.prefix, DOMAIN).manifest(), (await store.get(new DomainKeys(store.prefix, DOMAIN).manifest()))!);
    await rehydrate({ store, ownership: new Ownership(store, DOMAIN), target: recovery.client, disks: manifest.disks, datastore: 'ds-b', upTo: { kind: 'position', position: now.position }, targetDiskId: (id) => `check-${id}` });
    for (const disk of await disks()) {
      assert.ok((await recovery.client.readDisk(`check-${disk.id}`, 0, disk.size)).equals(await readDisk(disk)), `${disk.id} rebuilt from the new epoch's base and log is the disk at the primary`);
    }
  });

  it('refuses a restore at once (409, nothing started) while the new epoch\'s initial sync runs, saying how far it is, and accepts one once the sync is done', async () => {
    const epoch = await protectionCaughtUp();
    const diskCount = (await disks()).length;
    const point = await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', epoch)).executeUpdate(restorePointNowUpdate, { args: [{}] });
    // The restore's new epoch copies the disks into its base; its chunk writes wait at the proxy.
    proxy!.setRules({ hold: { method: 'PUT', path: /\/base\/\d{10}-\d{16}\/chunks\// } });
    try {
      const report = await restore({ pointInTime: { restorePoint: point.id }, vms: [APP] });
      assert.deepEqual(report.restore.epochs, { before: epoch, after: epoch + 1 });
      await waitFor('the initial sync writing its first chunk', () => Promise.resolve(proxy!.counts.held > 0), 30_000);
      const status = await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', epoch + 1)).query(protectStatusQuery);
      assert.equal(status.mode, 'initial-sync');

      const refused = await call('POST', `/domains/${DOMAIN}/restore`, { confirm: DOMAIN, pointInTime: { restorePoint: point.id } });
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.match(String(refused.body.detail), new RegExp(`protection of epoch ${epoch + 1} is in its initial sync \\((${diskCount} disks to copy, none copied yet|copying disk \\d+ of ${diskCount}, [\\d.]+ GiB read so far)\\) and takes restore points only once it is finished`));
      assert.equal((await call('GET', `/domains/${DOMAIN}/operations`)).body.running, null, 'nothing started');
      // Asked of the protection itself, its restore-point update refuses in the same words.
      const noPoint = await call('POST', `/domains/${DOMAIN}/restore-points`, { label: 'during the sync' });
      assert.equal(noPoint.status, 409, JSON.stringify(noPoint.body));
      assert.match(String(noPoint.body.detail), new RegExp(`protection of ${DOMAIN} at primary \\(epoch ${epoch + 1}\\) is in its initial sync and takes restore points only once it is finished`));
    } finally {
      proxy!.clear();
    }
    assert.equal(await protectionCaughtUp(), epoch + 1, 'the held sync finished once its writes went through');
    const accepted = await restore({ pointInTime: { restorePoint: point.id }, vms: [APP] });
    assert.deepEqual(accepted.restore.epochs, { before: epoch + 1, after: epoch + 2 });
  });

  it('replays every restore\'s history against the current code', async () => {
    assert.equal(await replayClosedHistories(stack.client, ['restore']), 5);
  });
});
