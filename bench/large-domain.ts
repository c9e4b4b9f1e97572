/**
 * The generated large domain the failover benchmarks recover, shared so that they measure the same
 * thing: a primary running `vms` VMs (one 1 MiB disk each) protected as `domain`, an empty recovery
 * site with the large-domain runbook's inventory, both with zero boot and shutdown latency, and the
 * four-tier runbook of runbooks/examples/large-domain.ts for them without heartbeat waits, delays,
 * approvals or webhooks (they would measure the waits, not the orchestration).
 */
import type { Client } from '@temporalio/client';
import { DomainKeys } from '../datapath/keys';
import type { ObjectStore } from '../datapath/object-store';
import { Ownership } from '../datapath/ownership';
import { LARGE_DOMAIN_INVENTORY, generateLargeDomainRunbook } from '../runbooks/examples/large-domain';
import type { Runbook } from '../runbooks/schema';
import { validateRunbook } from '../runbooks/validate';
import type { SiteDefinition } from '../sites/config';
import { protect, protectStatusQuery } from '../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../workflows/task-queues';
import { protectionWorkflowId } from '../workflows/workflow-ids';
import { waitFor } from './measure';

export const DISK_MIB = 1;

export interface BenchDomain {
  domain: string;
  primary: string;
  recovery: string;
  vms: number;
  /** Names the VMs `<vmPrefix>-00000`, …: domains sharing a site need names of their own (default `vm`, the generated runbook's). */
  vmPrefix?: string;
}

/** `count` domains `<label>-<n>` of `vmsEach` VMs each, from site-a to site-b, their VMs named apart: many small domains on one pair of sites. */
export const smallDomains = (label: string, count: number, vmsEach: number): BenchDomain[] =>
  Array.from({ length: count }, (_, d) => ({ domain: `${label}-${d}`, primary: 'site-a', recovery: 'site-b', vms: vmsEach, vmPrefix: `d${d}` }));

type SiteInput = Omit<SiteDefinition, 'port' | 'adminPort'>;
export const vmName = (i: number, prefix = 'vm') => `${prefix}-${String(i).padStart(5, '0')}`;

/** The sites of one bench domain, or of several that share their primary and recovery sites (the first one's). */
export function siteDefinitions(benchDomains: BenchDomain | BenchDomain[]): SiteInput[] {
  const domains = Array.isArray(benchDomains) ? benchDomains : [benchDomains];
  const { primary, recovery } = domains[0];
  const inv = LARGE_DOMAIN_INVENTORY;
  return [
    {
      name: primary,
      bootMs: 0,
      shutdownMs: 0,
      inventory: {
        datacenters: ['dc-a'],
        clusters: [{ name: 'cluster-a1', datacenter: 'dc-a' }],
        resourcePools: [{ name: 'prod', cluster: 'cluster-a1' }],
        datastores: [{ name: 'ds-a', capacityBytes: 1024 ** 4 }],
        networks: ['prod-app'],
        storagePolicies: ['silver'],
      },
      protectedDomains: domains.map(({ domain, vms, vmPrefix }) => ({
          name: domain,
          placement: { datacenter: 'dc-a', cluster: 'cluster-a1', resourcePool: 'prod', datastore: 'ds-a' },
          vms: Array.from({ length: vms }, (_, i) => ({
            name: vmName(i, vmPrefix),
            cpus: 2,
            memoryMiB: 4096,
            network: 'prod-app',
            address: `10.32.${(i + 10) >> 8}.${(i + 10) & 255}`,
            diskMiB: [DISK_MIB],
          })),
        })),
    },
    {
      name: recovery,
      bootMs: 0,
      shutdownMs: 0,
      inventory: {
        datacenters: inv.datacenters,
        clusters: inv.clusters.map((name) => ({ name, datacenter: inv.datacenters[0] })),
        resourcePools: inv.resourcePools.map((name) => ({ name, cluster: inv.clusters[0] })),
        datastores: inv.datastores.map((name) => ({ name, capacityBytes: 1024 ** 4 })),
        networks: inv.networks,
        storagePolicies: inv.storagePolicies,
      },
      protectedDomains: [],
    },
  ];
}

/** The generated four-tier runbook, for these sites and this domain, without heartbeat waits, delays, approvals or webhooks. */
export function benchRunbook({ domain, primary, recovery, vms, vmPrefix }: BenchDomain): Runbook {
  const text = generateLargeDomainRunbook(vms)
    .replace('sites: { primary: site-a, recovery: site-b }', `sites: { primary: ${primary}, recovery: ${recovery} }`)
    .replace('protectedDomain: large', `protectedDomain: ${domain}`)
    .replace(/\bvm-(\d{5})\b/g, (_, n: string) => vmName(Number(n), vmPrefix));
  const validated = validateRunbook(text, { inventory: LARGE_DOMAIN_INVENTORY });
  if (!validated.runbook) throw new Error(`the generated runbook is invalid: ${JSON.stringify(validated.errors.slice(0, 3))}`);
  const runbook = validated.runbook;
  if (runbook.spec.protectedDomain !== domain) throw new Error(`the generated runbook protects ${runbook.spec.protectedDomain}, not ${domain}`);
  for (const group of runbook.spec.powerOn.groups) {
    group.before = [];
    group.after = [];
    for (const vm of group.vms) {
      vm.delayAfterPowerOn = '0s';
      vm.waitForHeartbeat = false;
    }
  }
  return runbook;
}

/**
 * Protection at the primary, as a domain is before its disaster: claimed (epoch 1), manifest
 * recorded, initial sync committed (a base) and the replicator running. Returns the workflow id.
 */
export async function protectUntilReplicating(client: Client, store: ObjectStore, { domain, primary }: BenchDomain, vms: string[], timeoutMs = 180_000): Promise<string> {
  const protectionId = protectionWorkflowId(domain, primary, 1);
  const handle = await client.workflow.start(protect, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: protectionId,
    args: [{ domain, site: primary, vms, protectionWindowMs: 3_600_000, restorePointIntervalMs: 60_000, replicatorRunMs: 1_000 }],
  });
  await waitFor(
    `${domain} claimed and replicating`,
    async () => {
      const status = await handle.query(protectStatusQuery).catch(() => undefined);
      if (!status || status.epoch !== 1 || status.mode !== 'log' || status.base === undefined) return false;
      const owner = (await new Ownership(store, domain).inspect()).owner?.site;
      return owner === primary && (await store.get(new DomainKeys(store.prefix, domain).manifest())) !== undefined;
    },
    timeoutMs,
  );
  return protectionId;
}
