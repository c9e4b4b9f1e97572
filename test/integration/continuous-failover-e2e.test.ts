import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { Ownership } from '../../datapath/ownership';
import type { SiteService } from '../../sites/launch';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import type { FollowingStatus, OperationReport } from '../../workflows/operation-messages';
import { protectStatusQuery } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { apiCalls } from '../harness/api-calls';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

const MiB = 1024 * 1024;
const FOLLOWING = 'Continuous Rehydration in Progress';

describe('continuous failover end to end: a copy at the recovery site follows the running primary, then completes with near-zero RTO', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, recovery, store, runbooks } = useTestbed({
    definitions: failoverSiteDefinitions(testSiteDefinitions(), ['echo', 'foxtrot', 'golf', 'hotel']),
    workers: ['orchestration', 'primary', 'recovery'],
  });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'continuous-failover-e2e' });
    await Promise.all(['echo', 'foxtrot', 'golf'].map((domain) => protectAtPrimary(stack.client, domain)));
    // A protection window of seconds: garbage collection compacts and deletes while the copy follows.
    await protectAtPrimary(stack.client, 'hotel', { protectionWindowMs: 3_000, gcEveryRuns: 2 });
  });

  /** Starts a continuous failover through the API and waits until its copy has caught up (the mode says so). */
  async function startFollowing(domain: string): Promise<string> {
    await waitFor(`${domain} Protected`, async () => (await readDomainStatus(store, domain))?.mode === 'Protected', 30_000);
    const started = await call('POST', `/domains/${domain}/continuous-failover`, {});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, new RegExp(`^continuous-failover/${domain}/`));
    await waitFor(`${domain} ${FOLLOWING}`, async () => (await call('GET', `/domains/${domain}`)).body.mode === FOLLOWING, 120_000);
    return workflowId;
  }

  const following = async (domain: string) => ((await call('GET', `/domains/${domain}`)).body.continuousFailover as { following: FollowingStatus }).following;
  const namesAt = async (site: SiteService) => (await site.client.listVms()).map((vm) => vm.name);

  async function reconfigure(site: SiteService, vm: string, diskIds: string[]): Promise<void> {
    await site.client.powerOff(vm);
    await site.client.reconfigureVm(vm, { diskIds });
    await site.client.powerOn(vm);
  }

  function assertOnlyTheTail(report: OperationReport, domainBytes: number): void {
    const completion = report.steps.filter((s) => s.stage !== undefined);
    assert.ok(completion.length > 0 && completion.every((s) => s.state === 'done' && s.durationMs! >= 0), 'the completion is its own stage with its own step durations');
    assert.ok(completion.some((s) => s.name === 'apply the rest of the log'));
    assert.ok(!report.steps.some((s) => s.name === 'rehydrate disks'), 'no rehydration from the base at completion');
    assert.equal(report.tail?.bytesRead.base, 0, 'the completion read no base');
    assert.ok(report.tail && report.tail.bytesWritten < domainBytes, `the completion wrote only the tail (${report.tail?.bytesWritten} bytes of a ${domainBytes}-byte domain)`);
  }

  it('forced completion after VMs and disks changed at the primary: every VM up at the recovery site, disks equal to the last replicated write', async () => {
    await submitRunbook(runbookYaml('echo', { laterVms: ['e-app-2'] }));
    const workflowId = await startFollowing('echo');
    const domain = await call('GET', '/domains/echo');
    assert.deepEqual(domain.body.allowedOperations, ['failover', 'drill'], 'while following: the completion, and a drill beside it');
    const lag = await following('echo');
    assert.ok(lag.lag.ms >= 0 && lag.lag.bytes >= 0 && lag.vms === 2, JSON.stringify(lag));
    assert.equal((await call('POST', '/domains/echo/continuous-failover', {})).status, 409, 'a second continuous failover is refused');
    assert.equal((await call('POST', '/domains/echo/failover', { type: 'forced', confirm: 'echo', pointInTime: { at: new Date(Date.now() - 5_000).toISOString() } })).status, 400, 'completion keeps applied blocks: no point in time');

    // While it runs: a VM joins the domain, a disk is attached to another, and one is detached and deleted.
    await primary.client.createDisk({ id: 'e-app-2-disk-0', datastore: 'ds-a', sizeBytes: MiB, protected: true });
    await primary.client.registerVm({
      name: 'e-app-2',
      cpus: 2,
      memoryMiB: 2048,
      placement: { datacenter: 'dc-a', cluster: 'cluster-a1', resourcePool: 'prod', datastore: 'ds-a' },
      nics: [{ network: 'prod-app', ip: { address: '10.10.2.35', prefix: 24, dns: [] } }],
      diskIds: ['e-app-2-disk-0'],
      metadata: { protectedDomain: 'echo' },
    });
    await primary.client.powerOn('e-app-2');
    await primary.client.createDisk({ id: 'e-db-1-disk-1', datastore: 'ds-a', sizeBytes: MiB, protected: true });
    await reconfigure(primary, 'e-db-1', ['e-db-1-disk-0', 'e-db-1-disk-1']);
    await reconfigure(primary, 'e-app-1', ['e-app-1-disk-0']);
    await primary.client.deleteDisk('e-app-1-disk-1');

    await waitFor('the recovery site matches the domain', async () => {
      const vms = await recovery.client.listVms();
      const held = (vm: string) => vms.find((v) => v.name === `repr-${vm}`)?.diskIds.join() ?? '';
      const detachedGone = await recovery.client.getDisk('e-app-1-disk-1').then(
        () => false,
        () => true,
      );
      return held('e-app-2') === 'e-app-2-disk-0' && held('e-db-1') === 'e-db-1-disk-0,e-db-1-disk-1' && held('e-app-1') === 'e-app-1-disk-0' && detachedGone;
    }, 120_000);
    await waitFor('caught up again after the disk syncs', async () => {
      const f = await following('echo');
      return f.vms === 3 && f.disks === 4 && f.heldAt === undefined && f.lag.segments <= 2;
    }, 120_000);

    await admin(primary, sites.token, '/admin/outage');
    const completion = await call('POST', '/domains/echo/failover', { type: 'forced', confirm: 'echo' });
    assert.equal(completion.status, 202, JSON.stringify(completion.body));
    assert.equal(completion.body.completes, workflowId, 'the completion is an update on the running continuous failover, not a second operation');
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.type, 'forced');
    assert.deepEqual(report.vms.map((v) => `${v.name}:${v.state}`).sort(), ['e-app-1:poweredOn', 'e-app-2:poweredOn', 'e-db-1:poweredOn']);
    assertOnlyTheTail(report, 4 * MiB);

    // Byte-identical to the primary's last replicated write: the end of the chain the takeover sealed.
    const chain = (await resolveChain(store, new Ownership(store, 'echo'))).filter((l) => l.epoch < report.epoch!);
    let sequence = 0;
    for await (const { segment } of readChain(store, chain.slice(-1), 1)) sequence = segment.lastSequence;
    const record = readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));
    for (const diskId of ['e-db-1-disk-0', 'e-db-1-disk-1', 'e-app-1-disk-0', 'e-app-2-disk-0']) {
      const actual = await recovery.client.readDisk(diskId, 0, MiB);
      assert.ok(actual.equals(expectedDiskContent(record, diskId, MiB, { sequence })), `${diskId} equals the primary's writes up to journal sequence ${sequence}`);
    }
    assert.ok(record.some((w) => w.diskId === 'e-app-2-disk-0' && w.sequence <= sequence), 'the added VM was written to before the disaster');
    const vms = await recovery.client.listVms();
    assert.deepEqual(vms.filter((v) => v.kind !== 'vm').map((v) => v.name), [], 'no RocVA or representation VM is left');
    assert.equal((await readDomainStatus(store, 'echo'))?.mode, 'Running in Failover');
    await admin(primary, sites.token, '/admin/restore');
  });

  it('planned completion while a drill runs beside the copy: the primary shuts down and hands over, nothing is lost (RPO 0), the drill gives way and is cleaned up', async () => {
    await submitRunbook(runbookYaml('foxtrot', { drill: {} }));
    const workflowId = await startFollowing('foxtrot');
    const drill = await call('POST', '/domains/foxtrot/drill', { keepFor: '10m' });
    assert.equal(drill.status, 202, `a drill runs beside a continuous failover: ${JSON.stringify(drill.body)}`);
    const drillId = String(drill.body.workflowId);
    await waitFor('the drill kept', async () => ((await call('GET', `/operations/${encodeURIComponent(drillId)}`)).body.progress as { phase?: string } | undefined)?.phase?.startsWith('keep the drill') === true, 120_000);
    assert.equal((await call('POST', '/domains/foxtrot/drill', {})).status, 409, 'one drill at a time');

    const completion = await call('POST', '/domains/foxtrot/failover', { type: 'planned' });
    assert.equal(completion.status, 202, JSON.stringify(completion.body));
    assert.equal((completion.body.drillGivingWay as { workflowId: string } | undefined)?.workflowId, drillId, 'the drill gives way to the completion');
    assert.equal((await call('POST', '/domains/foxtrot/failover', { type: 'planned' })).status, 409, 'one completion');
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    assert.equal((await operationResult(drillId)).status, 'CANCELLED');
    assert.deepEqual((await namesAt(recovery)).filter((name) => name.startsWith('drill-')), [], 'nothing of the drill is left at the recovery site');
    assert.deepEqual((await recovery.client.listDisks()).map((d) => d.id).filter((id) => id.startsWith('drill-')), []);
    const report = result as OperationReport;
    assert.equal(report.rpoMs, 0);
    assertOnlyTheTail(report, 2 * MiB);
    for (const vm of domainVms('foxtrot')) {
      for (const diskId of (await recovery.client.getVm(vm)).diskIds) {
        const [recovered, original] = await Promise.all([recovery.client.readDisk(diskId, 0, MiB), primary.client.readDisk(diskId, 0, MiB)]);
        assert.ok(recovered.equals(original), `${diskId} equals the primary's disk after its shutdown`);
      }
    }
    assert.equal((await new Ownership(store, 'foxtrot').inspect()).owner?.site, 'recovery');
    assert.equal((await call('GET', '/domains/foxtrot')).body.mode, 'Running in Failover');
  });

  it('cancelling removes everything it created at the recovery site and leaves the domain Protected, its protection untouched', async () => {
    await submitRunbook(runbookYaml('golf', {}));
    const before = await namesAt(recovery);
    const workflowId = await startFollowing('golf');
    assert.ok((await namesAt(recovery)).includes('repr-g-app-1'));
    const protection = stack.client.workflow.getHandle(protectionWorkflowId('golf', 'primary', 1));
    const cursorBefore = (await protection.query(protectStatusQuery)).cursor;
    assert.equal((await call('POST', `/operations/${encodeURIComponent(workflowId)}/cancel`)).status, 202);
    assert.equal((await operationResult(workflowId)).status, 'CANCELLED');
    assert.deepEqual((await namesAt(recovery)).sort(), before.sort(), 'nothing of golf is left at the recovery site');
    await assert.rejects(recovery.client.getDisk('g-app-1-disk-0'));
    assert.equal((await readDomainStatus(store, 'golf'))?.mode, 'Protected');
    const ownership = new Ownership(store, 'golf');
    assert.deepEqual((await store.list(ownership.keys.leasesPrefix())).keys, [], 'the follower\'s lease is released: garbage collection need not wait for it');
    assert.equal((await new Ownership(store, 'golf').inspect()).owner?.site, 'primary');
    await waitFor('protection at the primary still replicating', async () => (await protection.query(protectStatusQuery)).cursor > cursorBefore, 30_000);
    await waitFor('the desk is free', async () => (await call('GET', '/domains/golf/operations')).body.running === null, 10_000);
    assert.deepEqual((await call('GET', '/domains/golf')).body.allowedOperations, ['power-on', 'failover', 'continuous-failover', 'drill', 'restore']);
  });

  it('garbage collection at the storage site deletes segments the copy has applied while it follows, and the copy stays exact', async () => {
    await submitRunbook(runbookYaml('hotel', {}));
    const workflowId = await startFollowing('hotel');
    const protection = stack.client.workflow.getHandle(protectionWorkflowId('hotel', 'primary', 1));
    const followingSince = (await following('hotel')).recoverableSince!;
    await waitFor('garbage collection deleting segments while the copy follows', async () => {
      const gc = (await protection.query(protectStatusQuery)).lastGc;
      return gc !== undefined && gc.at > followingSince && gc.deleted.segments > 0;
    }, 90_000);
    const applied = (await following('hotel')).segmentsApplied;
    await waitFor('the copy following on after the deletion', async () => (await following('hotel')).segmentsApplied > applied, 30_000);
    assert.equal((await call('POST', '/domains/hotel/failover', { type: 'planned' })).status, 202);
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const disk = (await recovery.client.getVm('h-app-1')).diskIds[0];
    const [recovered, original] = await Promise.all([recovery.client.readDisk(disk, 0, MiB), primary.client.readDisk(disk, 0, MiB)]);
    assert.ok(recovered.equals(original), 'the copy that followed across garbage collections equals the primary');
  });
});
