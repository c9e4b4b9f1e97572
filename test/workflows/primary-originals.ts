/**
 * Never destroying what an operation did not create (issue 12): the VMs and disks a site held of a
 * domain before an operation started are its originals, and no path of the operation (its steps or
 * its compensation) removes them, reconfigures them, rewrites their disks other than by
 * rehydration, or leaves them in another power state than the operation itself put them in.
 */
import assert from 'node:assert/strict';
import type { ActivityName, StubCall, StubSites, StubVm } from '../harness/stub-sites';

export interface Originals {
  site: string;
  vms: Map<string, Pick<StubVm, 'powerState' | 'diskIds'>>;
  disks: string[];
}

/**
 * Calls that may name an original: reading it, powering it (its power state is checked apart),
 * switching its journaling, rehydrating its disks (once or following the log), recording the domain's state. Any other call
 * naming one (removing, preparing or registering over it) touches what the operation did not create.
 */
const MAY_NAME_ORIGINALS = new Set<ActivityName>([
  'findExisting',
  'powerOnVm',
  'powerOnVmsOfBatch',
  'runningAmong',
  'shutdownForHandover',
  'shutdownForHandoverOfBatch',
  'waitForGuestHeartbeat',
  'stopJournaling',
  'protectRecoveredDisks',
  'checkDeltaBase',
  'rehydrateDelta',
  'rehydrateDomain',
  'followLog',
  'setDomainStatus',
]);

/** What `site` holds of `domain` now: the originals of an operation about to start. There are some, or the checks would hold vacuously. */
export function originalsAt(sites: StubSites, site: string, domain: string): Originals {
  const held = sites.inventoryOf(site, domain);
  const vms = new Map(held.vms.filter(([, vm]) => vm.kind === 'vm').map(([name, vm]) => [name, { powerState: vm.powerState, diskIds: [...vm.diskIds] }]));
  assert.ok(vms.size > 0 && held.disks.length > 0, `${site} holds VMs and disks of ${domain} before the operation: ${JSON.stringify(held)}`);
  return { site, vms, disks: held.disks };
}

/**
 * After an operation ended (`calls`: every call it and its children made): each original VM is
 * still registered at its site with its disks, each original disk is still there, no call
 * outside MAY_NAME_ORIGINALS named one, and each original VM's power state is the one it had
 * (`restored`: an aborted or cancelled operation) or one the operation's own calls gave it.
 */
export function assertOriginalsKept(sites: StubSites, originals: Originals, calls: StubCall[], outcome: 'restored' | 'as the operation left them'): void {
  const site = sites.site(originals.site);
  const names = new Set([...originals.vms.keys(), ...originals.disks]);
  const touching = calls.filter((c) => c.site === originals.site && !MAY_NAME_ORIGINALS.has(c.name) && namesIn(c.args).some((n) => names.has(n)));
  assert.deepEqual(
    touching.map((c) => `${c.name}(${JSON.stringify(c.args)}) by ${c.workflowId}`),
    [],
    `no call removes, prepares or registers over an original VM or disk at ${originals.site}`,
  );
  assertOriginalsExist(sites, originals);
  for (const [name, before] of originals.vms) {
    const now = site.vms.get(name)!;
    if (outcome === 'restored') {
      assert.equal(now.powerState, before.powerState, `the original VM ${name} is ${before.powerState} again at ${originals.site}, as before the operation`);
    } else if (now.powerState !== before.powerState) {
      const turnedBy = now.powerState === 'poweredOff' ? 'shutdownForHandover' : 'powerOnVm';
      assert.ok(
        calls.some((c) => c.site === originals.site && c.name === turnedBy && c.ended === 'ok' && namesIn(c.args).includes(name)),
        `the original VM ${name} went ${now.powerState} at ${originals.site} without the operation's ${turnedBy}`,
      );
    }
  }
}

/** Each original VM is still registered at its site with its disks, and each original disk is still there. */
export function assertOriginalsExist(sites: StubSites, originals: Originals): void {
  const site = sites.site(originals.site);
  for (const disk of originals.disks) assert.ok(site.disks.has(disk), `the original disk ${disk} is still at ${originals.site}`);
  for (const [name, before] of originals.vms) {
    const now = site.vms.get(name);
    assert.ok(now?.kind === 'vm', `the original VM ${name} is still registered at ${originals.site} (found ${JSON.stringify(now)})`);
    assert.deepEqual(now.diskIds, before.diskIds, `the original VM ${name} holds its disks`);
  }
}

/** Every string in a call's arguments, however deep: the VM and disk names it acts on among them. */
export function namesIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(namesIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(namesIn);
  return [];
}
