import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { WorkflowFailedError, type ApplicationFailure } from '@temporalio/client';
import { readDomainStatus } from '../../datapath/domain-status';
import { Ownership } from '../../datapath/ownership';
import { validateRunbook } from '../../runbooks/validate';
import { failover } from '../../workflows/failover';
import { OPERATION_ABORTED, type OperationReport } from '../../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const DOMAIN = 'charlie';
/** The runbook's placement at the recovery site. */
const DATASTORE = 'ds-b';
/** Room for a few blocks: the domain's disks hold far more once the workload has written for a while. */
const TOO_SMALL = 64 * 1024;

describe('the recovery datastore full during a failover\'s rehydration: the failover stops naming it, removes what it created, and succeeds once space is freed', () => {
  const { stack, sites, primary, recovery, store } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration', 'primary', 'recovery'] });
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 80, blockSize: 4096, pattern: 'random', seed: 'datastore-full' });
    await protectAtPrimary(stack.client, DOMAIN);
  });

  function startFailover(attempt: string) {
    const checked = validateRunbook(runbookYaml(DOMAIN, {}));
    assert.ok(checked.runbook, JSON.stringify(checked.errors));
    return stack.client.workflow.start(failover, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: `failover/${DOMAIN}/${attempt}`,
      args: [{ domain: DOMAIN, type: 'planned', runbook: checked.runbook, runbookVersion: 1, requestedBy: 'datastore-full-test', declaredAt: Date.now() }],
    });
  }

  const holdings = async () => ({ vms: (await recovery.client.listVms()).map((v) => v.name).sort(), disks: (await recovery.client.listDisks()).map((d) => d.id).sort() });
  const usedBytes = async () => ((await admin(recovery, sites.token, '/admin/state', undefined, 'GET')).datastores as Array<{ name: string; usedBytes: number }>).find((d) => d.name === DATASTORE)!.usedBytes;

  it('fails with DatastoreFull naming the datastore, and the recovery site holds nothing of the domain afterwards', async (t) => {
    await waitFor(`${DOMAIN} recorded as Protected`, async () => (await readDomainStatus(store, DOMAIN))?.mode === 'Protected', 30_000);
    const before = await holdings();
    await admin(recovery, sites.token, `/admin/datastores/${DATASTORE}`, { capacityBytes: TOO_SMALL });

    const started = Date.now();
    const failed = await (await startFailover('datastore-full')).result().then(
      () => assert.fail('the failover into a full datastore succeeded'),
      (error: unknown) => error,
    );
    t.diagnostic(`failed and compensated in ${Math.round((Date.now() - started) / 1000)} s`);
    assert.ok(failed instanceof WorkflowFailedError, String(failed));
    const cause = failed.cause as ApplicationFailure;
    assert.equal(cause.type, OPERATION_ABORTED);
    const report = cause.details?.[0] as OperationReport;
    assert.equal(report.outcome, 'aborted');
    assert.match(report.failure!, /datastore "ds-b" at site recovery is full/);
    assert.equal(report.steps.find((s) => s.state === 'failed')?.name, 'rehydrate disks', 'it stopped at the first write that did not fit, without retrying');
    assert.deepEqual(report.compensation?.remains, []);

    assert.deepEqual(await holdings(), before, 'the recovery site holds what it held before, nothing of the domain');
    assert.equal(await usedBytes(), 0, 'the datastore holds nothing the failover wrote');
    assert.equal((await new Ownership(store, DOMAIN).inspect()).owner?.site, 'primary', 'the domain is back with the primary');
    for (const vm of domainVms(DOMAIN)) assert.equal((await primary.client.getVm(vm)).powerState, 'poweredOn', `${vm} runs at the primary again`);
  });

  it('fails over once space is freed: disks equal the primary\'s, each VM once, no RocVA left', async (t) => {
    await admin(recovery, sites.token, `/admin/datastores/${DATASTORE}`, { capacityBytes: 1024 ** 4 });
    await waitFor(`${DOMAIN} recorded as Protected again`, async () => (await readDomainStatus(store, DOMAIN))?.mode === 'Protected', 30_000);
    const started = Date.now();
    const report = await (await startFailover('after-space-freed')).result();
    t.diagnostic(`failed over in ${Math.round((Date.now() - started) / 1000)} s once space was freed`);
    assert.equal(report.outcome, 'succeeded');

    const vms = await recovery.client.listVms();
    assert.deepEqual(vms.filter((v) => v.kind !== 'vm').map((v) => v.name), [], 'no RocVA or representation VM is left');
    assert.deepEqual(vms.map((v) => v.name).sort(), domainVms(DOMAIN).sort(), 'each VM exactly once');
    for (const vm of vms) {
      for (const diskId of vm.diskIds) {
        const { sizeBytes, datastore } = await recovery.client.getDisk(diskId);
        assert.equal(datastore, DATASTORE);
        const [copy, original] = await Promise.all([recovery.client.readDisk(diskId, 0, sizeBytes), primary.client.readDisk(diskId, 0, sizeBytes)]);
        assert.ok(copy.equals(original), `${diskId} equals the primary's disk after its shutdown`);
      }
    }
  });
});
