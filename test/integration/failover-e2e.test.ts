import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { listResyncs } from '../../datapath/bitmap';
import { Ownership } from '../../datapath/ownership';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { readDomainStatus } from '../../datapath/domain-status';
import type { SiteEvent } from '../../sites/provider';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import type { OperationReport } from '../../workflows/operation-messages';
import { protectStatusQuery } from '../../workflows/protect';
import { rehydration } from '../../workflows/rehydration';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useHttpServer, useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { replayClosedHistories } from '../harness/histories';
import { apiCalls } from '../harness/api-calls';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('failover end to end: planned and forced, on real Temporal, S3, sites and worker processes', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, recovery, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf']), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const hook = useHttpServer((_req, res) => res.writeHead(500).end('dns api down'));
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'failover-e2e' });
    await Promise.all(['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf'].map((domain) => protectAtPrimary(stack.client, domain)));
  });

  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);

  async function assertDisksEqual(domain: string, expected: (diskId: string, size: number) => Promise<Buffer>): Promise<void> {
    for (const vm of await recovery.client.listVms()) {
      if (!domainVms(domain).includes(vm.name)) continue;
      for (const diskId of vm.diskIds) {
        const disk = await recovery.client.getDisk(diskId);
        const actual = await recovery.client.readDisk(diskId, 0, disk.sizeBytes);
        assert.ok(actual.equals(await expected(diskId, disk.sizeBytes)), `${diskId} at the recovery site equals the recovered point`);
      }
    }
  }

  it('planned failover: shuts down, drains, hands over, rehydrates byte-identical disks, waits for the approval, powers on in runbook order', async () => {
    await submitRunbook(runbookYaml('alpha', { approval: true, vmDatastores: { 'a-app-1': 'ds-b-flash' } }));
    // A new protection records the domain Protected once its base exists.
    await waitFor('alpha recorded as Protected', async () => (await readDomainStatus(store, 'alpha'))?.mode === 'Protected', 30_000);
    assert.deepEqual((await readDomainStatus(store, 'alpha'))?.runningAt, 'primary');
    const eventsBefore = (await recovery.client.events()).at(-1)?.sequence ?? 0;
    const started = await call('POST', '/domains/alpha/failover', { type: 'planned' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, /^failover\/alpha\//);

    const second = await call('POST', '/domains/alpha/failover', { type: 'planned' });
    assert.equal(second.status, 409, 'one operation per domain');
    assert.match(JSON.stringify(second.body), /failover\/alpha\//);

    // The approval gate holds the app group: its VM stays off until an approver answers.
    await waitFor('approval gate', async () => {
      const { body } = await call('GET', `/operations/${encodeURIComponent(workflowId)}`);
      return (body.groups as Array<{ waitingForApproval?: unknown }>).some((g) => g.waitingForApproval);
    }, 120_000);
    assert.equal((await recovery.client.getVm('a-app-1')).powerState, 'poweredOff', 'app waits for the approval');
    const progress = (await call('GET', `/operations/${encodeURIComponent(workflowId)}`)).body.progress as { phase: string; bytesRehydrated: number };
    assert.equal(progress.phase, 'power on by the runbook');
    assert.ok(progress.bytesRehydrated > 0);
    assert.equal((await call('POST', `/operations/${encodeURIComponent(workflowId)}/approve`, { step: 'approve-app' })).status, 200);

    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.rpoMs, 0, 'a planned failover loses no acknowledged write');
    assert.ok(report.rtoMs! > 0 && report.steps.every((s) => s.state === 'done' && s.durationMs! >= 0));

    // The primary's disks are final after its shutdown: the recovered ones must equal them.
    await assertDisksEqual('alpha', (diskId, size) => primary.client.readDisk(diskId, 0, size));
    // The runbook's per-VM datastore override places that VM's disks; the others follow the placement.
    const datastoresOf = async (vm: string) => Promise.all((await recovery.client.getVm(vm)).diskIds.map(async (id) => (await recovery.client.getDisk(id)).datastore));
    assert.deepEqual(await datastoresOf('a-app-1'), ['ds-b-flash']);
    assert.deepEqual(await datastoresOf('a-db-1'), ['ds-b', 'ds-b']);
    const events = await recovery.client.events(eventsBefore);
    const poweredOn = (vm: string) => events.find((e: SiteEvent) => e.type === 'VmPoweredOn' && e.vm === vm)!.at;
    assert.ok(poweredOn('a-app-1') >= poweredOn('a-db-1') + 1_000, 'app after database plus its delay');
    const db = await recovery.client.getVm('a-db-1');
    assert.deepEqual(db.nics[0], { network: 'dr-db', ip: { address: '10.20.1.10', prefix: 24, gateway: '10.20.1.1', dns: ['10.20.0.53'] } });
    const vms = await recovery.client.listVms();
    assert.deepEqual(vms.filter((v) => v.kind !== 'vm'), [], 'no RocVA or representation VM is left');
    assert.equal((await readDomainStatus(store, 'alpha'))?.mode, 'Running in Failover');
    assert.equal((await new Ownership(store, 'alpha').inspect()).owner?.site, 'recovery');
    const domain = await call('GET', '/domains/alpha');
    assert.equal((domain.body.status as { mode: string }).mode, 'Running in Failover');
    assert.equal(domain.body.mode, 'Running in Failover');
    assert.deepEqual(domain.body.allowedOperations, ['power-on', 'failback', 'continuous-failback', 'permanent-failover', 'drill', 'restore']);
    // The mode table refuses a second failover before any workflow starts.
    const again = await call('POST', '/domains/alpha/failover', { type: 'planned' });
    assert.equal(again.status, 409);
    assert.equal(again.body.mode, 'Running in Failover');
    assert.match(String(again.body.detail), /failover is refused while alpha is Running in Failover; allowed now: power-on, failback, continuous-failback, permanent-failover, drill/);
  });

  it('planned failover whose webhook fails with policy abort compensates completely and gives the domain back to the primary', async () => {
    await submitRunbook(runbookYaml('bravo', { webhookUrl: `${hook.url}/zones/records` }));
    const before = (await recovery.client.listVms()).map((v) => v.name).sort();
    const started = await call('POST', '/domains/bravo/failover', { type: 'planned' });
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'FAILED');
    const { report } = result as { report: OperationReport };
    assert.equal(report.outcome, 'aborted');
    assert.match(report.failure!, /answered 500/);
    assert.ok(report.compensation!.undone.some((u) => u.startsWith('RocVA')));
    assert.ok(report.compensation!.undone.some((u) => u.includes('ownership of') && u.includes('back with primary')));
    assert.deepEqual(report.compensation!.remains, []);
    assert.deepEqual((await recovery.client.listVms()).map((v) => v.name).sort(), before, 'nothing of bravo is left at the recovery site');
    const owner = await new Ownership(store, 'bravo').inspect();
    assert.equal(owner.owner?.site, 'primary');
    assert.equal((await primary.client.getVm('b-db-1')).powerState, 'poweredOn', 'the primary runs again');
    // Protection resumed at the primary under the new epoch: new writes reach the log again.
    const tail = async () => (await resolveChain(store, new Ownership(store, 'bravo'))).filter((l) => l.epoch === owner.epoch).length;
    await waitFor('replication resumed at the primary', async () => (await tail()) > 0, 30_000);
  });

  it('forced failover: refuses without confirmation, fences the lost primary and recovers the latest consistent point', async () => {
    await submitRunbook(runbookYaml('bravo', {}));
    assert.equal((await call('POST', '/domains/bravo/failover', { type: 'forced' })).status, 400, 'a forced failover needs confirmation');
    const future = await call('POST', '/domains/bravo/failover', { type: 'forced', confirm: 'bravo', pointInTime: { at: new Date(Date.now() + 3_600_000).toISOString() } });
    assert.equal(future.status, 400);
    assert.match(JSON.stringify(future.body), /pointInTime\.at.*must not be in the future/);
    const badPoint = await call('POST', '/domains/bravo/failover', { type: 'forced', confirm: 'bravo', pointInTime: { restorePoint: '../../ownership/0000000009' } });
    assert.equal(badPoint.status, 400);
    assert.match(JSON.stringify(badPoint.body), /must be a restore point id/);
    assert.equal((await call('POST', '/domains/bravo/failover', { type: 'forced', confirm: 'bravo' }, null)).status, 401);
    await sleep(1_000);
    await admin(primary, sites.token, '/admin/outage');
    const started = await call('POST', '/domains/bravo/failover', { type: 'forced', confirm: 'bravo' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.ok(report.rpoMs! >= 0 && report.recoveryPoint!.description === 'the latest consistent point');

    // The recovered point is the end of the sealed log: recompute each disk from the workload's record.
    const ownership = new Ownership(store, 'bravo');
    const chain = (await resolveChain(store, ownership)).filter((l) => l.epoch < report.epoch!);
    let sequence = 0;
    for await (const { segment } of readChain(store, chain.slice(-1), 1)) sequence = segment.entries.at(-1)?.sequence ?? segment.lastSequence;
    const record = readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));
    await assertDisksEqual('bravo', (diskId, size) => Promise.resolve(expectedDiskContent(record, diskId, size, { sequence })));
    assert.equal((await ownership.inspect()).owner?.site, 'recovery');
    await admin(primary, sites.token, '/admin/restore');
  });
  it('forced failover to an instant: the disks are as they were then, and the new epoch\'s base replaces the old chain', async () => {
    await submitRunbook(runbookYaml('charlie', {}));
    await sleep(2_000);
    const instant = Date.now();
    await sleep(2_000);
    // A forced failover recovers what was replicated: wait until every write up to the instant is in the log, however loaded the machine is.
    const lastBefore = Math.max(0, ...readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl')).filter((w) => w.at <= instant).map((w) => w.sequence));
    const primaryProtection = stack.client.workflow.getHandle(protectionWorkflowId('charlie', 'primary', 1));
    await waitFor('writes up to the instant replicated', async () => (await primaryProtection.query(protectStatusQuery)).cursor >= lastBefore, 60_000);
    const started = await call('POST', '/domains/charlie/failover', { type: 'forced', confirm: 'charlie', pointInTime: { at: new Date(instant).toISOString() } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.ok(report.rpoMs! >= 2_000, `data from the chosen instant, ${report.rpoMs} ms before the declaration`);

    const record = readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));
    assert.ok(record.some((w) => w.vm === 'c-app-1' && w.at > instant), 'the primary wrote after the instant');
    await assertDisksEqual('charlie', (diskId, size) => Promise.resolve(expectedDiskContent(record, diskId, size, { instant })));

    // Protection at the recovery site starts with a base of the recovered disks: rebuilding the
    // domain from the storage site now gives them back, not the old chain's writes after the instant.
    const protection = stack.client.workflow.getHandle(protectionWorkflowId('charlie', 'recovery', report.epoch!));
    await waitFor('base of the new epoch', async () => (await protection.query(protectStatusQuery)).mode === 'log', 60_000);
    await stack.client.workflow.execute(rehydration, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'rehydrate/charlie/check',
      args: [{ domain: 'charlie', targetSite: 'recovery', datastore: 'ds-b', upTo: { kind: 'latest' }, diskIdPrefix: 'check-' }],
    });
    for (const diskId of ['c-app-1-disk-0', 'c-app-1-disk-1']) {
      const { sizeBytes } = await recovery.client.getDisk(diskId);
      assert.ok((await recovery.client.readDisk(`check-${diskId}`, 0, sizeBytes)).equals(await recovery.client.readDisk(diskId, 0, sizeBytes)), `${diskId} rebuilt from the new epoch`);
    }
  });
  it('a planned failover cancelled while it waits for an approval undoes everything and hands the domain back', async () => {
    await submitRunbook(runbookYaml('delta', { approval: true }));
    const started = await call('POST', '/domains/delta/failover', { type: 'planned' });
    const workflowId = String(started.body.workflowId);
    await waitFor('approval gate', async () => {
      const { body } = await call('GET', `/operations/${encodeURIComponent(workflowId)}`);
      return ((body.groups ?? []) as Array<{ waitingForApproval?: unknown }>).some((g) => g.waitingForApproval);
    }, 120_000);
    assert.equal((await recovery.client.getVm('d-db-1')).powerState, 'poweredOn', 'the database group already ran');
    assert.equal((await call('POST', `/operations/${encodeURIComponent(workflowId)}/cancel`)).status, 202);
    const { status } = await operationResult(workflowId);
    assert.equal(status, 'CANCELLED');
    const left = (await recovery.client.listVms()).filter((vm) => vm.name.startsWith('d-') || vm.name.includes('delta'));
    assert.deepEqual(left, [], 'no VM, representation VM or RocVA of delta is left');
    assert.equal((await new Ownership(store, 'delta').inspect()).owner?.site, 'primary');
    assert.equal((await primary.client.getVm('d-app-1')).powerState, 'poweredOn');
    await waitFor('the desk is free for the next operation', async () => (await call('GET', '/domains/delta/operations')).body.running === null, 10_000);
  });
  it('planned failover while a disk that just joined the domain is still being copied: waits for its disk sync and loses nothing', async () => {
    await submitRunbook(runbookYaml('echo', {}));
    const ownership = new Ownership(store, 'echo');
    const stretchesBefore = (await listResyncs(store, ownership)).length;
    // A disk with data written before protection knew of it, attached to a member VM: protection copies it into the log.
    const MiB = 1024 * 1024;
    await primary.client.createDisk({ id: 'e-db-1-disk-1', datastore: 'ds-a', sizeBytes: 16 * MiB, protected: false });
    for (let offset = 0; offset < 16 * MiB; offset += 256 * 1024) await primary.client.writeDisk('e-db-1-disk-1', offset, Buffer.alloc(4096, `echo:${offset}`));
    await primary.client.reconfigureVm('e-db-1', { diskIds: ['e-db-1-disk-0', 'e-db-1-disk-1'] });
    // Slowed, so that the copy (a slice of 1 MiB per segment) is still under way when the failover drains.
    await admin(primary, sites.token, '/admin/faults', { latencyMs: 100 });
    try {
      await waitFor('the disk sync started', async () => (await listResyncs(store, ownership)).length > stretchesBefore, 60_000);
      assert.equal((await listResyncs(store, ownership)).at(-1)!.consistentFrom, undefined, 'the copy is under way when the failover starts');
      const started = await call('POST', '/domains/echo/failover', { type: 'planned' });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const { status, result } = await operationResult(String(started.body.workflowId));
      assert.equal(status, 'COMPLETED', JSON.stringify(result));
      assert.equal((result as OperationReport).rpoMs, 0);
    } finally {
      await admin(primary, sites.token, '/admin/faults', { latencyMs: 0 });
    }
    const stretch = (await listResyncs(store, ownership)).at(-1)!;
    assert.ok(stretch.consistentFrom, 'the disk sync finished before the handover');
    assert.deepEqual((await recovery.client.getVm('e-db-1')).diskIds, ['e-db-1-disk-0', 'e-db-1-disk-1'], 'the disk that joined is recovered too');
    await assertDisksEqual('echo', (diskId, size) => primary.client.readDisk(diskId, 0, size));
  });
  /** The domain protected by its runbook, and a disk of 4 MiB with data at the primary, not yet attached to any of its VMs. */
  async function protectedWithDiskToAttach(domain: string, diskId: string): Promise<void> {
    await submitRunbook(runbookYaml(domain, {}));
    await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    const MiB = 1024 * 1024;
    await primary.client.createDisk({ id: diskId, datastore: 'ds-a', sizeBytes: 4 * MiB, protected: false });
    for (let offset = 0; offset < 4 * MiB; offset += 256 * 1024) await primary.client.writeDisk(diskId, offset, Buffer.alloc(4096, `${domain}:${offset}`));
  }
  it('planned failover right after a disk joined a VM, before protection looked at the members: the handover has it look first, and the disk is recovered with its data', async () => {
    await protectedWithDiskToAttach('foxtrot', 'f-db-1-disk-1');
    // Protection looks at its members every third replicator run (10 s each): the failover is asked for before it does.
    await primary.client.reconfigureVm('f-db-1', { diskIds: ['f-db-1-disk-0', 'f-db-1-disk-1'] });
    const started = await call('POST', '/domains/foxtrot/failover', { type: 'planned' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    assert.equal((result as OperationReport).rpoMs, 0);
    assert.deepEqual((await recovery.client.getVm('f-db-1')).diskIds, ['f-db-1-disk-0', 'f-db-1-disk-1'], 'the disk that joined is recovered too');
    await assertDisksEqual('foxtrot', (diskId, size) => primary.client.readDisk(diskId, 0, size));
  });
  it('planned failover during whose drain a disk is attached to the shut-down VM: the handover looks again after the drain, drains again, and the disk is recovered with its data', async () => {
    await protectedWithDiskToAttach('golf', 'g-app-1-disk-1');
    // Slowed, so that the drain (its journal reads and trims) lasts long enough to attach the disk while it runs.
    await admin(primary, sites.token, '/admin/faults', { latencyMs: 700 });
    let steps: OperationReport['steps'] = [];
    try {
      const started = await call('POST', '/domains/golf/failover', { type: 'planned' });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const workflowId = String(started.body.workflowId);
      await waitFor(
        'the drain under way',
        async () => ((await call('GET', `/operations/${encodeURIComponent(workflowId)}`)).body.progress as OperationReport | undefined)?.steps.some((step) => step.name === 'drain replication' && step.state === 'running') ?? false,
        120_000,
      );
      await primary.client.reconfigureVm('g-app-1', { diskIds: ['g-app-1-disk-0', 'g-app-1-disk-1'] });
      const { status, result } = await operationResult(workflowId);
      assert.equal(status, 'COMPLETED', JSON.stringify(result));
      assert.equal((result as OperationReport).rpoMs, 0);
      steps = (result as OperationReport).steps;
    } finally {
      await admin(primary, sites.token, '/admin/faults', { latencyMs: 0 });
    }
    assert.deepEqual((await recovery.client.getVm('g-app-1')).diskIds, ['g-app-1-disk-0', 'g-app-1-disk-1'], 'the disk attached during the drain is recovered too');
    await assertDisksEqual('golf', (diskId, size) => primary.client.readDisk(diskId, 0, size));
    assert.ok(steps.some((step) => step.name === 'drain replication again'), `the disk was attached after the look before the drain: ${steps.map((step) => step.name).join(', ')}`);
  });
  it('replays every closed failover, protection and group history against the current workflow code', async () => {
    // `DR_RECORD_HISTORIES=1 npm test -- failover-e2e` records them for test/unit/workflow-replay.test.ts.
    const replayed = await replayClosedHistories(stack.client, ['failover', 'powerOnGroup', 'protect']);
    assert.ok(replayed >= 8, `replayed ${replayed} histories`);
  });
});
