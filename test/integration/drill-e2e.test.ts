import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import { Ownership } from '../../datapath/ownership';
import { readPointTags } from '../../datapath/restore-points';
import type { Vm } from '../../sites/provider';
import type { DrillReport } from '../../workflows/drill-messages';
import type { OperationProgress, OperationReport } from '../../workflows/operation-messages';
import { protectStatusQuery, restorePointNowUpdate } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { replayClosedHistories } from '../harness/histories';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DOMAIN = 'india';
/** Checks the simulated guests of india pass: i-db-1 listens on tcp:5432, i-app-1 on http:8080. */
const PASSING_CHECKS = [
  '{ name: db-up, type: heartbeat, vm: i-db-1, timeout: 1m }',
  '{ name: db-port, type: tcp, vm: i-db-1, port: 5432, timeout: 1m }',
  '{ name: app-health, type: http, group: app, port: 8080, path: /health, timeout: 1m }',
];

describe('drill end to end, on real Temporal, S3, sites and worker processes: a test failover on isolated networks that leaves production and the recovery site as they were', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, recovery, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);
  const operationUrl = (workflowId: string) => `/operations/${encodeURIComponent(workflowId)}`;

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'drill-e2e' });
    await protectAtPrimary(stack.client, DOMAIN);
  });

  /** Every VM and disk name at the recovery site, as its API lists them. */
  async function recoveryInventory(): Promise<{ vms: string[]; disks: string[] }> {
    const [vms, disks] = await Promise.all([recovery.client.listVms(), recovery.client.listDisks()]);
    return { vms: vms.map((v) => v.name).sort(), disks: disks.map((d) => d.id).sort() };
  }

  /** What production looks like: ownership, epoch, mode, and the primary's VMs. */
  async function production() {
    const owner = (await new Ownership(store, DOMAIN).inspect()).owner;
    const primaryVms = (await primary.client.listVms()).filter((v) => domainVms(DOMAIN).includes(v.name)).map((v) => [v.name, v.powerState]).sort();
    return { site: owner?.site, epoch: owner?.epoch, mode: (await readDomainStatus(store, DOMAIN))?.mode, primaryVms };
  }

  const protectionCursor = async () => (await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', 1)).query(protectStatusQuery)).cursor;

  async function startDrill(body: Record<string, unknown>): Promise<string> {
    const started = await call('POST', `/domains/${DOMAIN}/drill`, body);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, new RegExp(`^drill/${DOMAIN}/`));
    return workflowId;
  }

  async function drillResult(workflowId: string): Promise<OperationReport & { drill: DrillReport }> {
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport & { drill?: DrillReport };
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.ok(report.drill, 'the report has a drill section');
    return report as OperationReport & { drill: DrillReport };
  }

  /**
   * Until `done` settles, records the latest state of every VM at the recovery site whose name has
   * a drill prefix, and which were ever seen running (the cleanup powers each off before it goes).
   */
  function watchDrillVms<T>(done: Promise<T>): Promise<{ result: T; seen: Map<string, Vm>; seenRunning: Set<string> }> {
    const seen = new Map<string, Vm>();
    const seenRunning = new Set<string>();
    let finished = false;
    const settled = done.finally(() => {
      finished = true;
    });
    const watch = (async () => {
      while (!finished) {
        for (const vm of await recovery.client.listVms()) {
          if (!vm.name.startsWith('drill-')) continue;
          seen.set(vm.name, vm);
          if (vm.powerState === 'poweredOn') seenRunning.add(vm.name);
        }
        await sleep(150);
      }
    })();
    return Promise.all([settled, watch]).then(([result]) => ({ result, seen, seenRunning }));
  }

  function assertCleanedUp(drill: DrillReport, before: { vms: string[]; disks: string[] }, after: { vms: string[]; disks: string[] }): void {
    assert.deepEqual(after, before, 'the recovery site has exactly the VMs and disks it had before the drill');
    assert.equal(drill.cleanup.inventory.asBefore, true, JSON.stringify(drill.cleanup.inventory));
    assert.deepEqual(drill.cleanup.inventory.leftBehind, { count: 0, first: [] });
    assert.deepEqual(drill.cleanup.notRemoved, { count: 0, first: [] });
    assert.equal(drill.cleanup.removed.vm, domainVms(DOMAIN).length, 'each drill VM removed once by the cleanup');
  }

  it('a drill while the primary keeps writing: test networks only, checks pass, production untouched, protection keeps replicating, the site as before after the cleanup', async () => {
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: PASSING_CHECKS } }));
    await waitFor(`${DOMAIN} recorded as Protected`, async () => (await readDomainStatus(store, DOMAIN))?.mode === 'Protected', 30_000);
    const productionBefore = await production();
    assert.deepEqual(productionBefore.primaryVms, domainVms(DOMAIN).map((vm) => [vm, 'poweredOn']).sort());
    const inventoryBefore = await recoveryInventory();
    const cursorBefore = await protectionCursor();

    const workflowId = await startDrill({});
    const { result: report, seen, seenRunning } = await watchDrillVms(drillResult(workflowId));
    const drill = report.drill;
    assert.match(drill.id, /^[0-9a-f]{8}$/);
    assert.equal(drill.outcome, 'passed', JSON.stringify(drill));
    assert.deepEqual(drill.checks.map((c) => [c.name, c.passed]), [['db-up', true], ['db-port', true], ['app-health', true]]);
    assert.deepEqual(drill.checks.find((c) => c.name === 'app-health')!.vms.first.map((v) => v.vm), ['i-app-1']);
    assert.equal(drill.kept.forMs, 0);
    assert.deepEqual(report.vms.map((v) => [v.name, v.state]).sort(), domainVms(DOMAIN).map((vm) => [vm, 'poweredOn']).sort(), 'each VM once, under the domain\'s name');
    assert.ok(report.rtoMs! > 0 && report.rpoMs! >= 0, `RTO ${report.rtoMs} ms, RPO ${report.rpoMs} ms`);

    // The drill's VMs ran on the test networks only, under the drill's names; the domain's own names never appeared.
    const drillVms = [...seen.values()].filter((vm) => vm.kind === 'vm');
    assert.deepEqual(drillVms.map((vm) => vm.name).sort(), domainVms(DOMAIN).map((vm) => `drill-${drill.id}-${vm}`).sort(), 'every drill VM was seen at the recovery site');
    for (const vm of drillVms) {
      assert.ok(vm.nics.length > 0 && vm.nics.every((n) => n.network.startsWith('test-')), `${vm.name} is on test networks only: ${JSON.stringify(vm.nics)}`);
    }
    assert.equal(seen.get(`drill-${drill.id}-i-db-1`)!.nics[0].ip?.address, '10.99.1.10', 'the database VM took its testIp');
    assert.ok(drillVms.some((vm) => seenRunning.has(vm.name)), 'the drill VMs were powered on');
    assert.ok([...seen.keys()].every((name) => name.startsWith(`drill-${drill.id}-`)));

    // Production is untouched, and protection kept replicating through the drill.
    assert.deepEqual(await production(), productionBefore);
    assert.ok((await protectionCursor()) > cursorBefore, 'the protection cursor advanced during the drill');
    const domain = await call('GET', `/domains/${DOMAIN}`);
    assert.equal(domain.body.mode, 'Protected');

    assertCleanedUp(drill, inventoryBefore, await recoveryInventory());
    assert.ok((drill.cleanup.removed.disk ?? 0) > 0, JSON.stringify(drill.cleanup.removed));
    await waitFor('the desk is free for the next operation', async () => (await call('GET', `/domains/${DOMAIN}/operations`)).body.drill === null, 10_000);
  });

  it('a drill whose check fails reports failed, naming the check, and still cleans up', async () => {
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: ['{ name: db-up, type: heartbeat, vm: i-db-1, timeout: 1m }', '{ name: ldap-port, type: tcp, vm: i-app-1, port: 389, timeout: 3s }'] } }));
    const inventoryBefore = await recoveryInventory();
    const productionBefore = await production();
    // Drilled at a restore point, which the drill tags with its outcome.
    const point = await stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', 1)).executeUpdate(restorePointNowUpdate, { args: [{ label: 'drill target' }] });
    const { drill } = await drillResult(await startDrill({ pointInTime: { restorePoint: point.id } }));
    assert.equal(drill.outcome, 'failed');
    assert.deepEqual(drill.testedPoint && [drill.testedPoint.point, 'outcome' in drill.testedPoint ? drill.testedPoint.outcome : drill.testedPoint.why], [point.id, 'failed']);
    assert.deepEqual((await readPointTags(store, new Ownership(store, DOMAIN))).get(point.id)?.tested.map((t) => [t.drill, t.outcome]), [[drill.id, 'failed']]);
    assert.deepEqual(drill.failedBecause, ['check ldap-port failed']);
    const ldap = drill.checks.find((c) => c.name === 'ldap-port')!;
    assert.equal(ldap.passed, false);
    assert.match(ldap.vms.first[0].detail, /389/);
    assert.equal(ldap.failed, 1);
    assert.equal(drill.checks.find((c) => c.name === 'db-up')!.passed, true);
    assertCleanedUp(drill, inventoryBefore, await recoveryInventory());
    assert.deepEqual(await production(), productionBefore);
    await waitFor('the desk is free for the next operation', async () => (await call('GET', `/domains/${DOMAIN}/operations`)).body.drill === null, 10_000);
  });

  it('a kept drill stays up until an early cleanup request, which ends it; a second request and one for another operation are refused', async () => {
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: PASSING_CHECKS.slice(0, 1) } }));
    const inventoryBefore = await recoveryInventory();
    const workflowId = await startDrill({ keepFor: '10m' });
    await waitFor('the drill kept', async () => ((await call('GET', operationUrl(workflowId))).body.progress as OperationProgress | undefined)?.phase.startsWith('keep the drill') === true, 120_000);
    const kept = (await recovery.client.listVms()).filter((vm) => vm.name.startsWith('drill-') && vm.kind === 'vm');
    assert.equal(kept.length, domainVms(DOMAIN).length);
    assert.ok(kept.every((vm) => vm.powerState === 'poweredOn'), 'the kept drill runs');
    await sleep(2_000);
    const stillThere = await recoveryInventory();
    assert.ok(kept.every((vm) => stillThere.vms.includes(vm.name)), 'nothing is removed before the request');
    assert.ok(stillThere.disks.some((d) => d.startsWith('drill-')));
    assert.equal((await call('GET', operationUrl(workflowId))).body.status, 'RUNNING');

    const cleanup = await call('POST', `${operationUrl(workflowId)}/cleanup`, {});
    assert.equal(cleanup.status, 202, JSON.stringify(cleanup.body));
    assert.equal(cleanup.body.cleanupRequestedBy, 'dr-lead');
    const second = await call('POST', `${operationUrl(workflowId)}/cleanup`, {});
    assert.equal(second.status, 409, JSON.stringify(second.body));

    const { drill } = await drillResult(workflowId);
    assert.equal(drill.outcome, 'passed');
    assert.equal(drill.kept.forMs, 600_000);
    assert.match(drill.kept.endedBy, /cleanup requested by dr-lead/);
    assert.equal(drill.cleanup.requestedBy, 'dr-lead');
    assertCleanedUp(drill, inventoryBefore, await recoveryInventory());
    assert.equal((await call('POST', `${operationUrl(workflowId)}/cleanup`, {})).status, 409, 'an ended drill');
    const notADrill = await call('POST', `${operationUrl(`failover/${DOMAIN}/2026-01-01T00:00:00.000Z`)}/cleanup`, {});
    assert.equal(notADrill.status, 409, JSON.stringify(notADrill.body));
    assert.match(JSON.stringify(notADrill.body), /is not a drill/);
    // A running workflow that is not a drill: the domain's protection.
    const protection = await call('POST', `${operationUrl(protectionWorkflowId(DOMAIN, 'primary', 1))}/cleanup`, {});
    assert.equal(protection.status, 409, JSON.stringify(protection.body));
    assert.equal((await protectionCursor()) > 0, true, 'protection still answers');
    await waitFor('the desk is free for the next operation', async () => (await call('GET', `/domains/${DOMAIN}/operations`)).body.drill === null, 10_000);
  });

  it('refuses a bad keepFor with 400 naming it, and a runbook without test networks with 409', async () => {
    for (const keepFor of ['31d', 'soon', '-1s']) {
      const refused = await call('POST', `/domains/${DOMAIN}/drill`, { keepFor });
      assert.equal(refused.status, 400, `${keepFor}: ${JSON.stringify(refused.body)}`);
      assert.match(JSON.stringify(refused.body), /keepFor/);
    }
    await submitRunbook(runbookYaml(DOMAIN, {}));
    const refused = await call('POST', `/domains/${DOMAIN}/drill`, {});
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(JSON.stringify(refused.body), /has no spec\.testNetworkMapping/);
    const desk = (await call('GET', `/domains/${DOMAIN}/operations`)).body;
    assert.deepEqual([desk.running, desk.drill], [null, null], 'nothing started');
  });

  it('a forced failover asked for while a drill is kept starts at once and succeeds; the drill gives way and is cleaned up beside it', async () => {
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: PASSING_CHECKS.slice(0, 1) } }));
    const drillId = await startDrill({ keepFor: '10m' });
    await waitFor('the drill kept', async () => ((await call('GET', operationUrl(drillId))).body.progress as OperationProgress | undefined)?.phase.startsWith('keep the drill') === true, 120_000);
    assert.ok((await recoveryInventory()).vms.some((name) => name.startsWith('drill-')), 'the drill runs its copies');
    await sleep(2_500); // a pass of the recovery site's split-brain watch
    const during = (await call('GET', `/domains/${DOMAIN}`)).body;
    assert.equal(during.conflict, null, 'the drill\'s copies running at the recovery site are no split-brain');
    const offered = during.allowedOperations as string[];
    assert.ok(offered.includes('failover') && !offered.includes('drill'), `a drill refuses nothing but a second drill: ${offered.join(', ')}`);

    const failover = await call('POST', `/domains/${DOMAIN}/failover`, { type: 'forced', confirm: DOMAIN });
    assert.equal(failover.status, 202, JSON.stringify(failover.body));
    assert.equal((failover.body.drillGivingWay as { workflowId: string } | undefined)?.workflowId, drillId, 'the answer names the drill that gives way');
    const failed = await operationResult(String(failover.body.workflowId));
    assert.equal(failed.status, 'COMPLETED', JSON.stringify(failed.result));
    assert.equal((failed.result as OperationReport).outcome, 'succeeded');
    assert.equal((await operationResult(drillId)).status, 'CANCELLED');

    const left = await recoveryInventory();
    assert.deepEqual([...left.vms, ...left.disks].filter((name) => name.startsWith('drill-')), [], "nothing of the drill is left at the recovery site");
    const running = (await recovery.client.listVms()).filter((vm) => domainVms(DOMAIN).includes(vm.name));
    assert.deepEqual(running.map((vm) => [vm.name, vm.powerState]).sort(), domainVms(DOMAIN).map((vm) => [vm, 'poweredOn']).sort(), 'the domain runs at the recovery site');
    await waitFor('the desk records the drill giving way', async () => {
      const desk = (await call('GET', `/domains/${DOMAIN}/operations`)).body;
      const drill = (desk.recent as Array<{ workflowId: string; outcome?: string; gaveWayTo?: string }>).find((r) => r.workflowId === drillId);
      return desk.drill === null && drill?.outcome === 'cancelled' && drill.gaveWayTo === failover.body.workflowId;
    }, 10_000);
    assert.equal((await call('GET', `/domains/${DOMAIN}`)).body.mode, 'Running in Failover');
  });

  it('replays every closed drill history against the current workflow code', async () => {
    const replayed = await replayClosedHistories(stack.client, ['drill']);
    assert.ok(replayed >= 4, `replayed ${replayed} histories`);
  });
});
