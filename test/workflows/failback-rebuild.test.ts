/**
 * Failback onto a primary that lost one of the domain's VMs while the domain ran in failover (fast
 * tier, stub sites): the VM is rebuilt there from its recorded configuration (placed and connected
 * by the runbook's failback section when it has one), fully rehydrated, registered, protected and
 * powered on by the failback's plan; an abort after the rebuild removes what the failback created
 * there and nothing that was there before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { representationVmName } from '../../common/resource-names';
import type { RegisterVmSpec } from '../../sites/provider';
import { validateRunbook } from '../../runbooks/validate';
import { failback } from '../../workflows/failback';
import { failover } from '../../workflows/failover';
import { OPERATION_ABORTED, type HandoverType, type OperationReport } from '../../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { failoverInput, runbookYaml, vmNames } from '../fixtures/workflow-runbooks';
import type { StubCall } from '../harness/stub-sites';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';

const t = useWorkflowEnv();

const failbackId = (domain: string) => `failback/${domain}/test`;

/** The test runbook with a failback section: rebuilt VMs go to cluster-a2 on ds-a-rebuilt, prod-app maps to prod-app-b, and the primary starts the app tier first. */
function runbookWithFailbackSection(domain: string) {
  const [db, app1, app2] = vmNames(domain);
  const text = `${runbookYaml(domain)}  failback:
    placement: { datacenter: dc-a, cluster: cluster-a2, datastore: ds-a-rebuilt }
    networkMapping:
      - { source: prod-app, target: prod-app-b }
    powerOn:
      groups:
        - name: primary-app
          vms: [{ name: ${app1} }, { name: ${app2} }]
        - name: primary-db
          dependsOn: [primary-app]
          vms: [{ name: ${db} }]
`;
  const checked = validateRunbook(text);
  assert.ok(checked.runbook, JSON.stringify(checked.errors));
  return checked.runbook;
}

/** A domain failed over (planned) to the recovery site; the failover's report. */
async function failedOver(label: string): Promise<{ domain: string; report: OperationReport }> {
  const domain = newStubDomain(t, label, vmNames);
  const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `failover/${domain}/test`, args: [failoverInput(domain, 'planned')] });
  assert.equal(report.outcome, 'succeeded');
  return { domain, report };
}

/** The VM is deleted at the primary while the domain runs in failover, with its disks unless `keepDisks`. */
function deleteAtPrimary(vm: string, { keepDisks = false } = {}): string[] {
  const primary = t.sites.site(PRIMARY);
  const diskIds = primary.vms.get(vm)!.diskIds;
  primary.vms.delete(vm);
  if (!keepDisks) for (const id of diskIds) primary.disks.delete(id);
  return diskIds;
}

function startFailback(domain: string, type: HandoverType = 'planned', runbook = failoverInput(domain, type).runbook): Promise<WorkflowHandle<typeof failback>> {
  return t.client.workflow.start(failback, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: failbackId(domain),
    args: [{ domain, type, runbook, runbookVersion: 1, requestedBy: 'test-operator', declaredAt: Date.now(), ...(type === 'forced' ? { forcedConfirmation: domain } : {}) }],
  });
}

/** The failback's own calls (and its power-on groups'), not those of the protections it stops and starts. */
const failbackCalls = (domain: string) => t.sites.callsOf(domain).filter((c) => c.workflowId === failbackId(domain) || c.workflowId.startsWith(`${failbackId(domain)}/`));
const argOf = (call: StubCall) => call.args[0] as Record<string, unknown>;

async function abortReport(handle: WorkflowHandle): Promise<OperationReport> {
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure, `the failback ended with ${String(error)}`);
  assert.equal(error.cause.type, OPERATION_ABORTED);
  return error.cause.details?.[0] as OperationReport;
}

describe('failback onto a primary that lost a VM: the VM is rebuilt there', () => {
  it('rebuilds the missing VM as it was at the primary (placement, network, address), rehydrates fully and powers every VM on', async () => {
    const { domain } = await failedOver('rebuild-as-left');
    const [db, app1] = vmNames(domain);
    const diskIds = deleteAtPrimary(app1);
    try {
      const report = await (await startFailback(domain)).result();
      assert.equal(report.outcome, 'succeeded');
      assert.deepEqual(report.rebuilt, [{ vm: app1, placement: { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' }, networks: ['prod-app'], diskIds }]);
      assert.equal(report.rehydration?.kind, 'full');
      assert.match(report.rehydration.why ?? '', new RegExp(`${app1} rebuilt at ${PRIMARY} on new disks`));
      const steps = report.steps.map((s) => s.name);
      assert.ok(!steps.includes('check the original disks for a delta'), 'new disks cannot take a delta: the check is not spent');
      for (const step of [`create representation VMs for the VMs rebuilt at ${PRIMARY}`, 'rehydrate the original disks fully', 'register VMs in place of their representation VMs']) {
        assert.ok(steps.includes(step), `${step} in ${JSON.stringify(steps)}`);
      }

      const calls = failbackCalls(domain);
      const prepared = calls.filter((c) => c.name === 'prepareTargetDisks' && c.ended === 'ok');
      assert.deepEqual(prepared.map((c) => [c.site, argOf(c).vm]), [[PRIMARY, app1]], 'only the missing VM gets target disks');
      const registered = calls.filter((c) => c.name === 'registerInPlaceOfRepresentation' && c.ended === 'ok').map((c) => argOf(c).spec as RegisterVmSpec);
      assert.equal(registered.length, 1);
      assert.equal(registered[0].name, app1);
      assert.deepEqual(registered[0].nics, [{ network: 'prod-app', ip: { address: '10.10.1.10', prefix: 24, dns: [] } }], 'the network and address it had at the primary');
      assert.equal(registered[0].metadata?.rebuiltBy, domain);
      const [rocva] = calls.filter((c) => c.name === 'deployRocva').map(argOf);
      assert.deepEqual(rocva.networks, { externalReplication: 'prod-app', internal: 'prod-app', management: 'prod-app' }, 'no mapping back: the RocVA is on the network the original VMs use');
      const rehydrated = calls.find((c) => c.name === 'rehydrateDomain')!;
      assert.equal((argOf(rehydrated).diskDatastores as Record<string, string>)[diskIds[0]], 'ds-a', 'the new disk is rehydrated where it was created');
      assert.ok(calls.some((c) => c.name === 'protectRecoveredDisks' && (argOf(c).diskIds as string[]).includes(diskIds[0])), 'the new disk is journaled with the others');

      const primary = t.sites.inventoryOf(PRIMARY, domain);
      assert.deepEqual(primary.vms.map(([name, vm]) => `${name}:${vm.kind}:${vm.powerState}`), vmNames(domain).sort().map((vm) => `${vm}:vm:poweredOn`), 'every VM runs at the primary, no representation VM is left');
      assert.deepEqual(primary.rocvas, []);
      assert.ok(diskIds.every((id) => t.sites.site(PRIMARY).disks.has(id)));
      assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), { vms: [], disks: [], rocvas: [] });
      assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
      assert.equal(report.vms.find((vm) => vm.name === db)?.state, 'poweredOn');
    } finally {
      await t.closeDomain(domain);
    }
  });

  it('places and connects it by the failback section, maps the RocVA back, and powers on by the failback plan', async () => {
    const { domain } = await failedOver('rebuild-by-section');
    const [db, app1, app2] = vmNames(domain);
    deleteAtPrimary(db);
    try {
      const report = await (await startFailback(domain, 'planned', runbookWithFailbackSection(domain))).result();
      assert.equal(report.outcome, 'succeeded');
      assert.deepEqual(report.rebuilt?.map((r) => [r.vm, r.placement, r.networks]), [[db, { datacenter: 'dc-a', cluster: 'cluster-a2', datastore: 'ds-a-rebuilt' }, ['prod-db']]], 'prod-db is not mapped: it keeps the network it had');
      const calls = failbackCalls(domain);
      const poweredOn = calls.filter((c) => c.name === 'powerOnVm').map((c) => argOf(c).vm as string);
      assert.deepEqual([...poweredOn.slice(0, 2).sort(), poweredOn[2]], [app1, app2].sort().concat(db), 'the failback plan, in its order: primary-app, then primary-db');
      assert.ok(t.sites.site(PRIMARY).disks.has(`${db}-disk-0`));
    } finally {
      await t.closeDomain(domain);
    }
  });

  /** The failback aborts with `failure` after looking at the primary only: ownership and the recovery site untouched. */
  async function assertAbortedBeforeAnythingChanged(domain: string, failure: RegExp): Promise<void> {
    try {
      const report = await abortReport(await startFailback(domain));
      assert.match(report.failure ?? '', failure);
      assert.deepEqual(report.steps.map((s) => s.name), ['check ownership', `find the original VMs at ${PRIMARY}`]);
      assert.equal(t.sites.domain(domain).owner, RECOVERY);
      assert.deepEqual(failbackCalls(domain).filter((c) => c.site === RECOVERY).map((c) => c.name), [], 'the recovery site was not touched');
    } finally {
      await t.closeDomain(domain);
    }
  }

  it('a missing VM nothing says where to place aborts before anything changed', async () => {
    const { domain } = await failedOver('rebuild-nowhere');
    const [, app1] = vmNames(domain);
    deleteAtPrimary(app1);
    // A departure recorded before VMs' placements were kept.
    delete t.sites.domain(domain).departures[PRIMARY].vms;
    await assertAbortedBeforeAnythingChanged(domain, new RegExp(`${app1} must be rebuilt at ${PRIMARY}, and neither spec.failback.placement of runbook ${domain} nor the domain's departure from there says where`));
  });

  it('an original VM running at the primary (a split-brain not recorded yet) aborts before anything changed', async () => {
    const { domain } = await failedOver('original-running');
    const [db] = vmNames(domain);
    t.sites.site(PRIMARY).vms.get(db)!.powerState = 'poweredOn';
    await assertAbortedBeforeAnythingChanged(domain, new RegExp(`${db} run at ${PRIMARY} while ${domain} runs in failover at ${RECOVERY}: a split-brain; resolve it first`));
  });

  it('an abort after the rebuild removes the rebuilt VMs and the disks it created, and nothing that was at the primary before', async () => {
    const { domain } = await failedOver('rebuild-undone');
    const [db, app1, app2] = vmNames(domain);
    const newDisks = deleteAtPrimary(app1);
    // Deleted without its disks: they were there before the failback, so they are not its to remove.
    const leftDisks = deleteAtPrimary(app2, { keepDisks: true });
    const dbDisks = t.sites.site(PRIMARY).vms.get(db)!.diskIds;
    t.sites.intercept(domain, (call, proceed) => {
      if (call.name === 'powerOnVm' && call.site === PRIMARY && argOf(call).vm === db) throw ApplicationFailure.nonRetryable(`${db} does not start`, 'InvalidRequest');
      return proceed();
    });
    try {
      const report = await abortReport(await startFailback(domain));
      const calls = failbackCalls(domain);
      assert.ok(calls.some((c) => c.name === 'registerInPlaceOfRepresentation' && c.ended === 'ok'), 'the rebuilt VMs were registered before the abort');
      const removedAtPrimary = calls.filter((c) => c.name === 'removeRecoveredVm' && c.site === PRIMARY).map((c) => String(argOf(c).vm));
      assert.deepEqual(removedAtPrimary.sort(), [app1, app2].sort(), 'only the rebuilt VMs are undone at the primary');

      const primary = t.sites.site(PRIMARY);
      assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain).vms.map(([name]) => name), [db], 'the rebuilt VMs and their representation VMs are gone; the original VM stays');
      assert.ok(![app1, app2].some((vm) => primary.vms.has(representationVmName(vm))));
      assert.ok(newDisks.every((id) => !primary.disks.has(id)), 'the disks the failback created are removed');
      assert.ok([...leftDisks, ...dbDisks].every((id) => primary.disks.has(id)), 'the disks that were there before stay');
      assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain).rocvas, [], 'the RocVA is removed');

      const { undone } = report.compensation!;
      // One undo for the batch of the two rebuilt VMs, naming its first and last VM and what it kept.
      const removal = undone.find((u) => /^VMs 1–2 of 2 \(.*\) and their disks removed from /.test(u));
      assert.ok(removal?.includes(app1) && removal.includes(app2) && removal.includes(`removed from ${PRIMARY}`), JSON.stringify(undone));
      assert.ok(removal?.endsWith(`(kept what was there before: ${leftDisks.join(', ')})`), removal);
      assert.ok(!undone.some((u) => u.includes(db) && /removed/.test(u)), 'nothing removes the original VM');
      assert.equal(t.sites.domain(domain).owner, RECOVERY, 'ownership returned to the recovery site');
      assert.deepEqual(
        t.sites.inventoryOf(RECOVERY, domain).vms.map(([name, vm]) => `${name}:${vm.powerState}`),
        vmNames(domain).sort().map((vm) => `${vm}:poweredOn`),
        'the domain runs at the recovery site again',
      );
    } finally {
      await t.closeDomain(domain);
    }
  });
});
