/**
 * What the failback tests check at the two sites: the disks of a domain's VMs with their bytes,
 * what a site holds, and that a domain is back on its original VMs at the primary.
 */
import assert from 'node:assert/strict';
import { readDomainStatus } from '../../datapath/domain-status';
import type { ObjectStore } from '../../datapath/object-store';
import type { SiteService } from '../../sites/launch';
import type { Client } from '@temporalio/client';
import type { Runbook } from '../../runbooks/schema';
import { validateRunbook } from '../../runbooks/validate';
import { failover } from '../../workflows/failover';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { domainVms, protectAtPrimary, runbookYaml } from '../fixtures/failover-domains';
import { failedRuns } from './crashes';

/** Every disk of the named workload VMs at a site, by id, with all its bytes. */
export async function disksOfVms(site: SiteService, vms: readonly string[]): Promise<Map<string, Buffer>> {
  const disks = new Map<string, Buffer>();
  for (const vm of await site.client.listVms()) {
    if (!vms.includes(vm.name) || vm.kind !== 'vm') continue;
    for (const id of vm.diskIds) disks.set(id, await site.client.readDisk(id, 0, (await site.client.getDisk(id)).sizeBytes));
  }
  return disks;
}

/** Every disk of a test domain's VMs at a site (`domainVms`), by id, with all its bytes. */
export function disksOf(site: SiteService, domain: string): Promise<Map<string, Buffer>> {
  return disksOfVms(site, domainVms(domain));
}

/**
 * The disks that exist at a site, attached or not: every disk its event history says was created
 * and not deleted since (the site API lists VMs, not disks, and a disk left behind by an
 * operation may be attached to nothing).
 */
export async function disksAtSite(site: SiteService): Promise<string[]> {
  const live = new Set<string>();
  for (const event of await site.client.events()) {
    const disk = event.detail?.disk;
    if (typeof disk !== 'string') continue;
    if (event.type === 'DiskCreated') live.add(disk);
    if (event.type === 'DiskDeleted') live.delete(disk);
  }
  return [...live].sort();
}

export interface FailbackSites {
  primary: SiteService;
  recovery: SiteService;
  store: ObjectStore;
}

/**
 * After a failback of `domain` (VMs `vms`): its original VMs run at the primary, each exactly
 * once, with disks equal to `expected` (the recovery site's disks after its last write); the
 * recovery site holds no VM and no disk of it; the domain is Protected, running at the primary.
 */
export async function assertBackAtPrimary({ primary, recovery, store }: FailbackSites, domain: string, vms: readonly string[], expected: Map<string, Buffer>): Promise<void> {
  const atPrimary = await disksOfVms(primary, vms);
  assert.deepEqual([...atPrimary.keys()].sort(), [...expected.keys()].sort(), `${domain}'s disks at the primary`);
  for (const [id, content] of expected) assert.ok(atPrimary.get(id)!.equals(content), `${id} at the primary equals the recovery site's disk after its last write`);
  const running = (await primary.client.listVms()).filter((vm) => vms.includes(vm.name));
  assert.deepEqual(running.map((vm) => `${vm.name}:${vm.kind}:${vm.powerState}`).sort(), [...vms].sort().map((vm) => `${vm}:vm:poweredOn`), `${domain}'s original VMs run again, each once`);
  const left = (await recovery.client.listVms()).filter((vm) => vms.some((name) => vm.name.includes(name)));
  assert.deepEqual(left.map((vm) => vm.name), [], `the recovery site holds no VM of ${domain}`);
  const disksLeft = (await disksAtSite(recovery)).filter((id) => expected.has(id));
  assert.deepEqual(disksLeft, [], `the recovery site holds no disk of ${domain}`);
  const status = await readDomainStatus(store, domain);
  assert.equal(status?.mode, 'Protected', `${domain}'s mode`);
  assert.equal(status?.runningAt, 'primary', `where ${domain} runs`);
}

/**
 * The start of a failback crash test: each domain protected at the primary (one at a time: ten
 * initial syncs at once can outlast the wait for each on a loaded machine), then failed over
 * (planned) all at once, with no kills: the failovers are not under test. Returns each domain's runbook.
 */
export async function protectAndFailOver(client: Client, domains: string[], label: string): Promise<Map<string, Runbook>> {
  const runbooks = new Map<string, Runbook>();
  for (const domain of domains) await protectAtPrimary(client, domain);
  for (const domain of domains) {
    const checked = validateRunbook(runbookYaml(domain, {}));
    assert.ok(checked.runbook, JSON.stringify(checked.errors));
    runbooks.set(domain, checked.runbook);
  }
  const failovers = await Promise.allSettled(
    domains.map((domain) =>
      client.workflow.execute(failover, {
        taskQueue: ORCHESTRATION_TASK_QUEUE,
        workflowId: `failover/${domain}/before-${label}`,
        args: [{ domain, type: 'planned', runbook: runbooks.get(domain)!, runbookVersion: 1, requestedBy: 'crash-test', declaredAt: Date.now() }],
      }),
    ),
  );
  assert.deepEqual(failedRuns(failovers, domains), []);
  return runbooks;
}
