/**
 * Rebuilding a domain in batches (workflows/vm-fan-out.ts forEachBatch, activities/vm-batches.ts)
 * against stub sites (fast tier): a batch retried after part of it was done does each VM once,
 * and a failover's own history schedules activities by batch, not by VM.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { COMPRESSED_ENCODING, PayloadCompression } from '../../common/payload-compression';
import { failover } from '../../workflows/failover';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { VMS_PER_BATCH } from '../../workflows/vm-fan-out';
import { failoverInput, vmNames } from '../fixtures/workflow-runbooks';
import { RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { argOf } from './operation-sweep';

const t = useWorkflowEnv();

/** The test runbook's three VMs, and `extra` more in its app group: `<domain>-app-<n>`. */
const domainVms = (extra: number) => (domain: string) => [...vmNames(domain), ...Array.from({ length: extra }, (_, i) => `${domain}-app-${i + 3}`)];

/** A forced failover of `domain` (made with `domainVms(extra)`) to the end; its workflow id. */
async function failOver(domain: string, extra: number): Promise<string> {
  const input = failoverInput(domain, 'forced');
  const app = input.runbook.spec.powerOn.groups.find((g) => g.name === 'app')!;
  for (const name of domainVms(extra)(domain).slice(3)) {
    input.runbook.spec.vms.push({ ...input.runbook.spec.vms[1], name });
    app.vms.push({ ...app.vms[0], name });
  }
  const workflowId = `failover/${domain}/test`;
  const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [input] });
  assert.equal(report.outcome, 'succeeded', report.failure);
  return workflowId;
}

describe('rebuilding a domain in batches', () => {
  it('a batch retried after part of it was done does each VM once, and the retry skips what was done', async () => {
    const extra = 27;
    const domain = newStubDomain(t, 'batch-retry', domainVms(extra));
    const failing = `${domain}-app-20`;
    let failed = false;
    t.sites.intercept(domain, async (call, proceed) => {
      if (!failed && call.name === 'registerRecoveredVm' && (argOf(call).spec as { name: string }).name === failing) {
        failed = true;
        throw ApplicationFailure.retryable(`injected: the site dropped the call for ${failing}`, 'SiteUnavailable');
      }
      return proceed();
    });
    await failOver(domain, extra);

    const calls = t.sites.callsOf(domain);
    const batches = calls.filter((c) => c.name === 'registerRecoveredVmsOfBatch');
    assert.deepEqual(
      batches.map((c) => [c.attempt, c.ended]),
      [
        [1, 'failed'],
        [2, 'ok'],
      ],
      'one batch, failed once by the injected failure and retried',
    );
    const registrations = calls.filter((c) => c.name === 'registerRecoveredVm');
    const vms = domainVms(extra)(domain);
    for (const vm of vms) {
      const done = registrations.filter((c) => (argOf(c).spec as { name: string }).name === vm && c.ended === 'ok');
      assert.equal(done.length, 1, `${vm} is registered exactly once`);
    }
    const retried = registrations.filter((c) => c.attempt === 2).map((c) => (argOf(c).spec as { name: string }).name);
    assert.ok(retried.includes(failing), 'the retry registers the VM that failed');
    assert.ok(retried.length < vms.length, `the retry skips the VMs its first attempt registered (it did ${retried.length} of ${vms.length})`);
    assert.equal(registrations.length, vms.length + 1, 'no VM but the failed one was asked twice');
    assert.deepEqual(
      t.sites.inventoryOf(RECOVERY, domain).vms.map(([name, vm]) => `${name}:${vm.kind}:${vm.powerState}`),
      [...vms].sort().map((name) => `${name}:vm:poweredOn`),
      'every VM is registered at the recovery site once and runs',
    );
  });

  it("a failover's history schedules an activity per batch of VMs, not per VM, and stores a batch's VMs compressed", async () => {
    const scheduled = async (extra: number) => {
      const domain = newStubDomain(t, `batch-history-${extra}`, domainVms(extra));
      const workflowId = await failOver(domain, extra);
      const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
      return (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
    };
    const small = await scheduled(0);
    const large = await scheduled(VMS_PER_BATCH + 10);
    // Three per-VM steps (create representation VMs, remove them, register VMs): one more batch each.
    assert.equal(large.length - small.length, 3, `3 VMs scheduled ${small.length} activities, ${VMS_PER_BATCH + 13} VMs ${large.length}`);

    const [stored] = large.find((a) => a.activityType?.name === 'registerRecoveredVmsOfBatch')?.input?.payloads ?? [];
    assert.equal(Buffer.from(stored.metadata?.encoding ?? []).toString(), COMPRESSED_ENCODING, 'a batch of 100 VMs\' specs is stored compressed');
    const input = JSON.parse(Buffer.from(new PayloadCompression().decodeOne(stored).data ?? []).toString()) as { vms: unknown[] };
    assert.equal(input.vms.length, VMS_PER_BATCH);
    assert.ok((stored.data?.length ?? 0) * 5 < JSON.stringify(input).length, `compressed to ${stored.data?.length} bytes from ${JSON.stringify(input).length}`);
  });
});
