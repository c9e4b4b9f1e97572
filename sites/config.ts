import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { OperatorError } from '../common/errors';

const name = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a lowercase DNS label');
const port = z.int().min(1).max(65535);

const DomainVm = z.strictObject({
  name,
  cpus: z.int().min(1),
  memoryMiB: z.int().min(4),
  network: z.string().min(1),
  address: z.string().min(1),
  diskMiB: z.array(z.int().min(1).max(1024 * 1024)).min(1).max(8),
  /** What the simulated guest listens on once booted (`tcp:<port>` or `http:<port>`): a drill's checks probe these. */
  services: z.array(z.string().regex(/^(tcp|http):\d{1,5}$/, 'must be tcp:<port> or http:<port>')).optional(),
});

export const SiteDefinitionSchema = z.strictObject({
  name,
  port,
  adminPort: port,
  bootMs: z.int().min(0).default(4000),
  shutdownMs: z.int().min(0).default(2000),
  /**
   * Site worker processes the embedded stack runs for this site (DR virtual appliances): they poll
   * the site's one task queue, so they share its operations' activities and its domains' replicators.
   * Default 1.
   */
  workers: z.int().min(1).max(16).optional(),
  inventory: z.strictObject({
    datacenters: z.array(z.string().min(1)).min(1),
    clusters: z.array(z.strictObject({ name: z.string().min(1), datacenter: z.string().min(1) })).min(1),
    resourcePools: z.array(z.strictObject({ name: z.string().min(1), cluster: z.string().min(1) })).default([]),
    datastores: z.array(z.strictObject({ name: z.string().min(1), capacityBytes: z.int().min(1) })).min(1),
    networks: z.array(z.string().min(1)).min(1),
    storagePolicies: z.array(z.string().min(1)).default([]),
  }),
  protectedDomains: z
    .array(
      z.strictObject({
        name,
        placement: z.strictObject({ datacenter: z.string(), cluster: z.string(), resourcePool: z.string().optional(), datastore: z.string() }),
        vms: z.array(DomainVm).min(1),
      }),
    )
    .default([]),
  workload: z
    .strictObject({
      writesPerSecond: z.number().positive().max(100_000),
      blockSize: z.int().min(512).max(1024 * 1024),
      pattern: z.enum(['sequential', 'random', 'hotspot']),
      seed: z.string().min(1),
      /** Only these VMs; default every running VM with a protected disk (so also domains recovered here). */
      vms: z.array(name).optional(),
    })
    .optional(),
});

export type SiteDefinition = z.output<typeof SiteDefinitionSchema>;

export const DEFAULT_SITES_FILE = path.join(__dirname, 'sites.json');

/** The sites of the embedded stack (DR_SITES_FILE, default sites/sites.json), validated with locations. */
export function loadSiteDefinitions(file = process.env.DR_SITES_FILE ?? DEFAULT_SITES_FILE): SiteDefinition[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new OperatorError(`cannot read site definitions ${file}: ${(error as Error).message}`);
  }
  const parsed = z.strictObject({ sites: z.array(SiteDefinitionSchema).min(1) }).safeParse(raw);
  if (!parsed.success) throw new OperatorError(`site definitions ${file} are invalid:\n${z.prettifyError(parsed.error)}`);
  const names = parsed.data.sites.map((s) => s.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new OperatorError(`site definitions ${file}: site "${duplicate}" is defined twice`);
  return parsed.data.sites;
}

/** Disk ids of a protected domain's VMs, as the primary site creates them: `<vm>-disk-<n>`. */
export function diskIdOf(vm: string, index: number): string {
  return `${vm}-disk-${index}`;
}
