/**
 * Meaning checks on a well-shaped runbook: references resolve, names are unique, the power-on
 * plans (the recovery site's, and the failback's at the primary) are acyclic and cover the domain,
 * addresses are usable, durations are sensible, and, when a site's inventory is known, everything
 * placed at that site exists.
 */
import { ipFamily, isIpv4NetworkOrBroadcast, maxPrefix, sameSubnet } from './addresses';
import type { SiteInventories, SiteInventory } from './inventory';
import type { RunbookIssue } from './issues';
import type { Runbook, RunbookGroup, RunbookPowerOnPlan, RunbookStep, RunbookVm } from './schema';
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

export function checkSemantics(runbook: Runbook, source: ParsedSource, inventories: SiteInventories = {}): SemanticFindings {
  const errors: RunbookIssue[] = [];
  const warnings: RunbookIssue[] = [];
  const issue = (path: PathSegment[], code: string, message: string, target: 'key' | 'value' = 'value'): RunbookIssue => ({
    ...source.locate(path, target),
    path: formatPath(path),
    code,
    message,
  });
  const error: ErrorSink = (path, code, message, target) => errors.push(issue(path, code, message, target));
  const warn: WarningSink = (path, code, message) => warnings.push(issue(path, code, message));
  const { spec } = runbook;

  if (spec.sites.primary === spec.sites.recovery) {
    error(['spec', 'sites', 'recovery'], 'same_site', `recovery site must differ from the primary site "${spec.sites.primary}"`);
  }
  checkRecoverySiteSections(runbook, error);

  // VMs of the domain
  const vmIndex = new Map<string, number>();
  spec.vms.forEach((vm, i) => {
    const first = vmIndex.get(vm.name);
    if (first !== undefined) error(['spec', 'vms', i, 'name'], 'duplicate_name', `VM "${vm.name}" is already declared at spec.vms[${first}]`);
    else vmIndex.set(vm.name, i);
  });

  checkMappingSources(spec.networkMapping, ['spec', 'networkMapping'], error);
  checkAddresses(runbook, 'reIp', error);
  checkAddresses(runbook, 'testIp', error);
  checkProtectionDurations(runbook, error);
  checkPowerOnPlan(runbook, spec.powerOn, ['spec', 'powerOn'], 'it will be recovered but not powered on', { error, warn });
  if (spec.failback && spec.sites.recovery !== undefined) {
    checkMappingSources(spec.failback.networkMapping, ['spec', 'failback', 'networkMapping'], error);
    if (spec.failback.powerOn) checkPowerOnPlan(runbook, spec.failback.powerOn, ['spec', 'failback', 'powerOn'], 'failback will bring it back but not power it on', { error, warn });
    warnUnmappedRocvaNetworks(runbook, warn);
  }
  checkDrillSections(runbook, { error, warn });

  for (const role of ['recovery', 'primary'] as const) {
    const inventory = inventories[role];
    const site = spec.sites[role];
    if (inventory && site !== undefined) checkInventory(role, site, placedAt(runbook, role), inventory, error);
  }
  return { errors, warnings };
}

type ErrorSink = (path: PathSegment[], code: string, message: string, target?: 'key' | 'value') => void;
type WarningSink = (path: PathSegment[], code: string, message: string) => void;

/**
 * The recovery site's sections (where VMs are recovered, the RocVA that rehydrates them) are needed
 * exactly when there is a recovery site. Without one (a permanent failover that named none) the
 * domain is protected to the storage site only, and a failback section has nowhere to return from.
 */
function checkRecoverySiteSections({ spec }: Runbook, error: ErrorSink): void {
  if (spec.sites.recovery !== undefined) {
    const recovery = spec.sites.recovery;
    if (!spec.placement) error(['spec'], 'missing_section', `spec.placement is required: where the VMs are recovered at recovery site "${recovery}"`, 'key');
    if (!spec.rocva) error(['spec'], 'missing_section', `spec.rocva is required: the networks of the recovery appliance at recovery site "${recovery}"`, 'key');
    return;
  }
  if (spec.failback) error(['spec', 'failback'], 'no_recovery_site', 'spec.failback needs spec.sites.recovery: without a recovery site there is no failover to fail back from', 'key');
}

const suggestion = (word: string, candidates: string[]) => (candidates.length <= MAX_SUGGESTION_CANDIDATES ? didYouMean(word, candidates) : '');

function checkMappingSources(mapping: Array<{ source: string }>, path: PathSegment[], error: ErrorSink): void {
  const sources = new Map<string, number>();
  mapping.forEach((m, i) => {
    const first = sources.get(m.source);
    if (first !== undefined) error([...path, i, 'source'], 'duplicate_name', `network "${m.source}" is already mapped at ${formatPath([...path, first])}`);
    else sources.set(m.source, i);
  });
}

/**
 * A power-on plan (`path`: where it is in the runbook): its groups name declared VMs, each VM in
 * one group, unique group and step names, dependencies that exist and form no cycle, sensible
 * durations; `unplanned` says what happens to a domain VM it leaves out.
 */
function checkPowerOnPlan(runbook: Runbook, plan: RunbookPowerOnPlan, path: PathSegment[], unplanned: string, { error, warn }: { error: ErrorSink; warn: WarningSink }): void {
  const { spec } = runbook;
  const vmIndex = new Map<string, number>();
  spec.vms.forEach((vm, i) => {
    if (!vmIndex.has(vm.name)) vmIndex.set(vm.name, i);
  });
  const vmNames = [...vmIndex.keys()];
  const groupsPath = [...path, 'groups'];
  const groupIndex = new Map<string, number>();
  const stepNames = new Map<string, string>();
  const placedIn = new Map<string, { group: string; at: string }>();
  plan.groups.forEach((group, g) => {
    const groupPath = [...groupsPath, g];
    const first = groupIndex.get(group.name);
    if (first !== undefined) error([...groupPath, 'name'], 'duplicate_name', `group "${group.name}" is already defined at ${formatPath([...groupsPath, first])}`);
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
      const vmPath = [...groupPath, 'vms', v, 'name'];
      const vmAt = vmIndex.get(entry.name);
      if (vmAt === undefined) {
        error(vmPath, 'unknown_vm', `VM "${entry.name}" is not declared in spec.vms${suggestion(entry.name, vmNames)}`);
        return;
      }
      const earlier = placedIn.get(entry.name);
      if (earlier) {
        error(
          vmPath,
          earlier.group === group.name ? 'duplicate_name' : 'vm_in_two_groups',
          earlier.group === group.name
            ? `VM "${entry.name}" is listed twice in group "${group.name}" (first at ${earlier.at})`
            : `VM "${entry.name}" is already in group "${earlier.group}" (${earlier.at}); a VM belongs to one group`,
        );
        return;
      }
      placedIn.set(entry.name, { group: group.name, at: formatPath([...groupPath, 'vms', v]) });
      if (spec.vms[vmAt].startupAction === 'poweredOff') {
        warn(vmPath, 'powered_off_in_plan', `VM "${entry.name}" has startupAction poweredOff (spec.vms[${vmAt}]); the plan will not power it on`);
      }
    });
  });

  spec.vms.forEach((vm, i) => {
    if (!placedIn.has(vm.name) && vm.startupAction === 'poweredOn') {
      warn(['spec', 'vms', i, 'name'], 'vm_not_in_plan', `VM "${vm.name}" of domain "${spec.protectedDomain}" is in no group of ${formatPath(path)}; ${unplanned}`);
    }
  });

  const groupNames = [...groupIndex.keys()];
  plan.groups.forEach((group, g) => {
    group.dependsOn.forEach((dependency, d) => {
      const dependencyPath = [...groupsPath, g, 'dependsOn', d];
      if (dependency === group.name) error(dependencyPath, 'dependency_cycle', `group "${group.name}" depends on itself`);
      else if (!groupIndex.has(dependency)) error(dependencyPath, 'unknown_group', `group "${dependency}" is not defined in ${formatPath(groupsPath)}${suggestion(dependency, groupNames)}`);
    });
  });
  for (const cycle of findCycles(plan.groups)) {
    error([...groupsPath, cycle.groupIndex, 'dependsOn', cycle.dependencyIndex], 'dependency_cycle', `dependency cycle: ${cycle.names.join(' -> ')} (each group depends on the next)`);
  }
  checkPlanDurations(plan, groupsPath, error);
}

/**
 * A full failback deploys a RocVA at the primary; the runbook names its networks for the recovery
 * site only. Mapped back by the failback's network mapping they are the primary's; a network left
 * unmapped falls back to the one the domain's VMs use there, which works but shares their network.
 */
function warnUnmappedRocvaNetworks(runbook: Runbook, warn: WarningSink): void {
  const mapped = new Set(runbook.spec.failback?.networkMapping.map((m) => m.source));
  const rocva = runbook.spec.rocva;
  if (!rocva) return;
  for (const role of ROCVA_NETWORK_ROLES) {
    const network = rocva.networks[role];
    if (!mapped.has(network)) {
      warn(['spec', 'rocva', 'networks', role], 'rocva_network_unmapped', `network "${network}" has no mapping in spec.failback.networkMapping: the RocVA of a full failback would use the domain VMs' network at the primary for it`);
    }
  }
}

/** The addresses of one kind (recovery `reIp`, drill `testIp`): usable, and no address given to two VMs. */
function checkAddresses(runbook: Runbook, field: keyof Pick<RunbookVm, 'reIp' | 'testIp'>, error: ErrorSink): void {
  const addressOwner = new Map<string, string>();
  runbook.spec.vms.forEach((vm, i) => {
    const settings = vm[field];
    if (!settings) return;
    const path = ['spec', 'vms', i, field];
    const { address, prefix, gateway, dns } = settings;
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

/**
 * The drill's sections. Test networks must isolate: every recovery-site network the domain's VMs
 * are attached to needs one, and none may be a network the runbook knows as production at either
 * site (or one the RocVA uses). Checks name one declared VM or one group of the power-on plan.
 */
function checkDrillSections(runbook: Runbook, { error, warn }: { error: ErrorSink; warn: WarningSink }): void {
  const { spec } = runbook;
  const testMapping = spec.testNetworkMapping;
  if (testMapping) {
    checkMappingSources(testMapping, ['spec', 'testNetworkMapping'], error);
    const production = productionNetworks(runbook);
    const atRecovery = recoveryNetworksOfVms(runbook);
    const mapped = new Set(testMapping.map((m) => m.source));
    testMapping.forEach((m, i) => {
      const known = production.get(m.target);
      if (known) error(['spec', 'testNetworkMapping', i, 'target'], 'test_network_not_isolated', `test network "${m.target}" is ${known}: a drill must not attach VMs to it`);
      if (!atRecovery.has(m.source)) warn(['spec', 'testNetworkMapping', i, 'source'], 'unused_test_network', `no VM is attached to "${m.source}" at recovery site "${spec.sites.recovery}" (spec.networkMapping targets and spec.vms[].network), so this mapping is never used`);
    });
    for (const [network, path] of atRecovery) {
      if (!mapped.has(network)) error(path, 'no_test_network', `recovery network "${network}" has no test network in spec.testNetworkMapping: a drill would attach VMs to it`);
    }
  } else if (spec.checks.length > 0) {
    warn(['spec', 'checks'], 'drill_without_test_networks', 'checks run only in drills, and this runbook cannot be drilled: it has no spec.testNetworkMapping');
  }

  const vmNames = spec.vms.map((vm) => vm.name);
  const groupNames = spec.powerOn.groups.map((g) => g.name);
  checkUniqueNames(spec.checks, ['spec', 'checks'], 'check', error);
  spec.checks.forEach((check, i) => {
    const path: PathSegment[] = ['spec', 'checks', i];
    if ((check.vm === undefined) === (check.group === undefined)) error(path, 'check_target', `check "${check.name}" must name either a vm or a group`);
    if (check.vm !== undefined && !vmNames.includes(check.vm)) error([...path, 'vm'], 'unknown_vm', `VM "${check.vm}" is not declared in spec.vms${suggestion(check.vm, vmNames)}`);
    if (check.group !== undefined && !groupNames.includes(check.group)) error([...path, 'group'], 'unknown_group', `group "${check.group}" is not defined in spec.powerOn.groups${suggestion(check.group, groupNames)}`);
    boundedDuration(error, [...path, 'timeout'], check.timeout, 'check timeout');
  });

  checkUniqueNames(spec.postCleanup, ['spec', 'postCleanup'], 'step', error);
  spec.postCleanup.forEach((step, s) => {
    const path: PathSegment[] = ['spec', 'postCleanup', s];
    checkStep(step, path, error);
    boundedDuration(error, [...path, 'timeout'], step.timeout, 'webhook timeout');
  });
}

/** Each name of a list once; a repeat is reported at its name, naming the first. */
function checkUniqueNames(items: Array<{ name: string }>, path: PathSegment[], what: string, error: ErrorSink): void {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const at = first.get(item.name);
    if (at !== undefined) error([...path, i, 'name'], 'duplicate_name', `${what} "${item.name}" is already defined at ${formatPath([...path, at])}`);
    else first.set(item.name, i);
  });
}

/** The networks the runbook knows as production (or DR infrastructure), each with where it says so. */
function productionNetworks(runbook: Runbook): Map<string, string> {
  const { spec } = runbook;
  const known = new Map<string, string>();
  const add = (network: string, what: string) => {
    if (!known.has(network)) known.set(network, what);
  };
  const at = (role: 'primary' | 'recovery', path: string) => `a production network of ${role} site "${spec.sites[role]}" (${path})`;
  const mapping = (entries: Array<{ source: string; target: string }>, path: string, from: 'primary' | 'recovery', to: 'primary' | 'recovery') =>
    entries.forEach((m, i) => {
      add(m.source, at(from, `${path}[${i}].source`));
      add(m.target, at(to, `${path}[${i}].target`));
    });
  mapping(spec.networkMapping, 'spec.networkMapping', 'primary', 'recovery');
  spec.vms.forEach((vm, i) => {
    if (vm.network !== undefined) add(vm.network, at('recovery', `spec.vms[${i}].network`));
  });
  mapping(spec.failback?.networkMapping ?? [], 'spec.failback.networkMapping', 'recovery', 'primary');
  const rocva = spec.rocva;
  if (rocva) for (const role of ROCVA_NETWORK_ROLES) add(rocva.networks[role], `the RocVA's ${role} network (spec.rocva.networks.${role})`);
  return known;
}

/** The recovery-site networks the domain's VMs are attached to: each mapping's target and each VM's own network, with where it is written. */
function recoveryNetworksOfVms(runbook: Runbook): Map<string, PathSegment[]> {
  const networks = new Map<string, PathSegment[]>();
  runbook.spec.networkMapping.forEach((m, i) => {
    if (!networks.has(m.target)) networks.set(m.target, ['spec', 'networkMapping', i, 'target']);
  });
  runbook.spec.vms.forEach((vm, i) => {
    if (vm.network !== undefined && !networks.has(vm.network)) networks.set(vm.network, ['spec', 'vms', i, 'network']);
  });
  return networks;
}

function boundedDuration(error: ErrorSink, path: PathSegment[], text: string, what: string, allowZero = false): number {
  const ms = parseDuration(text) ?? 0;
  if (!allowZero && ms === 0) error(path, 'invalid_duration', `${what} must be longer than 0s`);
  else if (ms > MAX_DURATION_MS) error(path, 'invalid_duration', `${what} ${text} exceeds the limit of 30d`);
  return ms;
}

function checkProtectionDurations(runbook: Runbook, error: ErrorSink): void {
  const { protection } = runbook.spec;
  const interval = boundedDuration(error, ['spec', 'protection', 'restorePointInterval'], protection.restorePointInterval, 'restore point interval');
  const window = boundedDuration(error, ['spec', 'protection', 'protectionWindow'], protection.protectionWindow, 'protection window');
  if (interval > 0 && window > 0 && window < interval) {
    error(['spec', 'protection', 'protectionWindow'], 'invalid_duration', `protection window ${protection.protectionWindow} is shorter than the restore point interval ${protection.restorePointInterval}`);
  }
  // A tier longer than the window would keep points whose log compaction has folded into a newer
  // base: each would hold back its base and all the log after it. Only pinned points may do that.
  protection.retention?.tiers.forEach((tier, t) => {
    const path = ['spec', 'protection', 'retention', 'tiers', t];
    const keepsFor = boundedDuration(error, [...path, 'for'], tier.for, 'retention tier');
    const every = tier.every === 'all' ? 0 : boundedDuration(error, [...path, 'every'], tier.every, 'retention bucket');
    if (window > 0 && keepsFor > window) {
      error([...path, 'for'], 'retention_beyond_window', `retention tier keeps points for ${tier.for}, longer than the protection window ${protection.protectionWindow}; raise spec.protection.protectionWindow or shorten the tier`);
    } else if (every > keepsFor && keepsFor > 0) {
      error([...path, 'every'], 'invalid_duration', `retention bucket ${tier.every} is longer than the tier's ${tier.for}: it would keep at most one point`);
    }
  });
}

function checkPlanDurations(plan: RunbookPowerOnPlan, groupsPath: PathSegment[], error: ErrorSink): void {
  plan.groups.forEach((group, g) => {
    group.vms.forEach((entry, v) => {
      const path = [...groupsPath, g, 'vms', v];
      boundedDuration(error, [...path, 'delayAfterPowerOn'], entry.delayAfterPowerOn, 'delay', true);
      if (entry.waitForHeartbeat) boundedDuration(error, [...path, 'heartbeatTimeout'], entry.heartbeatTimeout, 'heartbeat timeout');
    });
    for (const where of ['before', 'after'] as const) {
      group[where].forEach((step, s) => boundedDuration(error, [...groupsPath, g, where, s, 'timeout'], step.timeout, `${step.type} timeout`));
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
export function findCycles(groups: Array<Pick<RunbookGroup, 'name' | 'dependsOn'>>): Cycle[] {
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

const ROCVA_NETWORK_ROLES = ['externalReplication', 'internal', 'management'] as const;

type InventoryKind = 'datacenter' | 'cluster' | 'resource pool' | 'datastore' | 'network' | 'storage policy';

/** What the runbook places at one of its sites, each name with where it is written. */
function placedAt(runbook: Runbook, role: 'recovery' | 'primary'): Array<{ path: PathSegment[]; kind: InventoryKind; name: string }> {
  const placed: Array<{ path: PathSegment[]; kind: InventoryKind; name: string }> = [];
  const placement = (path: PathSegment[], p: NonNullable<Runbook['spec']['placement']>) => {
    placed.push({ path: [...path, 'datacenter'], kind: 'datacenter', name: p.datacenter }, { path: [...path, 'cluster'], kind: 'cluster', name: p.cluster }, { path: [...path, 'datastore'], kind: 'datastore', name: p.datastore });
    if (p.resourcePool !== undefined) placed.push({ path: [...path, 'resourcePool'], kind: 'resource pool', name: p.resourcePool });
  };
  const { spec } = runbook;
  const failback = spec.failback;
  if (role === 'recovery') {
    if (spec.placement) placement(['spec', 'placement'], spec.placement);
    spec.networkMapping.forEach((m, i) => placed.push({ path: ['spec', 'networkMapping', i, 'target'], kind: 'network', name: m.target }));
    const rocva = spec.rocva;
    if (rocva) for (const key of ROCVA_NETWORK_ROLES) placed.push({ path: ['spec', 'rocva', 'networks', key], kind: 'network', name: rocva.networks[key] });
    spec.vms.forEach((vm, i) => {
      if (vm.datastore !== undefined) placed.push({ path: ['spec', 'vms', i, 'datastore'], kind: 'datastore', name: vm.datastore });
      if (vm.network !== undefined) placed.push({ path: ['spec', 'vms', i, 'network'], kind: 'network', name: vm.network });
      if (vm.storagePolicy !== undefined) placed.push({ path: ['spec', 'vms', i, 'storagePolicy'], kind: 'storage policy', name: vm.storagePolicy });
    });
    failback?.networkMapping.forEach((m, i) => placed.push({ path: ['spec', 'failback', 'networkMapping', i, 'source'], kind: 'network', name: m.source }));
    spec.testNetworkMapping?.forEach((m, i) => placed.push({ path: ['spec', 'testNetworkMapping', i, 'target'], kind: 'network', name: m.target }));
  } else if (failback) {
    if (failback.placement) placement(['spec', 'failback', 'placement'], failback.placement);
    failback.networkMapping.forEach((m, i) => placed.push({ path: ['spec', 'failback', 'networkMapping', i, 'target'], kind: 'network', name: m.target }));
  }
  return placed;
}

function checkInventory(role: 'recovery' | 'primary', site: string, placed: ReturnType<typeof placedAt>, inventory: SiteInventory, error: ErrorSink): void {
  const sets: Record<InventoryKind, Set<string>> = {
    datacenter: new Set(inventory.datacenters),
    cluster: new Set(inventory.clusters),
    'resource pool': new Set(inventory.resourcePools),
    datastore: new Set(inventory.datastores),
    network: new Set(inventory.networks),
    'storage policy': new Set(inventory.storagePolicies),
  };
  for (const { path, kind, name } of placed) {
    if (sets[kind].has(name)) continue;
    error(path, 'not_in_inventory', `${kind} "${name}" does not exist at ${role} site "${site}"${suggestion(name, [...sets[kind]])}`);
  }
}
