/**
 * A generated domain of any size (default 10,000 VMs) in four dependent tiers, for benchmarks
 * and scale tests: `npx tsx runbooks/examples/large-domain.ts [vmCount] > large.yaml`.
 */
import type { SiteInventory } from '../inventory';

export const LARGE_DOMAIN_INVENTORY: SiteInventory = {
  datacenters: ['dc-b'],
  clusters: ['cluster-b1'],
  resourcePools: ['dr-pool'],
  datastores: ['ds-b-ssd', 'ds-b-flash'],
  networks: ['dr-app', 'dr-replication', 'dr-rocva-internal', 'dr-management'],
  storagePolicies: ['gold-mirrored', 'silver'],
};

const TIERS = [
  { name: 'infra', share: 0.02, heartbeat: true, delay: '30s' },
  { name: 'database', share: 0.1, heartbeat: true, delay: '1m' },
  { name: 'app', share: 0.4, heartbeat: true, delay: '0s' },
  { name: 'web', share: 0.48, heartbeat: false, delay: '5s' },
];

const vmName = (i: number) => `vm-${String(i).padStart(5, '0')}`;
/** Hosts of 10.64.0.0/16 from .0.10 upwards: unique, never the network, broadcast or gateway address. */
const vmAddress = (i: number) => `10.64.${(i + 10) >> 8}.${(i + 10) & 255}`;

export function generateLargeDomainRunbook(vmCount = 10_000): string {
  if (!Number.isInteger(vmCount) || vmCount < TIERS.length) throw new RangeError(`a generated domain needs at least ${TIERS.length} VMs, one per tier`);
  const lines = [
    'apiVersion: dr.example.io/v1alpha1',
    'kind: Runbook',
    'metadata:',
    `  name: large-domain-${vmCount}`,
    '  labels: { generated: "true" }',
    'spec:',
    '  protectedDomain: large',
    '  sites: { primary: site-a, recovery: site-b }',
    '  placement: { datacenter: dc-b, cluster: cluster-b1, resourcePool: dr-pool, datastore: ds-b-ssd }',
    '  networkMapping:',
    '    - { source: prod-app, target: dr-app }',
    '  rocva:',
    '    networks: { externalReplication: dr-replication, internal: dr-rocva-internal, management: dr-management }',
    '  vms:',
  ];
  for (let i = 0; i < vmCount; i++) {
    lines.push(`    - { name: ${vmName(i)}, storagePolicy: silver, reIp: { address: ${vmAddress(i)}, prefix: 16, gateway: 10.64.0.1 } }`);
  }
  lines.push('  powerOn:', '    maxParallel: 100', '    groups:');
  let next = 0;
  TIERS.forEach((tier, t) => {
    // Every tier keeps at least one VM and leaves at least one for each tier after it.
    const count = t === TIERS.length - 1 ? vmCount - next : Math.min(Math.max(1, Math.floor(vmCount * tier.share)), vmCount - next - (TIERS.length - 1 - t));
    lines.push(`      - name: ${tier.name}`);
    if (t > 0) lines.push(`        dependsOn: [${TIERS[t - 1].name}]`);
    if (tier.name === 'app') {
      lines.push('        before:', '          - { name: approve-app, type: approval, approvers: [dr-lead], timeout: 30m }');
    }
    if (tier.name === 'web') {
      lines.push(
        '        after:',
        '          - { name: update-dns, type: webhook, url: "https://dns.example.com/api/switch", headers: { Authorization: { secret: dns-api-token } }, onFailure: continue }',
      );
    }
    lines.push('        maxParallel: 50', '        vms:');
    for (let i = next; i < next + count; i++) {
      lines.push(`          - { name: ${vmName(i)}, delayAfterPowerOn: ${tier.delay}${tier.heartbeat ? ', waitForHeartbeat: true' : ''} }`);
    }
    next += count;
  });
  return `${lines.join('\n')}\n`;
}

if (require.main === module) process.stdout.write(generateLargeDomainRunbook(Number(process.argv[2] ?? 10_000)));
