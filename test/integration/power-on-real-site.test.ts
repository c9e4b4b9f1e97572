/**
 * The power-on plan driving a real simulated site through its worker: order, delays and guest
 * heartbeat waits are checked from the site's own event timestamps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createVmPowerActivities } from '../../activities/vm-power';
import { validateRunbook } from '../../runbooks/validate';
import { powerOnPlan } from '../../workflows/power-on-plan';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { useTestbed } from '../harness/testbed';
import { useInProcessWorkers } from '../harness/workers';

const RUNBOOK = `apiVersion: dr.example.io/v1alpha1
kind: Runbook
metadata: { name: demo-restart }
spec:
  protectedDomain: demo
  sites: { primary: recovery, recovery: primary }
  placement: { datacenter: dc-a, cluster: cluster-a1, datastore: ds-a }
  vms: [{ name: db-1 }, { name: app-1 }]
  rocva: { networks: { externalReplication: a-replication, internal: prod-app, management: a-management } }
  powerOn:
    groups:
      - name: database
        vms: [{ name: db-1, waitForHeartbeat: true, heartbeatTimeout: 30s, delayAfterPowerOn: 500ms }]
      - name: app
        dependsOn: [database]
        vms: [{ name: app-1, waitForHeartbeat: true, heartbeatTimeout: 30s }]
`;

describe('power-on plan against a real simulated site', () => {
  const { stack, primary: site } = useTestbed({ sites: ['primary'] });
  useInProcessWorkers(stack, 'primary', () => createVmPowerActivities({ provider: site.client, heartbeatPollMs: 100 }));

  it('powers on in runbook order, after the group it depends on has heartbeated', async () => {
    for (const vm of ['db-1', 'app-1']) await site.client.powerOff(vm);
    const since = (await site.client.events()).at(-1)!.sequence;
    const runbook = validateRunbook(RUNBOOK).runbook!;
    const results = await stack.client.workflow.execute(powerOnPlan, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: 'power-on/demo/real-site',
      args: [{ domain: 'demo', site: 'primary', powerOn: runbook.spec.powerOn, leavePoweredOff: [] }],
    });
    assert.deepEqual(results.map((g) => g.vms.map((v) => v.state)), [['poweredOn'], ['poweredOn']]);

    const powerOns = (await site.client.events(since)).filter((e) => e.type === 'VmPoweredOn');
    assert.deepEqual(powerOns.map((e) => e.vm), ['db-1', 'app-1']);
    const gap = powerOns[1].at - powerOns[0].at;
    // db-1's delay (500 ms) is shorter than its boot (800 ms): only the heartbeat wait explains a longer gap.
    assert.ok(gap >= 800, `app-1 started ${gap} ms after db-1; db-1's guest needs 800 ms to heartbeat`);
    assert.equal(await site.client.guestHeartbeat('app-1'), 'green', 'the plan waited for app-1 to heartbeat');
  });

  it('fails a VM that does not exist without retrying, naming it', async () => {
    const runbook = validateRunbook(RUNBOOK.replace('vms: [{ name: db-1 }, { name: app-1 }]', 'vms: [{ name: db-1 }, { name: app-1 }, { name: ghost-1 }]').replace("vms: [{ name: app-1, waitForHeartbeat: true, heartbeatTimeout: 30s }]", 'vms: [{ name: app-1 }, { name: ghost-1 }]')).runbook!;
    await assert.rejects(
      stack.client.workflow.execute(powerOnPlan, {
        taskQueue: ORCHESTRATION_TASK_QUEUE,
        workflowId: 'power-on/demo/ghost',
        args: [{ domain: 'demo', site: 'primary', powerOn: runbook.spec.powerOn, leavePoweredOff: [] }],
      }),
    );
    // The group needs no operator: its power-ons are in the plan's own history.
    const history = await stack.client.workflow.getHandle('power-on/demo/ghost').fetchHistory();
    const failures = JSON.stringify(history.events?.filter((e) => e.activityTaskFailedEventAttributes));
    assert.match(failures, /VM \\"ghost-1\\" does not exist at site primary/);
    const attempts = history.events?.filter((e) => e.activityTaskStartedEventAttributes && JSON.stringify(e).includes('ghost')).length;
    assert.ok((attempts ?? 0) <= 1, 'VmNotFound is not retried');
  });
});
