/**
 * Stub sites for the fast workflow tier: every activity a site worker offers (the same names and
 * types as worker/site-activities.ts), working on a small in-memory model of the two sites and of
 * the storage site's ownership records instead of real servers. Every call is recorded (site,
 * activity, arguments, calling workflow, how it ended), and a test can intercept the calls of its
 * own domain to fail or hold any of them.
 *
 * Each test uses a domain of its own: calls are told apart by the calling workflow's id, whose
 * second segment is the domain (`failover/<domain>/...`, `protect/<domain>/...`, `domain/<domain>`).
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { DepartureRecord, DomainDisk, RestorePoint, VmMetadata } from '../../datapath/records';
import type { DomainStatus } from '../../datapath/domain-status';
import type { PermanentFailoverRecord } from '../../datapath/permanent-failover';
import { membersDigest } from '../../datapath/membership';
import type { VmKind } from '../../sites/provider';
import { isDrillResourceName, representationVmName } from '../../common/resource-names';
import type { SplitBrainActivities } from '../../activities/split-brain';
import {
  checkBatchActivities,
  drillRemovalBatchActivities,
  vmPowerBatchActivities,
  rebuildBatchActivities,
  type CheckBatchActivities,
  type DrillRemovalBatchActivities,
  type VmPowerBatchActivities,
  type PerVmRebuildActivities,
  type RebuildBatchActivities,
} from '../../activities/vm-batches';
import type { createSiteActivities } from '../../worker/site-activities';

/** Every activity of a site worker, by name: the stub must offer each one the product's worker offers. */
// Split-brain needs a site that returns after being fenced: only the end-to-end tests stage one.
export type SiteActivities = Omit<ReturnType<typeof createSiteActivities>, keyof SplitBrainActivities>;
export type ActivityName = keyof SiteActivities;

export interface StubCall {
  seq: number;
  site: string;
  name: ActivityName;
  args: unknown[];
  workflowId: string;
  domain: string;
  attempt: number;
  /** How the call ended; undefined while it runs. */
  ended?: 'ok' | 'failed' | 'cancelled';
  result?: unknown;
  error?: string;
}

/**
 * Sees each call of a domain before the stub does: return `proceed()` to let the stub act, throw
 * to fail the call, or hold it (e.g. `holdUntilCancelled`).
 */
export type Interceptor = (call: StubCall, proceed: () => Promise<unknown>) => Promise<unknown>;

export interface StubVm {
  kind: VmKind;
  powerState: 'poweredOn' | 'poweredOff';
  diskIds: string[];
}

export interface StubSiteState {
  vms: Map<string, StubVm>;
  disks: Map<string, number>;
  rocvas: Set<string>;
}

export interface StubDomain {
  name: string;
  primary: string;
  recovery: string;
  vms: VmMetadata[];
  disks: DomainDisk[];
  epoch: number;
  owner?: string;
  status?: DomainStatus;
  /** The permanent failover that made the recovery site the domain's primary, once recorded. */
  permanentFailover?: PermanentFailoverRecord;
  /** The latest departure recorded from each site (by a failover or a failback): a later return to that site may take a delta. */
  departures: Record<string, DepartureRecord>;
}

const DISK_BYTES = 1024 * 1024;

/** The domain of a workflow id (`<kind>/<domain>/...`). */
export function domainOfWorkflow(workflowId: string): string {
  return workflowId.split('/')[1] ?? '';
}

function notFound(what: string, type: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${what} does not exist`, type);
}

/** Holds a call until its activity is cancelled, heartbeating so that the cancellation arrives. */
export async function holdUntilCancelled(): Promise<never> {
  const context = Context.current();
  for (;;) {
    context.heartbeat();
    // Context.sleep rejects with a CancelledFailure once the cancellation arrives.
    await context.sleep(100);
  }
}

export class StubSites {
  readonly calls: StubCall[] = [];
  private readonly state = new Map<string, StubSiteState>();
  private readonly domains = new Map<string, StubDomain>();
  private readonly interceptors = new Map<string, Interceptor>();
  private readonly silentGuests = new Set<string>();
  private readonly refusedServices: Array<{ vm: string; port: number }> = [];
  private seq = 0;
  /** The runbook store: each runbook's versions, oldest first. */
  private readonly runbooks = new Map<string, Array<{ version: number; text: string; submittedBy: string }>>();

  constructor(readonly siteNames: string[]) {
    for (const site of siteNames) this.state.set(site, { vms: new Map(), disks: new Map(), rocvas: new Set() });
  }

  site(name: string): StubSiteState {
    const site = this.state.get(name);
    if (!site) throw new Error(`no stub site ${name}`);
    return site;
  }

  domain(name: string): StubDomain {
    const domain = this.domains.get(name);
    if (!domain) throw new Error(`no stub domain ${name}`);
    return domain;
  }

  /**
   * A protected domain: its VMs run at `primary`, each with one disk, and `primary` owns it in
   * epoch 1. VM names are `<domain>-<name>`, so that no two tests' VMs meet at a site.
   */
  addDomain(name: string, vmNames: string[], sites = { primary: 'primary', recovery: 'recovery' }): StubDomain {
    const vms: VmMetadata[] = vmNames.map((vm) => ({
      name: vm,
      cpus: 2,
      memoryMiB: 4096,
      diskIds: [`${vm}-disk-0`],
      nics: [{ network: vm.includes('-db-') ? 'prod-db' : 'prod-app', ip: { address: '10.10.1.10', prefix: 24, dns: [] } }],
      metadata: { owner: name },
      placement: { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' },
    }));
    const primary = this.site(sites.primary);
    for (const vm of vms) {
      primary.vms.set(vm.name, { kind: 'vm', powerState: 'poweredOn', diskIds: vm.diskIds });
      for (const id of vm.diskIds) primary.disks.set(id, DISK_BYTES);
    }
    const domain: StubDomain = {
      name,
      ...sites,
      vms,
      disks: vms.flatMap((vm) => vm.diskIds.map((diskId) => ({ vm: vm.name, diskId, sizeBytes: DISK_BYTES }))),
      epoch: 1,
      owner: sites.primary,
      departures: {},
    };
    this.domains.set(name, domain);
    return domain;
  }

  /** The versions of a stored runbook, oldest first (the fast tier's runbook store). */
  runbookVersions(name: string): Array<{ version: number; text: string; submittedBy: string }> {
    let versions = this.runbooks.get(name);
    if (!versions) this.runbooks.set(name, (versions = []));
    return versions;
  }

  /** Stores a runbook version, or finds the one this submitter stored with this text; its number. */
  private submitRunbook(name: string, text: string, submittedBy: string): number {
    const versions = this.runbookVersions(name);
    const earlier = versions.find((v) => v.submittedBy === submittedBy && v.text === text);
    if (earlier) return earlier.version;
    versions.push({ version: versions.length + 1, text, submittedBy });
    return versions.length;
  }

  /** Registered, powered-off VMs at a site (what a power-on operation starts). */
  placeVms(site: string, names: string[]): void {
    for (const name of names) this.site(site).vms.set(name, { kind: 'vm', powerState: 'poweredOff', diskIds: [] });
  }

  /** The VM's guest never answers a heartbeat poll, at any site. */
  silenceGuest(vm: string): void {
    this.silentGuests.add(vm);
  }

  /** The guest of every VM whose name ends with `vm` (a drill's copy of it too) refuses connections to `port`. */
  refuseService(vm: string, port: number): void {
    this.refusedServices.push({ vm, port });
  }

  /** Every name a site holds (VMs, appliances, disks), as a drill's inventory comparison sees it. */
  namesAt(site: string): { vms: string[]; disks: string[] } {
    const s = this.site(site);
    return { vms: [...s.vms.keys(), ...s.rocvas].sort(), disks: [...s.disks.keys()].sort() };
  }

  /** Routes every call of `domain` through `interceptor` (one per domain; a later one replaces it). */
  intercept(domain: string, interceptor: Interceptor): void {
    this.interceptors.set(domain, interceptor);
  }

  callsOf(domain: string): StubCall[] {
    return this.calls.filter((c) => c.domain === domain);
  }

  /** What a site holds of a domain: its VMs (by `<domain>-` prefix, representation VMs included), disks and RocVAs. */
  inventoryOf(site: string, domain: string): { vms: Array<[string, StubVm]>; disks: string[]; rocvas: string[] } {
    const s = this.site(site);
    const mine = (name: string) => name.startsWith(`${domain}-`) || name.startsWith(representationVmName(`${domain}-`)) || name.startsWith(`rocva-${domain}-`);
    return {
      vms: [...s.vms].filter(([name]) => mine(name)).sort(([a], [b]) => a.localeCompare(b)),
      disks: [...s.disks.keys()].filter(mine).sort(),
      rocvas: [...s.rocvas].filter(mine).sort(),
    };
  }

  /** The activities of one site, each recording its calls and passing them through the domain's interceptor. */
  activitiesFor(site: string): SiteActivities {
    const wrapped = {} as Record<ActivityName, (...args: unknown[]) => Promise<unknown>>;
    // A batch activity is the product's, over the recorded per-VM calls: a test sees (and can fail or hold) each VM's call.
    const perVm = this.implementation(site);
    const each = wrapped as unknown as SiteActivities;
    const impl = { ...perVm, ...rebuildBatchActivities(wrapped as unknown as PerVmRebuildActivities), ...drillRemovalBatchActivities(each), ...vmPowerBatchActivities(each), ...checkBatchActivities(each) } as unknown as Record<ActivityName, (...args: unknown[]) => Promise<unknown>>;
    for (const name of Object.keys(impl) as ActivityName[]) {
      const run = impl[name];
      wrapped[name] = async (...args: unknown[]) => {
        const info = Context.current().info;
        const workflowId = info.workflowExecution?.workflowId ?? '';
        const call: StubCall = { seq: ++this.seq, site, name, args, workflowId, domain: domainOfWorkflow(workflowId), attempt: info.attempt };
        this.calls.push(call);
        const interceptor = this.interceptors.get(call.domain);
        try {
          const result = interceptor ? await interceptor(call, () => run(...args)) : await run(...args);
          call.ended = 'ok';
          call.result = result;
          return result;
        } catch (error) {
          call.ended = error instanceof CancelledFailure ? 'cancelled' : 'failed';
          call.error = error instanceof Error ? error.message : String(error);
          throw error;
        }
      };
    }
    return wrapped as unknown as SiteActivities;
  }

  private implementation(siteName: string): Omit<SiteActivities, keyof RebuildBatchActivities | keyof DrillRemovalBatchActivities | keyof VmPowerBatchActivities | keyof CheckBatchActivities> {
    const site = this.site(siteName);
    const vm = (name: string): StubVm => {
      const found = site.vms.get(name);
      if (!found) throw notFound(`VM ${name} at ${siteName}`, 'VmNotFound');
      return found;
    };
    const domainOf = (name: string): StubDomain => {
      const found = this.domains.get(name);
      if (!found) throw ApplicationFailure.nonRetryable(`domain ${name} has no manifest`, 'NoManifest');
      return found;
    };
    const metadataOf = (domain: StubDomain) => domain.vms.map((v) => ({ ...v, diskIds: [...v.diskIds], nics: v.nics.map((n) => ({ ...n })), ...(v.placement ? { placement: { ...v.placement } } : {}) }));
    const restorePoint = (domain: StubDomain, reason: RestorePoint['reason']): RestorePoint => ({
      formatVersion: 1,
      id: `${String(domain.epoch).padStart(10, '0')}-${String(Date.now()).padStart(16, '0')}-0`,
      domain: domain.name,
      position: { epoch: domain.epoch, segment: 0, entries: 0 },
      lastJournalSequence: 0,
      timestamp: Date.now(),
      createdAt: Date.now(),
      reason,
      vms: metadataOf(domain),
    });

    const holdings = (domain: string, diskIds: string[]) => {
      const { vms, disks, rocvas } = this.inventoryOf(siteName, domain);
      return {
        vms: [...vms.map(([name, held]) => ({ name, kind: held.kind, poweredOn: held.powerState === 'poweredOn' })), ...rocvas.map((name) => ({ name, kind: 'rocva' as const, poweredOn: true }))],
        diskIds: [...new Set([...disks, ...diskIds.filter((id) => site.disks.has(id))])].sort(),
      };
    };

    const activities: Omit<SiteActivities, keyof RebuildBatchActivities | keyof DrillRemovalBatchActivities | keyof VmPowerBatchActivities | keyof CheckBatchActivities> = {
      // Storage preflight needs a real object store; no workflow under test runs it.
      checkConditionalWrites: () => Promise.reject(ApplicationFailure.nonRetryable('the stub sites have no object store to check', 'NotSimulated')),

      powerOnVm: ({ vm: name }) => {
        const target = vm(name);
        if (target.powerState === 'poweredOn') return Promise.resolve({ alreadyOn: true });
        target.powerState = 'poweredOn';
        return Promise.resolve({ alreadyOn: false });
      },
      waitForGuestHeartbeat: async ({ vm: name, notAfter }) => {
        const started = Date.now();
        const context = Context.current();
        for (;;) {
          context.heartbeat({ vm: name, waitedMs: Date.now() - started });
          const target = vm(name);
          if (target.powerState === 'poweredOn' && !this.silentGuests.has(name)) return { waitedMs: Date.now() - started };
          if (Date.now() >= notAfter) {
            throw ApplicationFailure.nonRetryable(`the guest of ${name} did not heartbeat before ${new Date(notAfter).toISOString()}`, 'HeartbeatTimeout');
          }
          await context.sleep(100);
        }
      },

      checkGuest: ({ vm: name, probe }) => {
        const target = vm(name);
        const up = target.powerState === 'poweredOn' && !this.silentGuests.has(name);
        const port = probe.kind === 'heartbeat' ? undefined : probe.port;
        const refused = this.refusedServices.some((r) => name.endsWith(r.vm) && r.port === port);
        const passed = up && !refused;
        return Promise.resolve({ passed, detail: !up ? 'the guest does not answer' : refused ? `port ${port} refused the connection` : 'answered', waitedMs: 0 });
      },
      inventoryNames: () => Promise.resolve(this.namesAt(siteName)),
      removeDrillResource: ({ kind, name }) => {
        if (!isDrillResourceName(name)) throw ApplicationFailure.nonRetryable(`${kind} "${name}" is not named like a drill resource`, 'NotADrillResource');
        if (kind === 'disk') {
          const holder = [...site.vms].find(([, v]) => v.diskIds.includes(name));
          if (holder) throw ApplicationFailure.nonRetryable(`disk "${name}" is attached to "${holder[0]}"`, 'NameConflict');
          return Promise.resolve({ removed: site.disks.delete(name) });
        }
        return Promise.resolve({ removed: kind === 'rocva' ? site.rocvas.delete(name) : site.vms.delete(name) });
      },
      findExisting: ({ vms, diskIds }) =>
        Promise.resolve({
          vms: vms
            .flatMap((vm) => [vm, representationVmName(vm)])
            .filter((name) => site.vms.has(name))
            .map((name) => ({ name, inactive: false, poweredOn: site.vms.get(name)?.powerState === 'poweredOn', placement: { datacenter: 'dc-a', cluster: 'cluster-a1', datastore: 'ds-a' }, networks: ['prod-app'] })),
          diskIds: diskIds.filter((id) => site.disks.has(id)),
        }),
      deployRocva: (spec) => {
        site.rocvas.add(spec.name);
        return Promise.resolve({ name: spec.name });
      },
      destroyRocva: ({ name }) => {
        site.rocvas.delete(name);
        return Promise.resolve();
      },
      prepareTargetDisks: ({ vm: name, disks }) => {
        for (const d of disks) site.disks.set(d.diskId, d.sizeBytes);
        site.vms.set(representationVmName(name), { kind: 'representation', powerState: 'poweredOff', diskIds: disks.map((d) => d.diskId) });
        return Promise.resolve({ diskIds: disks.map((d) => d.diskId) });
      },
      removeTargetDisk: ({ vm: name, diskId }) => {
        const holder = site.vms.get(representationVmName(name));
        if (holder) holder.diskIds = holder.diskIds.filter((id) => id !== diskId);
        site.disks.delete(diskId);
        return Promise.resolve();
      },
      removeRepresentationVm: ({ vm: name }) => {
        site.vms.delete(representationVmName(name));
        return Promise.resolve();
      },
      registerInPlaceOfRepresentation: async ({ spec }) => {
        site.vms.delete(representationVmName(spec.name));
        return activities.registerRecoveredVm({ spec });
      },
      registerRecoveredVm: ({ spec }) => {
        const existing = site.vms.get(spec.name);
        if (existing && existing.kind !== 'vm') throw ApplicationFailure.nonRetryable(`${spec.name} exists at ${siteName} as a ${existing.kind}`, 'NameConflict');
        for (const id of spec.diskIds) if (!site.disks.has(id)) throw notFound(`disk ${id} at ${siteName}`, 'DiskNotFound');
        if (!existing) site.vms.set(spec.name, { kind: 'vm', powerState: 'poweredOff', diskIds: spec.diskIds });
        return Promise.resolve();
      },
      removeRecoveredVm: ({ vm: name, diskIds = [], found }) => {
        const kept = new Set([...(found?.vms.map((v) => v.name) ?? []), ...(found?.diskIds ?? [])]);
        for (const n of [name, representationVmName(name)]) if (!kept.has(n)) site.vms.delete(n);
        for (const id of diskIds) if (!kept.has(id)) site.disks.delete(id);
        return Promise.resolve();
      },
      runningAmong: ({ vms }) => Promise.resolve(vms.filter((name) => site.vms.get(name)?.powerState === 'poweredOn')),
      shutdownForHandover: ({ vm: name }) => {
        const target = vm(name);
        if (target.powerState === 'poweredOff') return Promise.resolve({ outcome: 'alreadyOff' as const });
        target.powerState = 'poweredOff';
        return Promise.resolve({ outcome: 'shutDown' as const });
      },

      callWebhook: () => Promise.resolve({ status: 204, durationMs: 1 }),

      claimDomain: ({ domain: name, site: claimant, takeover }) => {
        const domain = domainOf(name);
        // A retried claim finds its own epoch.
        if (domain.owner === claimant) return Promise.resolve({ won: true, epoch: domain.epoch, ownerSite: claimant });
        if (domain.owner && !takeover) return Promise.resolve({ won: false, epoch: domain.epoch, ownerSite: domain.owner });
        domain.epoch += 1;
        domain.owner = claimant;
        return Promise.resolve({ won: true, epoch: domain.epoch, ownerSite: claimant });
      },
      recordManifest: ({ domain: name, site: protectedSite, protectionWindowMs }) => {
        const domain = domainOf(name);
        return Promise.resolve({ formatVersion: 1 as const, domain: name, protectedSite, disks: domain.disks, vms: metadataOf(domain), protectionWindowMs, updatedAt: Date.now() });
      },
      // The stub domain's VMs never change: only a protection that knows none yet learns them.
      refreshMembership: ({ domain: name, known }) => {
        if (known?.length !== 0) return Promise.resolve(null);
        const vms = metadataOf(domainOf(name));
        return Promise.resolve({ membership: { digest: membersDigest(vms), names: vms.map((vm) => vm.name), diskIds: vms.flatMap((vm) => vm.diskIds) }, added: [], removed: [] });
      },
      replicateJournal: async ({ cursor, runForMs }) => {
        // Replicates nothing, for as long as a run lasts, unless cancelled first.
        const context = Context.current();
        const until = Date.now() + runForMs;
        while (Date.now() < until) {
          context.heartbeat({ cursor });
          await context.sleep(Math.min(1_000, until - Date.now()));
        }
        return { cursor, segmentsWritten: 0, segmentsAdopted: 0, lagMs: 0, backlogEntries: 0, durableAsOf: Date.now() };
      },
      readRpoTarget: () => Promise.resolve(null),
      collectGarbage: () => Promise.resolve({ deleted: { points: 0, segments: 0, bases: 0, leases: 0 }, skipped: 'the stub sites keep no log' }),
      trackDirtyRegions: ({ cursor }) => Promise.resolve({ drainedTo: cursor, dirtyRegions: 0 }),
      resyncDirtyRegions: ({ domain, epoch, cursor }) =>
        Promise.resolve({ key: `domains/${domain}/log/${epoch}/${cursor}`, entries: 0, bytes: 0, cursor, journalMark: cursor, markedAt: Date.now() }),
      finishResync: () => Promise.resolve({}),
      createRestorePoint: ({ domain }) => Promise.resolve(restorePoint(domainOf(domain), 'on-demand')),
      recordPointTested: () => Promise.resolve({ point: null, why: 'the stub sites keep no restore points' }),
      initialSync: ({ epoch }) => Promise.resolve({ baseId: `base-${epoch}`, bytesRead: 0, chunksStored: 0, consistentFrom: null }),
      rehydrateDomain: ({ domain: name, diskIdPrefix = '' }) => {
        const domain = domainOf(name);
        Context.current().heartbeat({ bytesWritten: 0 });
        for (const d of domain.disks) if (!site.disks.has(`${diskIdPrefix}${d.diskId}`)) throw notFound(`target disk ${diskIdPrefix}${d.diskId} at ${siteName}`, 'DiskNotFound');
        const bytesWritten = domain.disks.reduce((sum, d) => sum + d.sizeBytes, 0);
        return Promise.resolve({ segmentsApplied: 1, bytesWritten, disks: domain.disks.map((d) => ({ diskId: d.diskId, sha256: '0'.repeat(64), verifiedBytes: d.sizeBytes })) });
      },
      releaseFollowerLease: () => Promise.resolve(),
      followLog: async ({ domain: name, disks, diskIdPrefix, untilEnd, runForMs }) => {
        // The target is always caught up with a log that never grows; a run lasts its time unless cancelled or asked for the end.
        const context = Context.current();
        domainOf(name);
        for (const d of disks) if (!site.disks.has(`${diskIdPrefix ?? ''}${d.diskId}`)) throw notFound(`target disk ${d.diskId} at ${siteName}`, 'DiskNotFound');
        const result = { cursor: { base: null, baseWritten: true }, segmentsApplied: 0, bytesRead: { base: 0, log: 0 }, bytesWritten: 0, lag: { segments: 0, bytes: 0, ms: 0 }, caughtUp: true };
        const until = untilEnd ? Date.now() : Date.now() + runForMs;
        while (Date.now() < until) {
          context.heartbeat(result);
          await context.sleep(Math.min(1_000, until - Date.now()));
        }
        return result;
      },

      describeDomain: ({ domain: name }) => {
        const domain = domainOf(name);
        return Promise.resolve({ protectedSite: domain.primary, ownerSite: domain.owner, epoch: domain.epoch, vms: domain.vms.map((v) => v.name), diskIds: domain.disks.map((d) => d.diskId) });
      },
      // No protection runs in these tests: nothing is under way.
      awaitEveryDiskLogged: () => Promise.resolve({ lookedFor: [], logGrewPastDrain: false }),
      drainReplication: ({ domain: name }) => {
        const domain = domainOf(name);
        if (domain.owner !== siteName) throw ApplicationFailure.nonRetryable(`domain ${name} is owned by ${domain.owner ?? 'nobody'}, not by ${siteName}`, 'NotOwner');
        return Promise.resolve({ epoch: domain.epoch, lastSegment: 7, cursor: 42 });
      },
      releaseDomain: ({ domain: name, epoch, nextSite }) => {
        const domain = domainOf(name);
        if (domain.epoch === epoch + 1 && domain.owner === nextSite) return Promise.resolve({ epoch: domain.epoch });
        if (domain.epoch !== epoch) throw ApplicationFailure.nonRetryable(`epoch ${epoch} of ${name} is not the current one (${domain.epoch})`, 'StaleEpoch');
        domain.epoch += 1;
        domain.owner = nextSite;
        return Promise.resolve({ epoch: domain.epoch });
      },
      resolveRecoveryPoint: ({ domain: name, pointInTime, vmsInPages }) => {
        const domain = domainOf(name);
        const at = pointInTime && 'at' in pointInTime ? pointInTime.at : Date.now();
        const vms = metadataOf(domain);
        return Promise.resolve({
          upTo: pointInTime && 'at' in pointInTime ? { kind: 'instant' as const, at } : { kind: 'latest' as const },
          dataFrom: at,
          description: pointInTime ? `instant ${new Date(at).toISOString()}` : 'the latest consistent point',
          ...(vmsInPages ? { disks: [], vms: [], vmCount: vms.length } : { disks: domain.disks, vms }),
          protectionWindowMs: 86_400_000,
        });
      },
      readRecoveryPointVms: ({ domain: name, from, count }) => {
        const domain = domainOf(name);
        const vms = metadataOf(domain).slice(from, from + count);
        return Promise.resolve({ vms, disks: domain.disks.filter((d) => vms.some((vm) => vm.name === d.vm)) });
      },
      stopJournaling: ({ diskIds }) => {
        for (const id of diskIds) if (!site.disks.has(id)) throw notFound(`disk ${id} at ${siteName}`, 'DiskNotFound');
        return Promise.resolve();
      },
      protectRecoveredDisks: ({ diskIds }) => {
        for (const id of diskIds) if (!site.disks.has(id)) throw notFound(`disk ${id} at ${siteName}`, 'DiskNotFound');
        return Promise.resolve({ cursor: 0 });
      },

      recordDeparture: ({ domain: name, epoch, kind }) => {
        const domain = domainOf(name);
        // Planned: recorded by the site that leaves. Forced: by the site that took over, for the one it fenced.
        const left = kind === 'planned' ? siteName : siteName === domain.primary ? domain.recovery : domain.primary;
        // A retried record of the same epoch finds the first one.
        if (domain.departures[left]?.epoch !== epoch) {
          domain.departures[left] = { formatVersion: 1, epoch, site: left, kind, position: { epoch, segment: 0, entries: 0 }, journalCursor: 0, disks: domain.disks, fingerprints: null, vms: metadataOf(domain), recordedAt: Date.now() };
        }
        return Promise.resolve(domain.departures[left]);
      },
      readDeparture: ({ domain: name }) => {
        return Promise.resolve(domainOf(name).departures[siteName] ?? null);
      },
      recordArrival: ({ domain: name, epoch, from, cursor }) => {
        domainOf(name);
        return Promise.resolve({ formatVersion: 1 as const, epoch, site: siteName, from, cursor, recordedAt: Date.now() });
      },
      // A delta is usable where a departure was recorded from this site and its disks are all still there.
      checkDeltaBase: ({ domain: name }) => {
        const domain = domainOf(name);
        const bytesRead = { disks: 0, store: 0 };
        const departure = domain.departures[siteName];
        if (!departure) return Promise.resolve({ usable: false as const, why: `no departure from site ${siteName} was recorded`, bytesRead });
        const missing = domain.disks.find((d) => !site.disks.has(d.diskId));
        if (missing) return Promise.resolve({ usable: false as const, why: `disk ${missing.diskId} is gone from site ${siteName}`, departure, bytesRead });
        return Promise.resolve({ usable: true as const, departure, from: departure.position, journalCursor: departure.journalCursor, bytesRead });
      },
      rehydrateDelta: ({ domain: name }) => {
        const domain = domainOf(name);
        for (const d of domain.disks) if (!site.disks.has(d.diskId)) throw notFound(`target disk ${d.diskId} at ${siteName}`, 'DiskNotFound');
        return Promise.resolve({ cursor: { base: null, baseWritten: true }, segmentsApplied: 1, bytesRead: { base: 0, log: 4096 }, bytesWritten: 4096, lag: { segments: 0, bytes: 0, ms: 0 }, caughtUp: true });
      },

      submitRunbookVersion: ({ name, text, submittedBy }) => Promise.resolve({ version: this.submitRunbook(name, text, submittedBy) }),
      revertRunbookVersion: ({ name, submittedBy, revertedBy }) => {
        const versions = this.runbookVersions(name);
        const submitted = versions.find((v) => v.submittedBy === submittedBy);
        const before = submitted && versions.find((v) => v.version === submitted.version - 1);
        return Promise.resolve(before ? { version: this.submitRunbook(name, before.text, revertedBy) } : {});
      },
      recordPermanentFailover: (record) => {
        domainOf(record.domain).permanentFailover = { formatVersion: 1, ...record };
        return Promise.resolve();
      },
      withdrawPermanentFailover: ({ domain: name, workflowId }) => {
        const domain = domainOf(name);
        if (domain.permanentFailover?.workflowId === workflowId) delete domain.permanentFailover;
        return Promise.resolve();
      },
      domainHoldings: ({ domain, diskIds }) => Promise.resolve(holdings(domain, diskIds)),
      removeDomainHoldings: ({ domain: name, diskIds, newPrimary }) => {
        const domain = domainOf(name);
        if (siteName === newPrimary || domain.owner === siteName) throw ApplicationFailure.nonRetryable(`site ${siteName} holds ${name} as it runs now`, 'SiteOwnsDomain');
        const held = holdings(name, diskIds);
        for (const vm of held.vms) {
          site.vms.delete(vm.name);
          site.rocvas.delete(vm.name);
        }
        for (const id of held.diskIds) site.disks.delete(id);
        return Promise.resolve(held);
      },

      keepStateAsRestorePoint: ({ protection }) => Promise.resolve(restorePoint(domainOf(domainOfWorkflow(protection.workflowId)), 'on-demand')),
      claimNextEpoch: ({ domain: name, fromEpoch }) => {
        const domain = domainOf(name);
        // A retried claim finds its own epoch.
        if (domain.epoch === fromEpoch + 1 && domain.owner === siteName) return Promise.resolve({ epoch: domain.epoch });
        if (domain.epoch !== fromEpoch || domain.owner !== siteName) throw ApplicationFailure.nonRetryable(`${name} is owned by ${domain.owner ?? 'nobody'} in epoch ${domain.epoch}`, 'NotOwner');
        domain.epoch += 1;
        return Promise.resolve({ epoch: domain.epoch });
      },
      vmsAsTheyAre: ({ vms }) => {
        const recorded = [...this.domains.values()].flatMap((d) => d.vms);
        return Promise.resolve(
          vms.flatMap((name) => {
            const held = site.vms.get(name);
            const meta = recorded.find((v) => v.name === name);
            if (!held || !meta) return [];
            return [{ ...meta, kind: held.kind, diskIds: held.diskIds, placement: meta.placement ?? { datacenter: `dc-${siteName}`, cluster: 'cluster', datastore: 'ds' }, powerState: held.powerState }];
          }),
        );
      },

      setDomainStatus: (input) => {
        const status: DomainStatus = { formatVersion: 1, ...input, updatedAt: Date.now() };
        domainOf(input.domain).status = status;
        return Promise.resolve(status);
      },
    };
    return activities;
  }
}
