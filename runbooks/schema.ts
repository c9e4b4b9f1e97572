/**
 * The runbook format: its shape and defaults. Meaning (references, cycles, addresses, inventory)
 * is checked in semantics.ts; everything here must be expressible in JSON Schema, because the
 * generated runbook.schema.json is what editors check against and it has to agree with this.
 */
import { z } from 'zod';
import { PROTECTION_DEFAULTS } from './protection-policy';
import { DURATION_PATTERN } from './units';

export const RUNBOOK_API_VERSION = 'dr.example.io/v1alpha1';
export const RUNBOOK_KIND = 'Runbook';

/** DNS-label names: they become object-store keys and workflow ids, so they stay conservative. */
const dnsLabel = (what: string) =>
  z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${what} must be lowercase letters, digits and "-", 1-63 characters, starting and ending with a letter or digit`);

/** Names of things in a hypervisor's inventory (VMs, networks, datastores) are freer than labels. */
const inventoryName = (what: string) =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,79}$/, `${what} must be 1-80 characters: letters, digits, space, . _ ( ) -, starting with a letter or digit`);

const duration = z.string().regex(new RegExp(DURATION_PATTERN), 'must be a duration such as "30s", "5m" or "1h30m" (units ms, s, m, h, d)');
const failurePolicy = z
  .enum(['abort', 'continue', 'pause'])
  .describe('abort: stop and compensate (destroy what the operation created); continue: record the failure and go on; pause: wait for an operator');
const ipText = z.string().max(45);

export const ReIpSchema = z.strictObject({
  address: ipText.describe('IPv4 or IPv6 address at the recovery site'),
  prefix: z.int().min(0).max(128).describe('network prefix length, e.g. 24'),
  gateway: ipText.optional().describe('default gateway, inside address/prefix'),
  dns: z.array(ipText).max(4).default([]).describe('DNS servers'),
});

export const VmSchema = z.strictObject({
  name: inventoryName('VM name').describe('a VM of the protected domain'),
  cpus: z.int().min(1).max(768).optional().describe('override of the vCPU count'),
  memoryMiB: z.int().min(4).max(24 * 1024 * 1024).optional().describe('override of the memory size in MiB'),
  storagePolicy: inventoryName('storage policy').optional(),
  datastore: inventoryName('datastore').optional().describe('override of spec.placement.datastore'),
  network: inventoryName('network').optional().describe('recovery network of the VM, overriding spec.networkMapping'),
  startupAction: z.enum(['poweredOn', 'poweredOff']).default('poweredOn').describe('poweredOff: register and reconfigure, leave off'),
  reIp: ReIpSchema.optional(),
  testIp: ReIpSchema.optional().describe('address of the first NIC in a drill, on its test network; default: the reIp address (or the recorded one)'),
});

export const ApprovalStepSchema = z.strictObject({
  name: dnsLabel('step name'),
  type: z.literal('approval'),
  approvers: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'approver must be a principal name')).min(1),
  message: z.string().max(2000).optional(),
  timeout: duration.default('1h'),
  onFailure: failurePolicy.default('pause').describe('what happens when nobody approves in time or an approver rejects'),
});

export const WebhookStepSchema = z.strictObject({
  name: dnsLabel('step name'),
  type: z.literal('webhook'),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
  url: z.string().max(2048).regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL'),
  headers: z
    .record(
      z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'header name must be letters, digits and "-"'),
      z.strictObject({ secret: dnsLabel('secret name').describe('name of a secret held by the orchestrator; its value is never written in a runbook') }),
    )
    .default({})
    .describe('header values come from named secrets only'),
  body: z.string().max(65536).optional(),
  expectedStatus: z.array(z.int().min(100).max(599)).min(1).max(20).default([200, 201, 202, 204]),
  timeout: duration.default('30s'),
  retries: z.int().min(0).max(10).default(3),
  onFailure: failurePolicy.default('abort'),
  runInDrill: z.boolean().default(false).describe('a drill calls this webhook too; by default a drill skips webhooks, which usually reach production systems (DNS, load balancers)'),
});

export const StepSchema = z.discriminatedUnion('type', [ApprovalStepSchema, WebhookStepSchema]);

export const GroupVmSchema = z.strictObject({
  name: inventoryName('VM name'),
  delayAfterPowerOn: duration.default('0s').describe('wait after this VM is powered on before it counts as started'),
  waitForHeartbeat: z.boolean().default(false).describe('wait for the guest tools heartbeat'),
  heartbeatTimeout: duration.default('5m'),
  onFailure: failurePolicy.optional().describe('defaults to the group\'s policy'),
});

export const GroupSchema = z.strictObject({
  name: dnsLabel('group name'),
  dependsOn: z.array(dnsLabel('group name')).default([]),
  vms: z.array(GroupVmSchema).min(1),
  maxParallel: z.int().min(1).max(1000).default(10).describe('VMs of this group powered on at the same time'),
  before: z.array(StepSchema).default([]).describe('steps run, in order, before the group\'s VMs start'),
  after: z.array(StepSchema).default([]).describe('steps run, in order, after all of the group\'s VMs started'),
  onFailure: failurePolicy.default('abort'),
});

export const PlacementSchema = z.strictObject({
  datacenter: inventoryName('datacenter'),
  cluster: inventoryName('cluster'),
  resourcePool: inventoryName('resource pool').optional(),
  datastore: inventoryName('datastore'),
});

const networkMappingEntries = z.array(z.strictObject({ source: inventoryName('network'), target: inventoryName('network') }));
const networkMapping = networkMappingEntries.default([]);

const checkTarget = {
  name: dnsLabel('check name'),
  vm: inventoryName('VM name').optional().describe('the VM probed; give vm or group'),
  group: dnsLabel('group name').optional().describe('every VM of this power-on group is probed; give vm or group'),
  timeout: duration.default('2m').describe('how long the probe is retried before the check fails'),
};

/**
 * What a drill verifies once the domain is up on its test networks: the guest heartbeats, a TCP
 * port accepts connections, or an HTTP endpoint answers with an expected status. A check passes
 * when every VM it names passes within its timeout; one failed check fails the drill.
 */
export const CheckSchema = z.discriminatedUnion('type', [
  z.strictObject({ ...checkTarget, type: z.literal('heartbeat') }),
  z.strictObject({ ...checkTarget, type: z.literal('tcp'), port: z.int().min(1).max(65535) }),
  z.strictObject({
    ...checkTarget,
    type: z.literal('http'),
    port: z.int().min(1).max(65535),
    path: z.string().max(2048).regex(/^\/[^\s]*$/, 'must be a path starting with "/"').default('/'),
    expectStatus: z.array(z.int().min(100).max(599)).min(1).max(20).default([200]),
  }),
]);

export const PowerOnPlanSchema = z.strictObject({
  maxParallel: z.int().min(1).max(1000).default(50).describe('VMs powered on at the same time across all groups'),
  groups: z.array(GroupSchema).min(1).max(1000),
});

/**
 * How the domain returns to its primary site. The recovery-site side of the runbook (placement,
 * mapping, re-IP) does not apply there: a VM still registered at the primary comes back as it is,
 * and one that is missing is rebuilt from the configuration the restore point records for it.
 */
export const FailbackSchema = z.strictObject({
  placement: PlacementSchema.optional().describe('where a VM missing at the primary is rebuilt; default: where it stood when the domain left the primary'),
  networkMapping: networkMapping.describe(
    'recovery-site network -> primary-site network, for VMs rebuilt at the primary and the RocVA of a full failback (default: the networks they had at the primary)',
  ),
  powerOn: PowerOnPlanSchema.optional().describe('the power-on plan at the primary; default: spec.powerOn'),
});

/**
 * Tiered retention of restore points, applied by each garbage collection run from the runbook's
 * latest version: per tier, every point (`every: all`) or the newest point of each `every` bucket
 * (aligned to UTC), for as long as the point is younger than `for`. Pinned points stay regardless.
 */
export const RetentionSchema = z.strictObject({
  tiers: z
    .array(
      z.strictObject({
        every: z.union([z.literal('all'), duration]).describe('"all": every point; a duration: the newest point of each such bucket (1h: clock hours, 1d: UTC days)'),
        for: duration.describe('the tier keeps a point while it is younger than this; at most spec.protection.protectionWindow'),
      }),
    )
    .min(1)
    .max(20),
  keepTested: z.boolean().default(false).describe('a point a drill tested is pinned automatically (kept until unpinned)'),
});

export const RunbookSchema = z.strictObject({
  apiVersion: z.literal(RUNBOOK_API_VERSION),
  kind: z.literal(RUNBOOK_KIND),
  metadata: z.strictObject({
    name: dnsLabel('runbook name'),
    labels: z
      .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, 'label key must be letters, digits, . _ / -'), z.string().max(63))
      .default({}),
    description: z.string().max(4000).optional(),
  }),
  spec: z.strictObject({
    protectedDomain: dnsLabel('protected domain name'),
    sites: z.strictObject({
      primary: dnsLabel('site name'),
      recovery: dnsLabel('site name')
        .optional()
        .describe('absent: the domain has no recovery site and is protected to the storage site only (as a permanent failover that names none leaves it)'),
    }),
    placement: PlacementSchema.optional().describe('where VMs are recovered at the recovery site; required with a recovery site'),
    networkMapping: networkMapping.describe('primary-site network -> recovery-site network'),
    vms: z.array(VmSchema).min(1).max(20000).describe('the VMs of the protected domain, with per-VM overrides'),
    rocva: z
      .strictObject({
        networks: z.strictObject({
          externalReplication: inventoryName('network'),
          internal: inventoryName('network'),
          management: inventoryName('network'),
        }),
      })
      .optional()
      .describe('the recovery appliance at the recovery site; required with a recovery site'),
    primaryShutdown: z
      .strictObject({
        timeout: duration.default('5m').describe('how long each guest may take to shut down in a planned failover'),
        onTimeout: z.enum(['powerOff', 'abort']).default('powerOff').describe('powerOff: hard power-off a guest that did not stop in time; abort: stop the failover and compensate'),
      })
      .default({ timeout: '5m', onTimeout: 'powerOff' })
      .describe('planned failover: VMs are shut down at the primary in reverse power-on order'),
    protection: z
      .strictObject({
        restorePointInterval: duration.default(PROTECTION_DEFAULTS.restorePointInterval),
        protectionWindow: duration.default(PROTECTION_DEFAULTS.protectionWindow).describe('how far back point-in-time recovery reaches'),
        retention: RetentionSchema.optional().describe('which restore points garbage collection keeps; absent: every point for the protection window'),
        rpoTarget: duration.optional().describe('the RPO the domain must keep (e.g. 30s): past it, dr_rpo_target_breached is 1 and the domain\'s status says so'),
      })
      .default(PROTECTION_DEFAULTS),
    powerOn: PowerOnPlanSchema,
    failback: FailbackSchema.optional().describe('failback to the primary site; without it the VMs keep the configuration recorded for them and spec.powerOn powers them on'),
    testNetworkMapping: networkMappingEntries
      .min(1)
      .optional()
      .describe('drills: recovery-site production network -> isolated test network; a runbook without it cannot be drilled'),
    checks: z.array(CheckSchema).max(1000).default([]).describe('drills: what decides pass or fail once the VMs are up'),
    postCleanup: z.array(WebhookStepSchema).max(20).default([]).describe('drills: webhooks called, in order, after the cleanup removed what the drill created'),
  }),
});

export type Runbook = z.output<typeof RunbookSchema>;
export type RunbookPowerOnPlan = Runbook['spec']['powerOn'];
export type RunbookGroup = RunbookPowerOnPlan['groups'][number];
export type RunbookStep = RunbookGroup['before'][number];
export type RunbookVm = Runbook['spec']['vms'][number];
export type FailurePolicy = RunbookGroup['onFailure'];
export type RunbookCheck = Runbook['spec']['checks'][number];
export type RunbookRetention = z.output<typeof RetentionSchema>;
export type RunbookWebhookStep = Extract<RunbookStep, { type: 'webhook' }>;
