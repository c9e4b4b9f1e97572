/**
 * The continuous failback workflow against stub sites (fast tier), after a planned failover of each
 * test's domain: the original disks follow from the departure (delta) or from the base
 * (overwriting), across continue-as-new; the completion applies the tail and brings the originals
 * up; a cancel after continue-as-new leaves the primary as it was and the domain Running in
 * Failover; a planned failover that asks for it is followed by it through the domain's desk.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { continuousFailback } from '../../workflows/continuous-failback';
import { completeContinuousFailbackUpdate } from '../../workflows/continuous-failback-messages';
import type { CompletionRequest } from '../../workflows/continuous-failover-messages';
import { deskStartOptions, domainOperations, domainOperationsQuery, startOperationUpdate } from '../../workflows/domain-operations';
import { failover } from '../../workflows/failover';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { failoverInput, storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { argOf, callsOfOperation, progressOf } from './operation-sweep';
import { assertOriginalsKept, originalsAt, type Originals } from './primary-originals';
import { workflowTaskTimeoutSeconds } from '../harness/histories';

const t = useWorkflowEnv();

const workflowId = (domain: string) => `continuous-failback/${domain}/test`;

/** A new domain failed over (planned) to the recovery site, and what the primary holds of it then. */
async function failedOver(label: string, { departure = true } = {}): Promise<{ domain: string; originals: Originals }> {
  const domain = newStubDomain(t, label, vmNames);
  const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `failover/${domain}/test`, args: [failoverInput(domain, 'planned')] });
  assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
  if (!departure) delete t.sites.domain(domain).departures[PRIMARY];
  return { domain, originals: originalsAt(t.sites, PRIMARY, domain) };
}

async function start(domain: string): Promise<WorkflowHandle<typeof continuousFailback>> {
  return t.client.workflow.start(continuousFailback, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: workflowId(domain),
    args: [{ domain, runbook: storedRunbook(t, domain), runbookVersion: 1, requestedBy: 'test-operator', declaredAt: Date.now(), followerRunsPerExecution: 1 }],
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const generation = async (handle: WorkflowHandle) => (await progressOf(handle))?.following?.generation ?? 0;
const planned = (): CompletionRequest => ({ type: 'planned', requestedBy: 'dr-lead', declaredAt: Date.now() });
const followerCalls = (domain: string) => callsOfOperation(t.sites, domain, workflowId(domain)).filter((c) => c.name === 'followLog');

/** `name:kind:powerState` of what a site holds of the domain, its disks and RocVAs. */
function inventory(site: string, domain: string): string[] {
  const { vms, disks, rocvas } = t.sites.inventoryOf(site, domain);
  return [...vms.map(([name, vm]) => `${name}:${vm.kind}:${vm.powerState}`), ...disks, ...rocvas].sort();
}

describe('continuous failback (stub sites)', () => {
  it('follows from the departure across continue-as-new, then a planned completion applies the tail and brings the originals up at the primary', async () => {
    const { domain, originals } = await failedOver('complete');
    const handle = await start(domain);
    await waitFor('two continue-as-new', async () => (await generation(handle)) >= 2);
    assert.equal(t.sites.domain(domain).status?.mode, 'Continuous Failback in Progress');
    assert.equal(t.sites.domain(domain).status?.runningAt, RECOVERY, 'the domain keeps running at the recovery site');
    for (const [vm] of originals.vms) assert.equal(t.sites.site(PRIMARY).vms.get(vm)?.powerState, 'poweredOff', `${vm} stays off at the primary while its disks follow`);
    const first = argOf(followerCalls(domain)[0]);
    assert.ok(first.departure && !first.cursor, `the first follower run starts at the departure, applying only what changed since: ${JSON.stringify(first)}`);

    await handle.executeUpdate(completeContinuousFailbackUpdate, { args: [planned()] });
    const report = await handle.result();
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.equal(report.rpoMs, 0);
    assert.ok(report.tail, 'the report gives the tail it applied');
    const staged = report.steps.filter((s) => s.stage).map((s) => s.name);
    for (const step of [`shut down VMs at ${RECOVERY}`, 'hand over ownership', 'apply the rest of the log', 'resume protection', 'power on by the runbook', `remove ${domain} from ${RECOVERY}`]) {
      assert.ok(staged.includes(step), `the completion stage has "${step}": ${staged.join(', ')}`);
    }
    assert.ok(!report.steps.some((s) => s.name.startsWith('rehydrate')), 'nothing is rehydrated at completion: the disks followed');
    assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
    assert.equal(t.sites.domain(domain).status?.runningAt, PRIMARY);
    assert.equal(t.sites.domain(domain).owner, PRIMARY);
    assertOriginalsKept(t.sites, originals, callsOfOperation(t.sites, domain, workflowId(domain)), 'as the operation left them');
    for (const [vm] of originals.vms) assert.equal(t.sites.site(PRIMARY).vms.get(vm)?.powerState, 'poweredOn', `${vm} runs at the primary again`);
    assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain).rocvas, [], 'the RocVA at the primary is gone');
    assert.deepEqual(inventory(RECOVERY, domain), [], 'the recovery site holds nothing of the domain any more');
  });

  it('follows from the base, overwriting the original disks, when they cannot take a delta', async () => {
    const { domain } = await failedOver('overwrite', { departure: false });
    const handle = await start(domain);
    await waitFor('a follower run', () => followerCalls(domain).length > 0);
    await handle.cancel();
    await assert.rejects(handle.result(), (error: unknown) => error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure);
    const first = argOf(followerCalls(domain)[0]);
    assert.equal(first.targetMayHoldData, true, `the follower zeroes what the base does not hold: ${JSON.stringify(first)}`);
    assert.equal(first.departure, undefined);
  });

  it('cancelled after continue-as-new: the primary holds what it held before, the domain is Running in Failover at the recovery site again', async () => {
    const { domain, originals } = await failedOver('cancel');
    const before = inventory(PRIMARY, domain);
    const atRecovery = inventory(RECOVERY, domain);
    const handle = await start(domain);
    await waitFor('continue-as-new', async () => (await generation(handle)) >= 1);
    await waitFor('the caught-up mode', () => t.sites.domain(domain).status?.mode === 'Continuous Failback in Progress');
    await handle.cancel();
    await assert.rejects(handle.result(), (error: unknown) => error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure);
    assert.deepEqual(inventory(PRIMARY, domain), before, 'no RocVA, representation VM or disk left at the primary; the originals are there, powered off');
    assertOriginalsKept(t.sites, originals, callsOfOperation(t.sites, domain, workflowId(domain)), 'restored');
    assert.deepEqual(inventory(RECOVERY, domain), atRecovery, 'the recovery site is untouched');
    assert.equal(t.sites.domain(domain).status?.mode, 'Running in Failover');
    assert.equal(t.sites.domain(domain).status?.runningAt, RECOVERY);
    assert.equal(t.sites.domain(domain).owner, RECOVERY);
  });

  it('refuses a forced completion without the domain name, and keeps following', async () => {
    const { domain } = await failedOver('refuse');
    const handle = await start(domain);
    await waitFor('a follower run', () => followerCalls(domain).length > 0);
    await assert.rejects(
      handle.executeUpdate(completeContinuousFailbackUpdate, { args: [{ ...planned(), type: 'forced' }] }),
      (error: unknown) => error instanceof WorkflowUpdateFailedError && /confirm it by repeating the domain name/.test(String(error.cause?.message)),
    );
    assert.equal(t.sites.domain(domain).owner, RECOVERY, 'nothing was fenced');
    await handle.cancel();
    await assert.rejects(handle.result(), (error: unknown) => error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure);
  });

  it('a planned failover that asks for it is followed by a continuous failback, started by the domain desk with the same workflow task timeout', async () => {
    const domain = newStubDomain(t, 'desk', vmNames);
    const desk = await t.client.workflow.start(domainOperations, deskStartOptions(domain));
    const input = { ...failoverInput(domain, 'planned'), continuousFailback: true };
    storedRunbook(t, domain); // the continuous failback that follows names the runbook the failover ran by
    // Sized as a runbook of 10,000 VMs: both operations may take 40 s to replay (workflows/task-timeout.ts).
    await desk.executeUpdate(startOperationUpdate, { args: [{ operation: 'failover', requestedBy: 'dr-lead', summary: 'planned failover with a continuous failback', input, vms: 10_000 }] });
    await waitFor('the continuous failback running', async () => (await desk.query(domainOperationsQuery)).running?.operation === 'continuous-failback');
    const state = await desk.query(domainOperationsQuery);
    assert.equal(state.recent[0]?.operation, 'failover');
    assert.equal(state.recent[0]?.outcome, 'succeeded');
    assert.equal(state.running?.requestedBy, 'dr-lead', 'by whoever asked for the failover');
    const running = t.client.workflow.getHandle(state.running.workflowId);
    assert.equal(await workflowTaskTimeoutSeconds(t.client, state.recent[0].workflowId), 40, "the failover's workflow task timeout is sized by its runbook's VMs");
    assert.equal(await workflowTaskTimeoutSeconds(t.client, state.running.workflowId), 40, 'the continuous failback that follows it has the same');
    await waitFor('the caught-up mode', () => t.sites.domain(domain).status?.mode === 'Continuous Failback in Progress');
    await running.executeUpdate(completeContinuousFailbackUpdate, { args: [planned()] });
    await waitFor('the desk idle again', async () => (await desk.query(domainOperationsQuery)).running === undefined);
    assert.equal((await desk.query(domainOperationsQuery)).recent[0]?.outcome, 'succeeded');
    assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
    await desk.terminate('test over');
  });
});
