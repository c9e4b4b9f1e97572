import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import type { OperationReport } from '../../workflows/operation-messages';
import { apiCalls } from '../harness/api-calls';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { disksOf } from '../harness/failback';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DOMAIN = 'foxtrot';
/** The VM deleted at the primary while the domain runs in failover; f-db-1 stays. */
const DELETED = 'f-app-1';

/**
 * The runbook maps the recovery site's app network and the RocVA's networks back to the primary's,
 * and says nothing of placement there: the deleted VM goes where the domain's departure recorded it.
 */
const RUNBOOK = `${runbookYaml(DOMAIN, {})}  failback:
    networkMapping:
      - { source: dr-app, target: prod-app }
      - { source: dr-replication, target: a-replication }
      - { source: dr-management, target: a-management }
`;

describe('failback end to end onto a primary that lost a VM, on real Temporal, S3, sites and worker processes: the VM is rebuilt there', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, recovery, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'failback-rebuild-e2e' });
    await protectAtPrimary(stack.client, DOMAIN);
    await submitRunbook(RUNBOOK);
  });

  it('forced failover, the VM deleted at the primary with its disks, planned failback: it runs there again as it was, its disks equal to the recovery site\'s last write', async () => {
    await waitFor(`${DOMAIN} recorded as Protected`, async () => (await readDomainStatus(store, DOMAIN))?.mode === 'Protected', 30_000);
    const original = await primary.client.getVm(DELETED);
    // The primary's VMs go down with it (nothing runs there to conflict with the recovery site's copies).
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    for (const vm of domainVms(DOMAIN)) await primary.client.powerOff(vm);
    const failover = await call('POST', `/domains/${DOMAIN}/failover`, { type: 'forced', confirm: DOMAIN });
    assert.equal(failover.status, 202, JSON.stringify(failover.body));
    const failedOver = await operationResult(String(failover.body.workflowId));
    assert.equal(failedOver.status, 'COMPLETED', JSON.stringify(failedOver.result));

    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'failback-rebuild-at-recovery' });
    await sleep(3_000);
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    const expected = await disksOf(recovery, DOMAIN);
    await primary.client.unregisterVm(DELETED, { deleteDisks: true });
    for (const id of original.diskIds) await assert.rejects(primary.client.getDisk(id), /DiskNotFound|does not exist|not found/i);

    const started = await call('POST', `/domains/${DOMAIN}/failback`, { type: 'planned' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { status, result } = await operationResult(String(started.body.workflowId));
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;

    assert.deepEqual(report.rebuilt, [{ vm: DELETED, placement: original.placement, networks: ['prod-app'], diskIds: original.diskIds }], 'the report names the rebuilt VM, where it went and on which network');
    assert.equal(report.rehydration?.kind, 'full', JSON.stringify(report.rehydration));
    assert.match(report.rehydration.why ?? '', new RegExp(`${DELETED} rebuilt at primary on new disks`));

    const atPrimary = await disksOf(primary, DOMAIN);
    assert.deepEqual([...atPrimary.keys()].sort(), [...expected.keys()].sort());
    for (const [id, content] of expected) assert.ok(atPrimary.get(id)!.equals(content), `${id} at the primary equals the recovery site's disk after its last write`);
    const rebuilt = await primary.client.getVm(DELETED);
    assert.equal(rebuilt.kind, 'vm');
    assert.deepEqual(rebuilt.placement, original.placement, 'placed where the domain left it');
    assert.deepEqual(rebuilt.nics, original.nics, 'on the network it had, mapped back from the recovery site, with the address it had at the primary');
    assert.deepEqual([rebuilt.cpus, rebuilt.memoryMiB, rebuilt.diskIds], [original.cpus, original.memoryMiB, original.diskIds]);
    const vms = (await primary.client.listVms()).filter((vm) => domainVms(DOMAIN).some((name) => vm.name.includes(name)) || vm.kind !== 'vm');
    assert.deepEqual(vms.map((vm) => `${vm.name}:${vm.kind}:${vm.powerState}`).sort(), domainVms(DOMAIN).sort().map((vm) => `${vm}:vm:poweredOn`), 'every VM runs at the primary; no representation VM or RocVA is left');
    for (const id of original.diskIds) assert.equal((await primary.client.getDisk(id)).protected, true, `${id} is journaled again`);
    assert.deepEqual((await recovery.client.listVms()).filter((vm) => domainVms(DOMAIN).some((name) => vm.name.includes(name))).map((vm) => vm.name), [], 'the recovery site holds no VM of the domain');
    const domainStatus = await readDomainStatus(store, DOMAIN);
    assert.equal(domainStatus?.mode, 'Protected');
    assert.equal(domainStatus?.runningAt, 'primary');
  });
});
