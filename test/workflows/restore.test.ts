/**
 * The restore workflow against stub sites (fast tier): a restore of the whole domain and of one VM
 * in place at the primary (the state replaced saved first, a new epoch at the same site, the disks
 * rehydrated in place, protection of the whole domain resumed in the new epoch, the VMs powered on
 * by the plan), an abort after the disks were rewritten (put back to the saved point, protected
 * again in yet another epoch, powered on again), and refusals that change nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { PointInTime } from '../../activities/handover';
import { runbookAfterPermanentFailover } from '../../runbooks/new-direction';
import { restore } from '../../workflows/restore';
import type { RestoreInput } from '../../workflows/restore-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { runbook, storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { abortReport, argOf, outcomeAttribute, protection } from './operation-sweep';

const t = useWorkflowEnv();

const AN_HOUR_AGO = { at: Date.now() - 3_600_000 } satisfies PointInTime;

/** A restore of a fresh stub domain; `more(domain)`: what the request says besides (VMs, confirmation). */
async function startRestore(label: string, more: (domain: string) => Partial<RestoreInput> = () => ({})) {
  const domain = newStubDomain(t, label, vmNames);
  const input: RestoreInput = { domain, site: PRIMARY, runbook: storedRunbook(t, domain), runbookVersion: 1, pointInTime: AN_HOUR_AGO, confirm: domain, requestedBy: 'restore-test', declaredAt: Date.now(), ...more(domain) };
  const handle = await t.client.workflow.start(restore, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `restore/${domain}/test`, args: [input] });
  return { domain, handle };
}

const callsNamed = (domain: string, name: string) => t.sites.callsOf(domain).filter((c) => c.name === name && c.workflowId.startsWith('restore/'));
const powerStates = (vms: string[]) => vms.map((vm) => t.sites.site(PRIMARY).vms.get(vm)?.powerState);

describe('restore', () => {
  it('restores the whole domain in place: saved first, a new epoch at the same site, disks rehydrated in place, protection resumed, powered on by the plan', async () => {
    const { domain, handle } = await startRestore('whole domain');
    const vms = vmNames(domain);
    const report = await handle.result();
    assert.equal(report.outcome, 'succeeded');
    assert.equal(await outcomeAttribute(handle), 'succeeded');
    assert.ok(report.restore, 'the report has the restore section');
    assert.match(report.restore.savedPoint.id, /^0000000001-/, 'the state replaced was saved as a point of epoch 1');
    assert.deepEqual(report.restore.epochs, { before: 1, after: 2 });
    assert.deepEqual(report.restore.vms.map((v) => [v.vm, v.restored]), vms.map((vm) => [vm, true]));
    assert.ok(report.rtoMs !== undefined && report.rpoMs !== undefined && report.rpoMs >= 3_600_000 - 60_000, 'RTO and RPO (an hour back) are reported');

    const order = t.sites.callsOf(domain).filter((c) => c.workflowId === handle.workflowId).map((c) => c.name);
    const first = (name: string) => order.indexOf(name as never);
    assert.ok(first('keepStateAsRestorePoint') < first('shutdownForHandover') && first('shutdownForHandover') < first('claimNextEpoch'), `saved, then shut down, then a new epoch: ${order.join(', ')}`);
    assert.ok(first('claimNextEpoch') < first('stopJournaling') && first('stopJournaling') < first('rehydrateDomain') && first('rehydrateDomain') < first('registerRecoveredVm') && first('registerRecoveredVm') < first('protectRecoveredDisks'));
    assert.ok(t.sites.callsOf(domain).every((c) => c.site === PRIMARY), 'nothing runs at the recovery site');
    const rehydration = argOf(callsNamed(domain, 'rehydrateDomain')[0]);
    assert.equal(rehydration.targetMayHoldData, true, 'the disks are rewritten in place: zeros where the point has zeros');
    assert.equal(rehydration.targetDisksPrepared, undefined, "the disks are the VMs' own: none was prepared");
    assert.deepEqual((rehydration.onlyDisks as string[]).sort(), vms.map((vm) => `${vm}-disk-0`).sort());
    assert.deepEqual(rehydration.upTo, { kind: 'instant', at: AN_HOUR_AGO.at });

    const record = t.sites.domain(domain);
    assert.deepEqual([record.owner, record.epoch], [PRIMARY, 2], 'the primary still owns the domain, in a new epoch');
    assert.ok(await protection(t.client, domain, PRIMARY, 2), 'protection resumed at the primary in epoch 2');
    assert.deepEqual(powerStates(vms), vms.map(() => 'poweredOn'), 'the plan powered every VM on');
    await t.closeDomain(domain);
  });

  it('restores one VM: only it is shut down and rewritten; the others keep running, and protection covers the whole domain', async () => {
    const { domain, handle: second } = await startRestore('one vm', (d) => ({ vms: [vmNames(d)[1]] }));
    const [db, app1, app2] = vmNames(domain);
    const report = await second.result();
    assert.equal(report.outcome, 'succeeded');
    const shutDown = t.sites.callsOf(domain).filter((c) => c.workflowId === second.workflowId && c.name === 'shutdownForHandover').map((c) => argOf(c).vm);
    assert.deepEqual(shutDown, [app1], 'only the VM restored is shut down');
    const rehydration = t.sites.callsOf(domain).find((c) => c.workflowId === second.workflowId && c.name === 'rehydrateDomain');
    assert.ok(rehydration);
    assert.deepEqual(argOf(rehydration).onlyDisks, [`${app1}-disk-0`], 'only its disks are rewritten');
    const protectionStart = (await (await protection(t.client, domain, PRIMARY, t.sites.domain(domain).epoch))?.fetchHistory())?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    assert.ok(protectionStart, 'protection resumed in the new epoch');
    assert.deepEqual((JSON.parse(Buffer.from(protectionStart).toString()) as { vms: string[] }).vms, [db, app1, app2], 'protection of the new epoch covers every VM of the domain');
    assert.deepEqual(report.restore?.vms.map((v) => [v.vm, v.restored]), [[db, false], [app1, true], [app2, false]]);
    assert.deepEqual(powerStates([db, app1, app2]), ['poweredOn', 'poweredOn', 'poweredOn']);
    const journaled = t.sites.callsOf(domain).find((c) => c.workflowId === second.workflowId && c.name === 'protectRecoveredDisks');
    assert.deepEqual(journaled && argOf(journaled).diskIds, [`${app1}-disk-0`], 'only the rewritten disks stopped and started journaling again');
    await t.closeDomain(domain);
  });

  it('aborts after the disks were rewritten: the VMs put back to the saved point, protected again in yet another epoch, powered on again', async () => {
    let domain = '';
    const { handle } = await startRestore('abort', (d) => {
      domain = d;
      t.sites.intercept(d, async (call, proceed) => {
        if (call.name === 'powerOnVm' && call.workflowId.includes('/power-on/')) throw ApplicationFailure.nonRetryable('injected: the VM does not start', 'InjectedFailure');
        return proceed();
      });
      return {};
    });
    const vms = vmNames(domain);
    const report = await abortReport(handle);
    const rehydrations = callsNamed(domain, 'rehydrateDomain').map((c) => argOf(c).upTo as { kind: string; position?: { epoch: number } });
    assert.equal(rehydrations.length, 2, 'rehydrated to the point, then back to the saved point');
    assert.deepEqual([rehydrations[0].kind, rehydrations[1].kind, rehydrations[1].position?.epoch], ['instant', 'position', 1]);
    const record = t.sites.domain(domain);
    assert.deepEqual([record.owner, record.epoch], [PRIMARY, 3], 'ownership stays at the primary, in a third epoch');
    assert.ok(await protection(t.client, domain, PRIMARY, 3), 'the domain is protected again in epoch 3');
    assert.ok(report.compensation?.undone.some((u) => u.includes('protected again')), `undone: ${report.compensation?.undone.join('; ')}`);
    t.sites.intercept(domain, (_call, proceed) => proceed());
    assert.deepEqual(powerStates(vms), vms.map(() => 'poweredOn'), 'the VMs the restore shut down run again');
    await t.closeDomain(domain);
  });

  it('restores at the recovery site a domain running in failover there, and once it is its primary for good: only that site is acted on, it stays the owner', async () => {
    const domain = 'in-failover-at-recovery';
    // Owned by the recovery site, where its VMs run (as after a failover).
    t.sites.addDomain(domain, vmNames(domain), { primary: RECOVERY, recovery: PRIMARY });
    // Then made its primary for good, protected to the storage site only: its runbook names no recovery site, and it restores all the same.
    const runbooks = [runbook(domain), runbookAfterPermanentFailover(runbook(domain), undefined, 'restore-test')];
    for (const [i, byRunbook] of runbooks.entries()) {
      const handle = await t.client.workflow.start(restore, {
        taskQueue: ORCHESTRATION_TASK_QUEUE,
        workflowId: `restore/${domain}/test-${i}`,
        args: [{ domain, site: RECOVERY, runbook: byRunbook, runbookVersion: 1, pointInTime: AN_HOUR_AGO, confirm: domain, requestedBy: 'restore-test', declaredAt: Date.now() }],
      });
      const report = await handle.result();
      assert.equal(report.outcome, 'succeeded', `by runbook ${i}`);
      assert.equal(report.restore?.site, RECOVERY);
      assert.deepEqual([t.sites.domain(domain).owner, t.sites.domain(domain).epoch], [RECOVERY, 2 + i]);
      assert.ok(await protection(t.client, domain, RECOVERY, 2 + i), `protection resumed at the recovery site in epoch ${2 + i}`);
    }
    assert.ok(t.sites.callsOf(domain).every((c) => c.site === RECOVERY), 'nothing runs at the primary');
    const vms = vmNames(domain);
    assert.deepEqual(vms.map((vm) => t.sites.site(RECOVERY).vms.get(vm)?.powerState), vms.map(() => 'poweredOn'));
    await t.closeDomain(domain);
  });

  it('refuses a VM that is not in the point, and a missing confirmation, before changing anything', async () => {
    for (const [label, more, type] of [
      ['unknown vm', () => ({ vms: ['no-such-vm'] }), 'UnknownVm'],
      ['unconfirmed', () => ({ confirm: 'another-domain' }), 'ConfirmationRequired'],
    ] as const) {
      const { domain, handle } = await startRestore(label, more);
      const failed = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(failed instanceof WorkflowFailedError, `${label}: the restore fails`);
      const report = await abortReport(handle);
      assert.match(report.failure ?? '', type === 'UnknownVm' ? /no-such-vm/ : /confirmed/);
      const changing = t.sites.callsOf(domain).filter((c) => ['keepStateAsRestorePoint', 'shutdownForHandover', 'claimNextEpoch', 'rehydrateDomain'].includes(c.name));
      assert.deepEqual(changing, [], `${label}: nothing was saved, shut down or claimed`);
      assert.equal(t.sites.domain(domain).epoch, 1);
      assert.ok(t.sites.callsOf(domain).every((c) => c.site !== RECOVERY));
    }
  });
});
