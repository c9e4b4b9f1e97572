import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SiteDefinition } from '../../sites/config';
import { startSiteService, type SiteService } from '../../sites/launch';
import { freePort } from '../../stack/ports';
import { useFixture } from './stack';

export type SiteInput = Omit<SiteDefinition, 'port' | 'adminPort'> & Partial<Pick<SiteDefinition, 'port' | 'adminPort'>>;

/** A small primary with a protected domain `demo` (tiny disks) and an empty recovery site, for tests. */
export function testSiteDefinitions(): SiteInput[] {
  return [
    {
      name: 'primary',
      bootMs: 800,
      shutdownMs: 300,
      inventory: {
        datacenters: ['dc-a'],
        clusters: [{ name: 'cluster-a1', datacenter: 'dc-a' }],
        resourcePools: [{ name: 'prod', cluster: 'cluster-a1' }],
        datastores: [{ name: 'ds-a', capacityBytes: 1024 ** 4 }],
        networks: ['prod-db', 'prod-app', 'a-replication', 'a-management'],
        storagePolicies: ['gold'],
      },
      protectedDomains: [
        {
          name: 'demo',
          placement: { datacenter: 'dc-a', cluster: 'cluster-a1', resourcePool: 'prod', datastore: 'ds-a' },
          vms: [
            { name: 'db-1', cpus: 4, memoryMiB: 8192, network: 'prod-db', address: '10.10.1.10', diskMiB: [2, 1] },
            { name: 'app-1', cpus: 2, memoryMiB: 4096, network: 'prod-app', address: '10.10.2.21', diskMiB: [1] },
          ],
        },
      ],
    },
    {
      name: 'recovery',
      bootMs: 800,
      shutdownMs: 300,
      inventory: {
        datacenters: ['dc-b'],
        clusters: [{ name: 'cluster-b1', datacenter: 'dc-b' }],
        resourcePools: [{ name: 'dr-pool', cluster: 'cluster-b1' }],
        datastores: [{ name: 'ds-b', capacityBytes: 1024 ** 4 }, { name: 'ds-b-flash', capacityBytes: 1024 ** 4 }],
        networks: ['dr-db', 'dr-app', 'dr-replication', 'dr-rocva-internal', 'dr-management', 'test-db', 'test-app'],
        storagePolicies: ['gold'],
      },
      protectedDomains: [],
    },
  ];
}

export interface TestSites {
  sitesFile: string;
  token: string;
  /** Starts a site, or starts it again after a crash; `site(name)` is that process from then on. */
  start(name: string): Promise<SiteService>;
  /** A started site. */
  site(name: string): SiteService;
  /** Starts these sites, all at once. */
  startAll(names: string[]): Promise<SiteService[]>;
  /** Stops every started site. */
  stopAll(): Promise<void>;
}

/** Writes the definitions with free ports into `dir` and starts sites from them on demand. */
export async function prepareTestSites(dir: string, definitions: SiteInput[] = testSiteDefinitions()): Promise<TestSites> {
  const sites = await Promise.all(definitions.map(async (d) => ({ ...d, port: d.port ?? (await freePort()), adminPort: d.adminPort ?? (await freePort()) })));
  const sitesFile = path.join(dir, 'sites.json');
  const writeSites = () => writeFileSync(sitesFile, JSON.stringify({ sites }));
  writeSites();
  const token = randomBytes(16).toString('hex');
  const started = new Map<string, SiteService>();
  const everStarted = new Set<string>();
  const start = async (name: string): Promise<SiteService> => {
    const d = sites.find((s) => s.name === name);
    if (!d) throw new Error(`no test site ${name}`);
    const definition = definitions.find((s) => s.name === name)!;
    for (let attempt = 1; ; attempt++) {
      try {
        const service = await startSiteService({ site: name, dataDir: path.join(dir, name), logFile: path.join(dir, `${name}.log`), token, sitesFile, definitionPorts: { port: d.port, adminPort: d.adminPort } });
        started.set(name, service);
        everStarted.add(name);
        return service;
      } catch (error) {
        // Ports picked free are bound only now: a parallel test file may have taken one meanwhile.
        // Before anyone knows the site's address, it may move; a restarted site keeps its ports.
        const movable = !everStarted.has(name) && definition.port === undefined && definition.adminPort === undefined;
        if (!movable || attempt >= 3 || !/EADDRINUSE/.test((error as Error).message)) throw error;
        Object.assign(d, { port: await freePort(), adminPort: await freePort() });
        writeSites();
      }
    }
  };
  return {
    sitesFile,
    token,
    start,
    site: (name) => {
      const service = started.get(name);
      if (!service) throw new Error(`test site ${name} is not started`);
      return service;
    },
    startAll: async (names) => {
      // All of them settle before this answers, so that stopAll() finds every one that started.
      const results = await Promise.allSettled(names.map(start));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      return results.map((r) => (r as PromiseFulfilledResult<SiteService>).value);
    },
    stopAll: async () => {
      await Promise.all([...started.values()].map((service) => service.process.stop()));
      started.clear();
    },
  };
}

/** Test sites as the tests of a describe block see them; `primary` and `recovery` are the started processes of those names. */
export interface TestSitesFixture {
  /** Their folder: each site's data below `dir/<name>`. */
  dir: string;
  sites: TestSites;
  primary: SiteService;
  recovery: SiteService;
}

/** The test sites in a fresh folder, `start` of them running from before the first test of the describe block to after the last. */
export function useTestSites(options: { definitions?: SiteInput[]; start?: string[] } = {}): TestSitesFixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-sites-'));
  const stop = async (sites?: TestSites) => {
    await sites?.stopAll();
    rmSync(dir, { recursive: true, force: true });
  };
  const fixture = useFixture(
    'the test sites',
    async () => {
      let sites: TestSites | undefined;
      try {
        sites = await prepareTestSites(dir, options.definitions);
        await sites.startAll(options.start ?? ['primary', 'recovery']);
      } catch (error) {
        await stop(sites);
        throw error;
      }
      const started = sites;
      return {
        sites: started,
        get primary() {
          return started.site('primary');
        },
        get recovery() {
          return started.site('recovery');
        },
      };
    },
    ({ sites }) => stop(sites),
  );
  return { dir, sites: fixture.sites, primary: fixture.primary, recovery: fixture.recovery };
}

/** Staged disasters through the site's admin port. */
export async function admin(site: SiteService, token: string, path: string, body?: unknown, method = 'POST'): Promise<Record<string, unknown>> {
  const res = await fetch(`${site.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`admin ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}
