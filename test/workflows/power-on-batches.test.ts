/**
 * A power-on group bigger than POWER_ON_BATCH_VMS runs as a child workflow per batch
 * (workflows/power-on-plan.ts), against stub sites (fast tier): batches one after the other, named
 * by group and batch, every VM powered on once, and the groups that depend on it only after its last batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failover } from '../../workflows/failover';
import { POWER_ON_BATCH_VMS } from '../../workflows/power-on-plan';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { powerOnBatchWorkflowId, powerOnGroupWorkflowId } from '../../workflows/workflow-ids';
import { failoverInput, vmNames } from '../fixtures/workflow-runbooks';
import { RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { argOf } from './operation-sweep';

const t = useWorkflowEnv();

/** Two full batches and a part of one more. */
const EXTRA = 2 * POWER_ON_BATCH_VMS + 7;
const extraVms = (domain: string) => Array.from({ length: EXTRA }, (_, i) => `${domain}-db-${i + 2}`);

describe('a power-on group in batches', () => {
  it('powers on a group bigger than a batch by a child per batch, in order, before the groups that depend on it', async () => {
    const domain = newStubDomain(t, 'power-on-batches', (d) => [...vmNames(d), ...extraVms(d)]);
    const input = failoverInput(domain, 'forced');
    const { spec } = input.runbook;
    const database = spec.powerOn.groups.find((g) => g.name === 'database')!;
    const app = spec.powerOn.groups.find((g) => g.name === 'app')!;
    for (const name of extraVms(domain)) {
      spec.vms.push({ ...spec.vms[1], name });
      database.vms.push({ ...app.vms[0], name });
    }
    const workflowId = `failover/${domain}/test`;
    const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [input] });
    assert.equal(report.outcome, 'succeeded', report.failure);

    const total = Math.ceil(database.vms.length / POWER_ON_BATCH_VMS);
    assert.equal(total, 3);
    for (let index = 1; index <= total; index++) {
      const batch = await t.client.workflow.getHandle(powerOnBatchWorkflowId(workflowId, 'database', { index, total })).describe();
      assert.equal(batch.status.name, 'COMPLETED', `batch ${index} of ${total} ran as its own child`);
    }
    await assert.rejects(t.client.workflow.getHandle(powerOnGroupWorkflowId(workflowId, 'database')).describe(), /not found/i, 'no child holds the whole group');
    const appChild = await t.client.workflow.getHandle(powerOnGroupWorkflowId(workflowId, 'app')).describe();
    assert.equal(appChild.status.name, 'COMPLETED', 'a group within a batch keeps its one child');

    const powerOns = t.sites
      .callsOf(domain)
      .filter((c) => c.name === 'powerOnVm' && c.ended === 'ok')
      .map((c) => argOf(c).vm as string);
    const databaseVms = database.vms.map((vm) => vm.name);
    assert.equal(powerOns.length, spec.vms.length, 'every VM powered on once');
    assert.equal(new Set(powerOns).size, spec.vms.length);
    const batchOf = (vm: string) => Math.floor(databaseVms.indexOf(vm) / POWER_ON_BATCH_VMS);
    const databaseOrder = powerOns.filter((vm) => databaseVms.includes(vm)).map(batchOf);
    assert.deepEqual(databaseOrder, [...databaseOrder].sort((a, b) => a - b), 'each batch starts after the one before it');
    const lastDatabase = Math.max(...databaseVms.map((vm) => powerOns.indexOf(vm)));
    for (const vm of app.vms) assert.ok(powerOns.indexOf(vm.name) > lastDatabase, `${vm.name} (group app) after every VM of database`);

    assert.deepEqual(
      report.vms.filter((vm) => vm.state !== 'poweredOn'),
      [],
      'the report has every VM powered on',
    );
    assert.equal(t.sites.inventoryOf(RECOVERY, domain).vms.filter(([, vm]) => vm.kind === 'vm' && vm.powerState === 'poweredOn').length, spec.vms.length);
  });
});
