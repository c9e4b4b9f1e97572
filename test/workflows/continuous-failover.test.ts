/**
 * The continuous failover workflow against stub sites (fast tier): following across
 * continue-as-new, the completion as its own stage, VMs and disks added and removed while it
 * follows, a cancel after continue-as-new that still removes everything, and completions the
 * workflow refuses while the copy keeps following.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { FollowResult } from '../../datapath/follower';
import type { DomainDisk, VmMetadata } from '../../datapath/records';
import { continuousFailover } from '../../workflows/continuous-failover';
import { completeContinuousFailoverUpdate, type CompletionRequest } from '../../workflows/continuous-failover-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { progressOf, runbookInHistory } from './operation-sweep';

const t = useWorkflowEnv();
const newDomain = (label: string) => newStubDomain(t, label, vmNames);

const workflowId = (domain: string) => `continuous-failover/${domain}/test`;

/** Follower runs answer at once (a short run each), so that a few of them make a run continue as new. */
function quickFollower(domain: string, membership?: () => { vms: VmMetadata[]; disks: DomainDisk[] } | undefined): void {
  let runs = 0;
  t.sites.intercept(domain, async (call, proceed) => {
    if (call.name !== 'followLog') return proceed();
    const changed = membership?.();
    runs++;
    const result: FollowResult = {
      cursor: { base: null, baseWritten: true, applied: { epoch: 1, segment: runs } },
      segmentsApplied: 1,
      bytesRead: { base: runs === 1 ? 100 : 0, log: 10 },
      bytesWritten: 10,
      appliedUpTo: { timestamp: Date.now(), lastSequence: runs, epoch: 1 },
      lag: { segments: 0, bytes: 0, ms: 0 },
      caughtUp: true,
      ...(changed ? { membershipChanged: changed } : {}),
    };
    await new Promise((resolve) => setTimeout(resolve, 50));
    return result;
  });
}

async function start(domain: string): Promise<WorkflowHandleWithFirstExecutionRunId<typeof continuousFailover>> {
  return t.client.workflow.start(continuousFailover, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: workflowId(domain),
    args: [{ domain, runbook: storedRunbook(t, domain), runbookVersion: 1, requestedBy: 'test-operator', declaredAt: Date.now(), followerRunsPerExecution: 2 }],
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const generation = async (handle: WorkflowHandle) => (await progressOf(handle))?.following?.generation ?? 0;
const completion = (domain: string, request: Partial<CompletionRequest> = {}): CompletionRequest => ({ type: 'forced', forcedConfirmation: domain, requestedBy: 'dr-lead', declaredAt: Date.now(), ...request });

/** `act` done on a continuous failover whose run, continued as new, is still reading its runbook; the read goes on 300 ms later. */
async function whileARunReadsItsRunbook<T>(label: string, act: (handle: WorkflowHandle<typeof continuousFailover>, domain: string) => Promise<T>) {
  const domain = newDomain(label);
  quickFollower(domain);
  const handle = await start(domain);
  await waitFor('a continue-as-new', async () => (await generation(handle)) >= 1);
  const release = t.runbooks.holdReads();
  let acting: Promise<PromiseSettledResult<T>[]>;
  try {
    await waitFor('a run reading its runbook', () => t.runbooks.readsWaiting > 0);
    acting = Promise.allSettled([act(handle, domain)]);
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    release();
  }
  const [acted] = await acting;
  if (acted.status === 'rejected') throw acted.reason;
  return { domain, handle, acted: acted.value };
}

describe('continuous failover (stub sites)', () => {
  it('follows across continue-as-new, then completes as a stage of its own with only the tail applied', async () => {
    const domain = newDomain('complete');
    quickFollower(domain);
    const handle = await start(domain);
    await waitFor('two continue-as-new', async () => (await generation(handle)) >= 2);
    const { events } = await t.client.workflow.getHandle(workflowId(domain), handle.firstExecutionRunId).fetchHistory();
    const secondRun = t.client.workflow.getHandle(workflowId(domain), events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined);
    assert.deepEqual(await runbookInHistory(secondRun), { input: { name: domain }, reads: [`read runbook ${domain} v1`] }, 'a run continued as new carries the runbook\'s name and reads it again');
    assert.equal(t.sites.domain(domain).status?.mode, 'Continuous Rehydration in Progress');
    assert.equal(t.sites.domain(domain).status?.runningAt, PRIMARY, 'the VMs keep running at the primary');
    await handle.executeUpdate(completeContinuousFailoverUpdate, { args: [completion(domain)] });
    const report = (await handle.result());
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.type, 'forced');
    const staged = report.steps.filter((s) => s.stage);
    assert.deepEqual(
      staged.map((s) => s.name),
      ['check ownership', 'take over ownership', 'record the departure from primary', 'apply the rest of the log', 'register VMs in place of their representation VMs', 'resume protection', 'power on by the runbook', 'remove the RocVA', 'set the domain mode'],
    );
    assert.ok(report.steps.slice(0, report.steps.length - staged.length).some((s) => s.name === 'deploy the RocVA'), 'the steps of earlier runs are carried across continue-as-new');
    assert.ok(!report.steps.some((s) => s.name === 'rehydrate disks'));
    assert.ok(report.following!.generation >= 2 && report.following!.bytesRead.base === 100, 'the base was read by the first follower run only');
    assert.deepEqual(report.tail, { segments: 1, bytesRead: { base: 0, log: 10 }, bytesWritten: 10 });
    assert.equal(t.sites.domain(domain).status?.mode, 'Running in Failover');
    assert.equal(t.sites.domain(domain).owner, RECOVERY);
    const left = t.sites.inventoryOf(RECOVERY, domain);
    assert.deepEqual(left.rocvas, []);
    assert.deepEqual(
      left.vms.map(([name, vm]) => `${name}:${vm.kind}`),
      vmNames(domain).map((vm) => `${vm}:vm`).sort(),
    );
  });

  it('a completion moves ownership while the follower it stopped ends, and applies the tail only once that follower has ended', async () => {
    const domain = newDomain('stopped-follower');
    const seen: string[] = [];
    t.sites.intercept(domain, async (call, proceed) => {
      if (call.name === 'claimDomain') seen.push('ownership claimed');
      if (call.name !== 'followLog') return proceed();
      if ((call.args[0] as { untilEnd?: boolean }).untilEnd) {
        seen.push('tail started');
        return proceed();
      }
      try {
        return await proceed();
      } catch (error) {
        if (!(error instanceof CancelledFailure)) throw error;
        // A run stuck on a slow store: it still writes the segment it holds before it ends.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        seen.push('stopped follower ended');
        throw error;
      }
    });
    const handle = await start(domain);
    await waitFor('following', () => t.sites.domain(domain).status?.mode === 'Continuous Rehydration in Progress');
    await handle.executeUpdate(completeContinuousFailoverUpdate, { args: [completion(domain)] });
    assert.equal((await handle.result()).outcome, 'succeeded');
    assert.deepEqual(seen, ['ownership claimed', 'stopped follower ended', 'tail started']);
  });

  it('a completion sent while a run that continued as new reads its runbook is taken once the runbook is read', async () => {
    const { domain, handle, acted } = await whileARunReadsItsRunbook('reading', (handle, domain) => handle.executeUpdate(completeContinuousFailoverUpdate, { args: [completion(domain)] }));
    assert.equal(acted.requestedBy, 'dr-lead');
    assert.equal((await handle.result()).outcome, 'succeeded');
    assert.equal(t.sites.domain(domain).owner, RECOVERY);
  });

  it('a cancel sent while a run that continued as new reads its runbook still removes everything it created', async () => {
    const { domain, handle } = await whileARunReadsItsRunbook('cancel-reading', (handle) => handle.cancel());
    const error = await handle.result().catch((e: unknown) => e);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, String(error));
    assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), { vms: [], disks: [], rocvas: [] });
    assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
  });

  it('a cancel after continue-as-new removes the RocVA and every representation VM and disk, and the domain is Protected again', async () => {
    const domain = newDomain('cancel');
    quickFollower(domain);
    const handle = await start(domain);
    await waitFor('a continue-as-new after the first catch-up', async () => (await generation(handle)) >= 1 && t.sites.domain(domain).status?.mode === 'Continuous Rehydration in Progress');
    await handle.cancel();
    const error = await handle.result().catch((e: unknown) => e);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, String(error));
    assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), { vms: [], disks: [], rocvas: [] });
    assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
    assert.equal(t.sites.domain(domain).owner, PRIMARY, 'ownership never moved');
  });

  it('a cancel after continue-as-new leaves what the recovery site held before the operation', async () => {
    const domain = newDomain('cancel-keeps');
    const [kept] = t.sites.domain(domain).disks;
    t.sites.site(RECOVERY).disks.set(kept.diskId, kept.sizeBytes);
    quickFollower(domain);
    const handle = await start(domain);
    await waitFor('a continue-as-new after the first catch-up', async () => (await generation(handle)) >= 1 && t.sites.domain(domain).status?.mode === 'Continuous Rehydration in Progress');
    await handle.cancel();
    await handle.result().catch(() => undefined);
    assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), { vms: [], disks: [kept.diskId], rocvas: [] }, 'only the disk that was there before stays');
  });

  it('matches the recovery site to VMs and disks added and removed at the primary', async () => {
    const domain = newDomain('members');
    const stub = t.sites.domain(domain);
    const [db, app1, app2] = stub.vms;
    const added: VmMetadata = { ...app1, name: `${domain}-app-9`, diskIds: [`${domain}-app-9-disk-0`] };
    let manifest: { vms: VmMetadata[]; disks: DomainDisk[] } | undefined;
    quickFollower(domain, () => {
      const changed = manifest;
      manifest = undefined;
      return changed;
    });
    const handle = await start(domain);
    await waitFor('following', () => stub.status?.mode === 'Continuous Rehydration in Progress');
    manifest = {
      vms: [{ ...db, diskIds: [...db.diskIds, `${db.name}-disk-1`] }, app1, added],
      disks: [
        { vm: db.name, diskId: db.diskIds[0], sizeBytes: 1024 },
        { vm: db.name, diskId: `${db.name}-disk-1`, sizeBytes: 1024 },
        { vm: app1.name, diskId: app1.diskIds[0], sizeBytes: 1024 },
        { vm: added.name, diskId: added.diskIds[0], sizeBytes: 1024 },
      ],
    };
    await waitFor('the recovery site matched', () => {
      const { vms, disks } = t.sites.inventoryOf(RECOVERY, domain);
      const held = (vm: string) => vms.find(([name]) => name === `repr-${vm}`)?.[1].diskIds.join();
      return held(added.name) === added.diskIds[0] && held(db.name) === `${db.diskIds[0]},${db.name}-disk-1` && held(app2.name) === undefined && !disks.includes(app2.diskIds[0]);
    });
    await waitFor('the workflow following the new set', async () => (await progressOf(handle))?.following?.disks === 4);
    // The added VM is not in the runbook the continuous failover started with: a completion by it is refused, and following goes on.
    const refused = await handle.executeUpdate(completeContinuousFailoverUpdate, { args: [completion(domain)] }).catch((e: unknown) => e);
    assert.ok(refused instanceof WorkflowUpdateFailedError, String(refused));
    assert.match(String(refused.cause?.message), new RegExp(`${added.name} was added to ${domain} but is not in runbook`));
    const unconfirmed = await handle.executeUpdate(completeContinuousFailoverUpdate, { args: [completion(domain, { forcedConfirmation: 'wrong' })] }).catch((e: unknown) => e);
    assert.ok(unconfirmed instanceof WorkflowUpdateFailedError);
    assert.match(String(unconfirmed.cause?.message), /confirm it by repeating the domain name/);
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    await handle.cancel();
    await handle.result().catch(() => undefined);
    assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), { vms: [], disks: [], rocvas: [] }, 'a cancel also removes what was added while following');
  });
});
