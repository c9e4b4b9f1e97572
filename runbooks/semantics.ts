/**
 * Meaning checks on a well-shaped runbook: references resolve, names are unique, the power-on
 * plan is acyclic and covers the domain, addresses are usable, durations are sensible, and,
 * when the recovery site's inventory is known, everything placed there exists.
 */
import { ipFamily, isIpv4NetworkOrBroadcast, maxPrefix, sameSubnet } from './addresses';
import type { RecoverySiteInventory } from './inventory';
import type { RunbookIssue } from './issues';
import type { Runbook, RunbookStep } from './schema';
import { formatPath, type ParsedSource, type PathSegment } from './source';
import { didYouMean } from './suggest';
import { parseDuration } from './units';

const MAX_DURATION_MS = 30 * 86_400_000;
/** Suggestions compare against every candidate; beyond this many they cost more than they help. */
const MAX_SUGGESTION_CANDIDATES = 2_000;

export interface SemanticFindings {
  errors: RunbookIssue[];
  warnings: RunbookIssue[];
}

export function checkSemantics(runbook: Runbook, source: ParsedSource, inventory?: RecoverySiteInventory): SemanticFindings {
  const errors: RunbookIssue[] = [];
  const warnings: RunbookIssue[] = [];
  const issue = (path: PathSegment[], code: string, message: string, target: 'key' | 'value' = 'value'): RunbookIssue => ({
    ...source.locate(path, target),
    path: formatPath(path),
    code,
    message,
  });
  const error: ErrorSink = (path, code, message, target) => errors.push(issue(path, code, message, target));
  const warn = (path: PathSegment[], code: string, message: string) => warnings.push(issue(path, code, message));
  const suggestion = (word: string, candidates: string[]) => (candidates.length <= MAX_SUGGESTION_CANDIDATES ? didYouMean(word, candidates) : '');
  const { spec } = runbook;

  if (spec.sites.primary === spec.sites.recovery) {
    error(['spec', 'sites', 'recovery'], 'same_site', `recovery site must differ from the primary site "${spec.sites.primary}"`);
  }

  // VMs of the domain
  const vmIndex = new Map<string, number>();
  spec.vms.forEach((vm, i) => {
    const first = vmIndex.get(vm.name);
    if (first !== undefined) error(['spec', 'vms', i, 'name'], 'duplicate_name', `VM "${vm.name}" is already declared at spec.vms[${first}]`);
    else vmIndex.set(vm.name, i);
  });
  const vmNames = [...vmIndex.keys()];

  const mappingSources = new Map<string, number>();
  spec.networkMapping.forEach((mapping, i) => {
    const first = mappingSources.get(mapping.source);
    if (first !== undefined) error(['spec', 'networkMapping', i, 'source'], 'duplicate_name', `network "${mapping.source}" is already mapped at spec.networkMapping[${first}]`);
    else mappingSources.set(mapping.source, i);
  });

  checkAddresses(runbook, error);
  checkDurations(runbook, error);

  // The power-on plan
  const groupIndex = new Map<string, number>();
  const stepNames = new Map<string, string>();
  const placedIn = new Map<string, { group: string; at: string }>();
  spec.powerOn.groups.forEach((group, g) => {
    const groupPath = ['spec', 'powerOn', 'groups', g];
    const first = groupIndex.get(group.name);
    if (first !== undefined) error([...groupPath, 'name'], 'duplicate_name', `group "${group.name}" is already defined at spec.powerOn.groups[${first}]`);
    else groupIndex.set(group.name, g);

    for (const where of ['before', 'after'] as const) {
      group[where].forEach((step, s) => {
        const stepPath = [...groupPath, where, s];
        const firstAt = stepNames.get(step.name);
        if (firstAt) error([...stepPath, 'name'], 'duplicate_name', `step "${step.name}" is already defined at ${firstAt}`);
        else stepNames.set(step.name, formatPath(stepPath));
        checkStep(step, stepPath, error);
      });
    }

    group.vms.forEach((entry, v) => {
      const path = [...groupPath, 'vms', v, 'name'];
      const vmAt = vmIndex.get(entry.name);
      if (vmAt === undefined) {
        error(path, 'unknown_vm', `VM "${entry.name}" is not declared in spec.vms${suggestion(entry.name, vmNames)}`);
        return;
      }
      const earlier = placedIn.get(entry.name);
      if (earlier) {
        error(
          path,
          earlier.group === group.name ? 'duplicate_name' : 'vm_in_two_groups',
          earlier.group === group.name
            ? `VM "${entry.name}" is listed twice in group "${group.name}" (first at ${earlier.at})`
            : `VM "${entry.name}" is already in group "${earlier.group}" (${earlier.at}); a VM belongs to one group`,
        );
        return;
      }
      placedIn.set(entry.name, { group: group.name, at: formatPath([...groupPath, 'vms', v]) });
      if (spec.vms[vmAt].startupAction === 'poweredOff') {
        warn(path, 'powered_off_in_plan', `VM "${entry.name}" has startupAction poweredOff (spec.vms[${vmAt}]); the plan will not power it on`);
      }
    });
  });

  spec.vms.forEach((vm, i) => {
    if (!placedIn.has(vm.name) && vm.startupAction === 'poweredOn') {
      warn(['spec', 'vms', i, 'name'], 'vm_not_in_plan', `VM "${vm.name}" of domain "${spec.protectedDomain}" is in no power-on group; it will be recovered but not powered on`);
    }
  });

  const groupNames = [...groupIndex.keys()];
  spec.powerOn.groups.forEach((group, g) => {
    group.dependsOn.forEach((dependency, d) => {
      const path = ['spec', 'powerOn', 'groups', g, 'dependsOn', d];
      if (dependency === group.name) error(path, 'dependency_cycle', `group "${group.name}" depends on itself`);
      else if (!groupIndex.has(dependency)) error(path, 'unknown_group', `group "${dependency}" is not defined in spec.powerOn.groups${suggestion(dependency, groupNames)}`);
    });
  });
  for (const cycle of findCycles(runbook)) {
    error(['spec', 'powerOn', 'groups', cycle.groupIndex, 'dependsOn', cycle.dependencyIndex], 'dependency_cycle', `dependency cycle: ${cycle.names.join(' -> ')} (each group depends on the next)`);
  }

  if (inventory) checkInventory(runbook, inventory, error);
  return { errors, warnings };
}

type ErrorSink = (path: PathSegment[], code: string, message: string, target?: 'key' | 'value') => void;

function checkAddresses(runbook: Runbook, error: ErrorSink): void {
  const addressOwner = new Map<string, string>();
  runbook.spec.vms.forEach((vm, i) => {
    if (!vm.reIp) return;
    const path = ['spec', 'vms', i, 'reIp'];
    const { address, prefix, gateway, dns } = vm.reIp;
    const family = ipFamily(address);
    if (!family) error([...path, 'address'], 'invalid_address', `"${address}" is not an IPv4 or IPv6 address`);
    else if (prefix > maxPrefix(family)) error([...path, 'prefix'], 'invalid_prefix', `prefix /${prefix} is longer than an IPv${family} address (max /${maxPrefix(family)})`);
    else {
      if (family === 4 && isIpv4NetworkOrBroadcast(address, prefix)) error([...path, 'address'], 'invalid_address', `${address}/${prefix} is the network or broadcast address of its subnet`);
      const owner = addressOwner.get(address);
      if (owner) error([...path, 'address'], 'duplicate_address', `address ${address} is already assigned to VM "${owner}"`);
      else addressOwner.set(address, vm.name);
      if (gateway !== undefined) {
        const gatewayFamily = ipFamily(gateway);
        if (!gatewayFamily) error([...path, 'gateway'], 'invalid_address', `gateway "${gateway}" is not an IP address`);
        else if (gatewayFamily !== family) error([...path, 'gateway'], 'invalid_gateway', `gateway ${gateway} is IPv${gatewayFamily} but the address is IPv${family}`);
        else if (gateway === address) error([...path, 'gateway'], 'invalid_gateway', `gateway ${gateway} is the VM's own address`);
        else if (!sameSubnet(address, gateway, family, prefix)) error([...path, 'gateway'], 'invalid_gateway', `gateway ${gateway} is outside ${address}/${prefix}`);
      }
    }
    dns.forEach((server, d) => {
      if (!ipFamily(server)) error([...path, 'dns', d], 'invalid_address', `DNS server "${server}" is not an IP address`);
    });
  });
}

function checkDurations(runbook: Runbook, error: ErrorSink): void {
  const bounded = (path: PathSegment[], text: string, what: string, allowZero = false) => {
    const ms = parseDuration(text) ?? 0;
    if (!allowZero && ms === 0) error(path, 'invalid_duration', `${what} must be longer than 0s`);
    else if (ms > MAX_DURATION_MS) error(path, 'invalid_duration', `${what} ${text} exceeds the limit of 30d`);
    return ms;
  };
  const { protection, powerOn } = runbook.spec;
  const interval = bounded(['spec', 'protection', 'restorePointInterval'], protection.restorePointInterval, 'restore point interval');
  const window = bounded(['spec', 'protection', 'protectionWindow'], protection.protectionWindow, 'protection window');
  if (interval > 0 && window > 0 && window < interval) {
    error(['spec', 'protection', 'protectionWindow'], 'invalid_duration', `protection window ${protection.protectionWindow} is shorter than the restore point interval ${protection.restorePointInterval}`);
  }
  powerOn.groups.forEach((group, g) => {
    group.vms.forEach((entry, v) => {
      const path = ['spec', 'powerOn', 'groups', g, 'vms', v];
      bounded([...path, 'delayAfterPowerOn'], entry.delayAfterPowerOn, 'delay', true);
      if (entry.waitForHeartbeat) bounded([...path, 'heartbeatTimeout'], entry.heartbeatTimeout, 'heartbeat timeout');
    });
    for (const where of ['before', 'after'] as const) {
      group[where].forEach((step, s) => bounded(['spec', 'powerOn', 'groups', g, where, s, 'timeout'], step.timeout, `${step.type} timeout`));
    }
  });
}

function checkStep(step: RunbookStep, path: PathSegment[], error: ErrorSink): void {
  if (step.type === 'approval') {
    const seen = new Set<string>();
    step.approvers.forEach((approver, a) => {
      if (seen.has(approver)) error([...path, 'approvers', a], 'duplicate_name', `approver "${approver}" is listed twice`);
      seen.add(approver);
    });
    return;
  }
  let url: URL | undefined;
  try {
    url = new URL(step.url);
  } catch {
    error([...path, 'url'], 'invalid_url', `"${step.url}" is not a valid URL`);
  }
  if (url && (url.username || url.password)) {
    error([...path, 'url'], 'secret_in_url', 'credentials in the URL are not allowed; send them in a header taken from a named secret');
  }
  const headerNames = new Map<string, string>();
  for (const name of Object.keys(step.headers)) {
    const first = headerNames.get(name.toLowerCase());
    if (first) error([...path, 'headers', name], 'duplicate_name', `header "${name}" repeats "${first}" (header names are case-insensitive)`, 'key');
    else headerNames.set(name.toLowerCase(), name);
  }
  if (step.body !== undefined && (step.method === 'GET' || step.method === 'DELETE')) {
    error([...path, 'body'], 'body_not_allowed', `a ${step.method} webhook cannot have a body`);
  }
}

interface Cycle {
  names: string[];
  groupIndex: number;
  dependencyIndex: number;
}

/** Every back edge of a depth-first walk, reported as the cycle it closes ("web -> app -> web"). */
export function findCycles(runbook: Runbook): Cycle[] {
  const groups = runbook.spec.powerOn.groups;
  const index = new Map<string, number>();
  groups.forEach((g, i) => {
    if (!index.has(g.name)) index.set(g.name, i);
  });
  const state = new Uint8Array(groups.length); // 0 unvisited, 1 on the walk, 2 done
  const cycles: Cycle[] = [];
  for (let root = 0; root < groups.length; root++) {
    if (state[root] !== 0) continue;
    const walk: Array<{ group: number; next: number }> = [{ group: root, next: 0 }];
    state[root] = 1;
    while (walk.length > 0) {
      const frame = walk[walk.length - 1];
      const dependsOn = groups[frame.group].dependsOn;
      if (frame.next >= dependsOn.length) {
        state[frame.group] = 2;
        walk.pop();
        continue;
      }
      const dependencyIndex = frame.next++;
      const target = index.get(dependsOn[dependencyIndex]);
      if (target === undefined || target === frame.group) continue;
      if (state[target] === 1) {
        const from = walk.findIndex((f) => f.group === target);
        const names = walk.slice(from).map((f) => groups[f.group].name);
        cycles.push({ names: [...names, groups[target].name], groupIndex: frame.group, dependencyIndex });
      } else if (state[target] === 0) {
        state[target] = 1;
        walk.push({ group: target, next: 0 });
      }
    }
  }
  return cycles;
}

function checkInventory(runbook: Runbook, inventory: RecoverySiteInventory, error: ErrorSink): void {
  const site = runbook.spec.sites.recovery;
  const sets = {
    datacenter: new Set(inventory.datacenters),
    cluster: new Set(inventory.clusters),
    'resource pool': new Set(inventory.resourcePools),
    datastore: new Set(inventory.datastores),
    network: new Set(inventory.networks),
    'storage policy': new Set(inventory.storagePolicies),
  };
  const must = (path: PathSegment[], kind: keyof typeof sets, name: string) => {
    if (sets[kind].has(name)) return;
    const candidates = [...sets[kind]];
    const hint = candidates.length <= MAX_SUGGESTION_CANDIDATES ? didYouMean(name, candidates) : '';
    error(path, 'not_in_inventory', `${kind} "${name}" does not exist at recovery site "${site}"${hint}`);
  };
  const { placement, networkMapping, rocva, vms } = runbook.spec;
  must(['spec', 'placement', 'datacenter'], 'datacenter', placement.datacenter);
  must(['spec', 'placement', 'cluster'], 'cluster', placement.cluster);
  if (placement.resourcePool !== undefined) must(['spec', 'placement', 'resourcePool'], 'resource pool', placement.resourcePool);
  must(['spec', 'placement', 'datastore'], 'datastore', placement.datastore);
  networkMapping.forEach((m, i) => must(['spec', 'networkMapping', i, 'target'], 'network', m.target));
  for (const key of ['externalReplication', 'internal', 'management'] as const) must(['spec', 'rocva', 'networks', key], 'network', rocva.networks[key]);
  vms.forEach((vm, i) => {
    if (vm.datastore !== undefined) must(['spec', 'vms', i, 'datastore'], 'datastore', vm.datastore);
    if (vm.network !== undefined) must(['spec', 'vms', i, 'network'], 'network', vm.network);
    if (vm.storagePolicy !== undefined) must(['spec', 'vms', i, 'storagePolicy'], 'storage policy', vm.storagePolicy);
  });
}
