/**
 * The drill workflow against stub sites (fast tier): a drill that passes, one whose check fails
 * (a failed drill that still cleans up), a cleanup by request and by timer, a cancel and an abort
 * that clean up as compensation, a cleanup that finds things gone already, a runbook without test
 * networks; and in every case nothing of ownership, protection or the primary is touched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { validateRunbook } from '../../runbooks/validate';
import { drill } from '../../workflows/drill';
import { domainOperationsQuery } from '../../workflows/domain-operations';
import type { failover as failoverWorkflow } from '../../workflows/failover';
import { domainOperationsWorkflowId } from '../../workflows/workflow-ids';
import { cleanupDrillUpdate, type DrillInput } from '../../workflows/drill-messages';
import { operationProgressQuery, type OperationReport } from '../../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { failoverInput, runbookYaml, storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, RECOVERY, newStubDomain, requestOperation, useWorkflowEnv } from '../harness/workflow-env';
import { abortReport, argOf, assertCancelled, outcomeAttribute, progressOf } from './operation-sweep';

const t = useWorkflowEnv();

/** The fixture runbook with the drill's sections: test networks, a check of each kind, a postCleanup webhook. */
function drillRunbookYaml(domain: string): string {
  const [db] = vmNames(domain);
  return `${runbookYaml(domain)}  testNetworkMapping:
    - { source: dr-db, target: test-db }
    - { source: dr-app, target: test-app }
  checks:
    - { name: db-heartbeat, type: heartbeat, vm: ${db}, timeout: 5s }
    - { name: db-port, type: tcp, vm: ${db}, port: 5432, timeout: 5s }
    - { name: app-health, type: http, group: app, port: 8080, path: /health, timeout: 5s }
  postCleanup:
    - { name: drill-done, type: webhook, url: "https://chat.example.test/hooks", timeout: 5s, retries: 0, onFailure: continue }
`;
}

function drillInput(domain: string, keepForMs: number, yaml = drillRunbookYaml(domain)): DrillInput {
  const checked = validateRunbook(yaml);
  if (!checked.runbook) throw new Error(`the drill runbook does not validate: ${JSON.stringify(checked.errors)}`);
  return { domain, runbook: storedRunbook(t, domain, yaml), runbookVersion: 1, keepForMs, requestedBy: 'drill-test', declaredAt: Date.now() };
}

const drillId = (domain: string) => `drill/${domain}/test`;

interface Started {
  domain: string;
  handle: WorkflowHandle<typeof drill>;
  /** The recovery site's names before the drill. */
  before: { vms: string[]; disks: string[] };
  primaryBefore: { vms: string[]; disks: string[] };
}

async function startDrill(label: string, keepForMs = 0, yaml?: (domain: string) => string): Promise<Started> {
  const domain = newStubDomain(t, label, vmNames);
  // Something of production at the recovery site that a drill must leave alone.
  t.sites.placeVms(RECOVERY, [`${domain}-unrelated`]);
  const before = t.sites.namesAt(RECOVERY);
  const primaryBefore = t.sites.namesAt(PRIMARY);
  const handle = await t.client.workflow.start(drill, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: drillId(domain), args: [drillInput(domain, keepForMs, yaml?.(domain))] });
  return { domain, handle, before, primaryBefore };
}

/** The site holds exactly what it held before the drill, and nothing of ownership, protection or the primary changed. */
async function assertLeftAsBefore({ domain, before, primaryBefore }: Started): Promise<void> {
  assert.deepEqual(t.sites.namesAt(RECOVERY), before, 'the recovery site holds exactly what it held before the drill');
  assert.deepEqual(t.sites.namesAt(PRIMARY), primaryBefore, 'the primary holds what it held');
  const calls = t.sites.callsOf(domain);
  assert.deepEqual(
    calls.filter((c) => c.site === PRIMARY).map((c) => c.name),
    [],
    'a drill schedules nothing at the primary',
  );
  const touching = calls.filter((c) => ['claimDomain', 'releaseDomain', 'drainReplication', 'recordDeparture', 'recordArrival', 'setDomainStatus', 'protectRecoveredDisks', 'stopJournaling', 'shutdownForHandover'].includes(c.name));
  assert.deepEqual(touching.map((c) => c.name), [], 'a drill touches neither ownership, protection nor the domain mode');
  const record = t.sites.domain(domain);
  assert.deepEqual([record.owner, record.epoch, record.status], [PRIMARY, 1, undefined], 'the primary still owns the domain in epoch 1');
  for (const vm of vmNames(domain)) assert.equal(t.sites.site(PRIMARY).vms.get(vm)?.powerState, 'poweredOn', `${vm} still runs at the primary`);
  const protections = [];
  for await (const w of t.client.workflow.list({ query: `WorkflowId STARTS_WITH "protect/${domain}/"` })) protections.push(w.workflowId);
  assert.deepEqual(protections, [], 'no protection was started');
}

/** Waits until the drill runs the step (by name prefix). */
async function reached(handle: WorkflowHandle, step: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const progress = await progressOf(handle);
    if (progress?.phase.startsWith(step)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the drill never reached "${step}"`);
}

function drillOf(report: OperationReport) {
  assert.ok(report.drill, 'the report has the drill section');
  return report.drill;
}

// One at a time: each test compares the whole recovery site before and after its drill.
describe('drill', { concurrency: 1 }, () => {
  it('passes: copies on the test networks under drill names, checks passed, every resource recorded and removed, the inventory as before', async () => {
    const started = await startDrill('passes');
    const { domain, handle } = started;
    const report = await handle.result();
    const result = drillOf(report);
    assert.equal(report.outcome, 'succeeded');
    assert.equal(await outcomeAttribute(handle), 'succeeded');
    assert.equal(result.outcome, 'passed');
    assert.deepEqual(
      result.checks.map((c) => [c.name, c.passed, c.vms.first.map((v) => v.vm)]),
      [
        ['db-heartbeat', true, [`${domain}-db-1`]],
        ['db-port', true, [`${domain}-db-1`]],
        ['app-health', true, [`${domain}-app-1`, `${domain}-app-2`]],
      ],
    );
    assert.ok(report.rtoMs !== undefined && report.rtoMs >= 0 && report.rpoMs !== undefined, 'the report has the RTO achieved and the RPO of the point');
    assert.ok(report.recoveryPoint?.description, 'the report names the point used');

    const prefix = `drill-${result.id}-`;
    assert.match(result.id, /^[0-9a-f]{8}$/);
    const vmCount = vmNames(domain).length;
    assert.deepEqual(report.resources, { rocva: 1, representation: vmCount, disk: vmCount, vm: vmCount }, 'every resource the drill created is counted by kind');
    const registered = t.sites.callsOf(domain).filter((c) => c.name === 'registerRecoveredVm').map((c) => (c.args[0] as { spec: { name: string; nics: Array<{ network: string }>; diskIds: string[] } }).spec);
    for (const spec of registered) {
      assert.ok(spec.name.startsWith(prefix));
      assert.ok(spec.diskIds.every((d) => d.startsWith(prefix)));
      assert.ok(spec.nics.every((n) => n.network.startsWith('test-')), `${spec.name} is on test networks only: ${JSON.stringify(spec.nics)}`);
    }
    const webhooks = t.sites.callsOf(domain).filter((c) => c.name === 'callWebhook').map((c) => (c.args[0] as { step: string }).step);
    assert.deepEqual(webhooks, ['drill-done'], 'the plan\'s webhook without runInDrill is skipped; the postCleanup webhook runs');
    assert.deepEqual(result.skippedWebhooks, ['update-dns']);

    const { cleanup } = result;
    const none = { count: 0, first: [] };
    assert.deepEqual(cleanup.inventory, { asBefore: true, before: { vms: started.before.vms.length, disks: started.before.disks.length }, leftBehind: none, otherChanges: { appeared: none, disappeared: none } });
    const removals = t.sites.callsOf(domain).filter((c) => c.name === 'removeDrillResource').map((c) => c.args[0] as { kind: string; name: string });
    assert.deepEqual(
      removals.map((r) => `${r.kind}:${r.name}`).sort(),
      [`rocva:${prefix}rocva`, ...vmNames(domain).flatMap((vm) => [`vm:${prefix}${vm}`, `representation:${prefix}repr-${vm}`, `disk:${prefix}${vm}-disk-0`])].sort(),
      'the cleanup removes every resource the drill recorded, each named drill-<id>-..., once',
    );
    assert.deepEqual([cleanup.removed, cleanup.alreadyGone], [{ vm: vmCount, disk: vmCount }, { rocva: 1, representation: vmCount }], 'the VMs and disks are removed by the cleanup (the RocVA and representation VMs went when rehydration was done)');
    assert.equal(result.kept.endedBy, 'the checks (keepFor 0)');
    const steps = report.steps.map((s) => s.name);
    assert.ok(steps.indexOf('run the checks') < steps.indexOf('clean up the drill') && steps.indexOf('clean up the drill') < steps.indexOf('webhook drill-done after the cleanup'), steps.join(', '));
    await assertLeftAsBefore(started);
  });

  it('fails when a check fails, and still cleans up completely', async () => {
    const started = await startDrill('check-fails', 0);
    t.sites.refuseService(`${started.domain}-db-1`, 5432);
    const report = await started.handle.result();
    const result = drillOf(report);
    assert.equal(report.outcome, 'succeeded', 'a failed check is a failed drill, not an aborted operation');
    assert.equal(result.outcome, 'failed');
    assert.deepEqual(result.failedBecause, ['check db-port failed']);
    const dbPort = result.checks.find((c) => c.name === 'db-port');
    assert.equal(dbPort?.passed, false);
    assert.match(dbPort?.vms.first[0].detail ?? '', /refused/);
    assert.equal(dbPort?.failed, 1);
    assert.ok(result.checks.filter((c) => c.name !== 'db-port').every((c) => c.passed));
    assert.equal(result.cleanup.inventory.asBefore, true);
    await assertLeftAsBefore(started);
  });

  it('checks a group of more VMs than a batch by batch activities, and lists the VM that failed first', async () => {
    const extra = 227;
    const domainVms = (domain: string) => [...vmNames(domain), ...Array.from({ length: extra }, (_, i) => `${domain}-app-${i + 3}`)];
    const domain = newStubDomain(t, 'checks-in-batches', domainVms);
    const input = drillInput(domain, 0);
    const checked = validateRunbook(drillRunbookYaml(domain));
    const runbook = checked.runbook!;
    const app = runbook.spec.powerOn.groups.find((g) => g.name === 'app')!;
    for (const name of domainVms(domain).slice(3)) {
      runbook.spec.vms.push({ ...runbook.spec.vms[1], name });
      app.vms.push({ ...app.vms[0], name });
    }
    const failing = `${domain}-app-150`;
    t.sites.intercept(domain, async (call, proceed) => {
      const result = await proceed();
      if (call.name !== 'checkGuest' || !String(argOf(call).vm).endsWith(failing)) return result;
      return { passed: false, detail: 'injected: connection refused', waitedMs: 0 };
    });
    const report = await t.client.workflow.execute(drill, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: drillId(domain), args: [{ ...input, runbook }] });
    const result = drillOf(report);
    const health = result.checks.find((c) => c.name === 'app-health')!;
    assert.deepEqual([health.passed, health.failed, health.vms.count, health.vms.first.length], [false, 1, app.vms.length, 100]);
    assert.deepEqual(health.vms.first[0], { vm: failing, passed: false, detail: 'injected: connection refused', waitedMs: 0 }, 'the failed VM is listed first');
    assert.deepEqual(result.failedBecause, ['check app-health failed']);
    const batches = t.sites.callsOf(domain).filter((c) => c.name === 'checkGuestsOfBatch').map((c) => (argOf(c).vms as unknown[]).length);
    assert.deepEqual(batches.sort((a, b) => b - a), [100, 100, 29, 1, 1], 'the group check in batches of 100; each single-VM check in one');
    const groupDeadlines = t.sites
      .callsOf(domain)
      .filter((c) => c.name === 'checkGuestsOfBatch' && (argOf(c).vms as unknown[]).length > 1)
      .map((c) => new Set((argOf(c).vms as Array<{ notAfter: number }>).map((vm) => vm.notAfter)));
    assert.equal(new Set(groupDeadlines.flatMap((d) => [...d])).size, 1, 'every batch of a check waits for the same deadline, not a timeout of its own');
    assert.equal(result.cleanup.inventory.asBefore, true);
  });

  it('is kept until a cleanup request, refuses a second one, and reports who ended it', async () => {
    const started = await startDrill('cleanup-request', 3_600_000);
    await reached(started.handle, 'keep the drill');
    const progress = await started.handle.query(operationProgressQuery);
    assert.ok((progress.resources?.vm ?? 0) > 0, `the progress counts what the drill created while it is kept: ${JSON.stringify(progress.resources)}`);
    assert.ok(t.sites.namesAt(RECOVERY).vms.some((n) => n.startsWith('drill-')), 'the drill VMs are up while it is kept');
    const accepted = await started.handle.executeUpdate(cleanupDrillUpdate, { args: [{ requestedBy: 'operator-1', force: true }] });
    assert.deepEqual([accepted.requestedBy, accepted.force], ['operator-1', true]);
    await assert.rejects(started.handle.executeUpdate(cleanupDrillUpdate, { args: [{ requestedBy: 'operator-2' }] }), (error: Error) => /requested by operator-1 already|cleaning up already/.test(String((error.cause as Error | undefined)?.message)));
    const result = drillOf(await started.handle.result());
    assert.equal(result.kept.endedBy, 'the cleanup requested by operator-1 (forced)');
    assert.deepEqual([result.cleanup.requestedBy, result.cleanup.force, result.cleanup.notRemoved], ['operator-1', true, { count: 0, first: [] }]);
    await assertLeftAsBefore(started);
  });

  it('is cleaned up when keepFor ends (a durable timer)', async () => {
    const started = await startDrill('cleanup-timer', 2_000);
    const report = await started.handle.result();
    const kept = report.steps.find((s) => s.name.startsWith('keep the drill'));
    assert.ok(kept && (kept.durationMs ?? 0) >= 1_900, `kept for ${kept?.durationMs} ms`);
    assert.equal(drillOf(report).kept.endedBy, 'the end of keepFor');
    await assertLeftAsBefore(started);
  });

  it('cleans up when cancelled while it is kept', async () => {
    const started = await startDrill('cancelled', 3_600_000);
    await reached(started.handle, 'keep the drill');
    await started.handle.cancel();
    await assertCancelled(started.handle);
    await assertLeftAsBefore(started);
  });

  it('cleans up when it aborts, and says so in the report', async () => {
    const started = await startDrill('aborts', 0);
    t.sites.intercept(started.domain, (call, proceed) => {
      if (call.name === 'registerRecoveredVm' && (call.args[0] as { spec: { name: string } }).spec.name.endsWith('app-2')) {
        // The VM is registered, then the site fails: the cleanup must find it by its record.
        return proceed().then(() => {
          throw ApplicationFailure.nonRetryable('the recovery site refused the VM', 'UnknownPlacement');
        });
      }
      return proceed();
    });
    const report = await abortReport(started.handle);
    assert.ok(report.compensation?.undone.some((u) => /the drill's resources removed from recovery/.test(u)), JSON.stringify(report.compensation));
    assert.deepEqual(report.compensation?.remains, []);
    await assertLeftAsBefore(started);
  });

  it('cleans up idempotently: a removal whose worker died after it finds the resource gone on retry', async () => {
    const started = await startDrill('idempotent', 0);
    let killed = 0;
    t.sites.intercept(started.domain, async (call, proceed) => {
      if (call.name === 'removeDrillResource' && call.attempt === 1 && (call.args[0] as { kind: string }).kind === 'vm' && killed++ === 0) {
        await proceed();
        throw ApplicationFailure.retryable('the site worker died after the removal', 'SiteUnavailable');
      }
      return proceed();
    });
    const result = drillOf(await started.handle.result());
    assert.equal(result.cleanup.alreadyGone.vm, 1, 'the retried removal finds its VM gone and says so');
    assert.equal(result.cleanup.inventory.asBefore, true);
    await assertLeftAsBefore(started);
  });

  it('gives way to a failover asked of the desk while it is kept: the failover starts at once and succeeds, the drill is cleaned up beside it', async () => {
    const domain = newStubDomain(t, 'gives-way', vmNames);
    const drillRequest = { operation: 'drill' as const, requestedBy: 'drill-test', summary: `drill ${domain}`, input: drillInput(domain, 3_600_000) };
    const drilled = await requestOperation(t, domain, drillRequest);
    const drillHandle = t.client.workflow.getHandle(drilled.workflowId);
    await reached(drillHandle, 'keep the drill');
    assert.ok(t.sites.namesAt(RECOVERY).vms.some((name) => name.startsWith('drill-')), 'the drill holds its copies at the recovery site');
    await assert.rejects(requestOperation(t, domain, drillRequest), (error: Error) => /drill drill\/.* is running/.test(String((error as { cause?: Error }).cause?.message)), 'a second drill is refused');

    const failover = await requestOperation(t, domain, { operation: 'failover', requestedBy: 'dr-lead', summary: `fail ${domain} over`, input: failoverInput(domain, 'forced') });
    assert.equal(failover.drillGivingWay, drilled.workflowId, 'the failover names the drill that gives way to it');
    await assertCancelled(drillHandle);
    const report = await t.client.workflow.getHandle<typeof failoverWorkflow>(failover.workflowId).result();
    assert.equal(report.outcome, 'succeeded');
    const left = t.sites.namesAt(RECOVERY);
    assert.deepEqual([...left.vms, ...left.disks].filter((name) => name.startsWith('drill-')), [], 'nothing of the drill is left at the recovery site');
    for (const vm of vmNames(domain)) assert.equal(t.sites.site(RECOVERY).vms.get(vm)?.powerState, 'poweredOn', `${vm} runs at the recovery site`);
    const desk = await t.client.workflow.getHandle(domainOperationsWorkflowId(domain)).query(domainOperationsQuery);
    const drillRecord = desk.recent.find((r) => r.workflowId === drilled.workflowId);
    assert.deepEqual([drillRecord?.outcome, drillRecord?.gaveWayTo], ['cancelled', failover.workflowId], JSON.stringify(desk));
    await t.closeDomain(domain);
  });

  it('refuses a runbook without test networks before it creates anything', async () => {
    const started = await startDrill('no-test-networks', 0, (domain) => runbookYaml(domain));
    const report = await abortReport(started.handle);
    assert.match(report.failure ?? '', /has no spec.testNetworkMapping: .* cannot be drilled/);
    assert.deepEqual(t.sites.callsOf(started.domain), [], 'nothing was asked of any site');
    await assertLeftAsBefore(started);
  });
});
