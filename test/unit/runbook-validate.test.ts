import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { generateLargeDomainRunbook, LARGE_DOMAIN_INVENTORY } from '../../runbooks/examples/large-domain';
import type { SiteInventory } from '../../runbooks/inventory';
import type { RunbookIssue } from '../../runbooks/issues';
import { SOURCE_LIMITS } from '../../runbooks/source';
import { validateRunbook, validateRunbookAgainstSite } from '../../runbooks/validate';
import { THREE_TIER_PRIMARY_INVENTORY } from '../fixtures/three-tier-inventories';
import { type EditableRunbook, THREE_TIER } from './runbook-malformed';

type EditablePlan = EditableRunbook['spec']['powerOn'];

const INVENTORY: SiteInventory = {
  datacenters: ['dc-b'],
  clusters: ['cluster-b1'],
  resourcePools: ['dr-pool'],
  datastores: ['ds-b-ssd', 'ds-b-flash'],
  networks: ['dr-db', 'dr-app', 'dr-web', 'dr-replication', 'dr-rocva-internal', 'dr-management', 'test-db', 'test-app', 'test-web'],
  storagePolicies: ['gold-mirrored'],
};

/** The example as a value, edited by `change`, written back as YAML. */
function edited(change: (runbook: EditableRunbook) => void): string {
  const value = parse(THREE_TIER) as EditableRunbook;
  change(value);
  return stringify(value);
}

/** Asserts one error with this code at this path, and that its line:column points at `token` in the text. */
function expectError(text: string, code: string, path: string, token: string, options: { inventory?: SiteInventory; message?: RegExp } = {}): RunbookIssue {
  const result = validateRunbook(text, options);
  assert.equal(result.ok, false, `expected ${code} at ${path}`);
  const found = result.errors.find((e) => e.code === code && e.path === path);
  assert.ok(found, `no ${code} at ${path}; got ${JSON.stringify(result.errors, null, 1)}`);
  const line = text.split('\n')[found.line - 1] ?? '';
  assert.ok(line.slice(found.column - 1).startsWith(token), `${found.line}:${found.column} points at "${line.slice(found.column - 1)}", expected "${token}"`);
  if (options.message) assert.match(found.message, options.message);
  return found;
}

/** The parts of an editable runbook that exist for its recovery site. */
const recoverySections = (r: EditableRunbook) => r.spec as unknown as { sites: { recovery?: string }; placement?: unknown; rocva?: unknown; failback?: unknown };

function expectValid(text: string, inventory?: SiteInventory) {
  const result = validateRunbook(text, { inventory });
  assert.deepEqual(result.errors, []);
  assert.equal(result.ok, true);
  return result;
}

describe('runbook examples', () => {
  const folder = path.join(__dirname, '../../runbooks/examples');

  it('every YAML example validates against its site without warnings', () => {
    const files = readdirSync(folder).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 0);
    for (const file of files) assert.deepEqual(validateRunbook(readFileSync(path.join(folder, file), 'utf8'), { inventory: INVENTORY }).warnings, [], file);
  });

  it('the generated large domain validates at every size, up to 10,000 VMs', () => {
    assert.throws(() => generateLargeDomainRunbook(3), /at least 4 VMs/);
    for (const count of [4, 7, 10_000]) {
      const result = validateRunbook(generateLargeDomainRunbook(count), { inventory: LARGE_DOMAIN_INVENTORY });
      assert.deepEqual([result.errors, result.warnings], [[], []], `${count} VMs`);
    }
  });
});

describe('runbook validation: shape', () => {
  it('accepts the three-tier example and fills in the defaults', () => {
    const { runbook, warnings } = expectValid(THREE_TIER, INVENTORY);
    assert.deepEqual(warnings, []);
    assert.equal(runbook?.spec.powerOn.groups[0].maxParallel, 10);
    assert.deepEqual(runbook?.spec.powerOn.groups[0].dependsOn, []);
    assert.equal(runbook?.spec.powerOn.groups[2].vms[0].delayAfterPowerOn, '0s');
    assert.equal(runbook?.spec.vms[0].startupAction, 'poweredOn');
    const webhook = runbook?.spec.powerOn.groups[2].after[0];
    assert.equal(webhook?.type === 'webhook' && webhook.headers.Authorization.secret, 'dns-api-token');
  });

  it('reports an unknown key at the key with a suggestion', () => {
    const text = THREE_TIER.replace('      cpus: 8', '      cpu: 8');
    expectError(text, 'unknown_key', 'spec.vms[0].cpu', 'cpu: 8', { message: /unknown key "cpu"; did you mean "cpus"\?/ });
    const far = THREE_TIER.replace('  placement:', '  flavour: big\n  placement:');
    const error = expectError(far, 'unknown_key', 'spec.flavour', 'flavour');
    assert.doesNotMatch(error.message, /did you mean/);
  });

  it('refuses the removed spec.drSettings at its key, listing the keys spec allows', () => {
    const text = THREE_TIER.replace('  protection:\n', '  drSettings:\n    replicationLogStore: ds-b-flash\n    logSize: 128GiB\n  protection:\n');
    const error = expectError(text, 'unknown_key', 'spec.drSettings', 'drSettings:', { message: /^unknown key "drSettings" \(allowed: .*\bprotection\b.*\)$/ });
    assert.equal(error.line, text.split('\n').indexOf('  drSettings:') + 1);
    assert.equal(error.column, 3);
    assert.doesNotMatch(error.message, /\(allowed: [^)]*drSettings/);
    assert.doesNotMatch(error.message, /did you mean/);
    assert.equal(validateRunbook(text).errors.length, 1, 'only the key itself is reported, not its contents');
  });

  it('reports a missing required key at its parent and a wrong type at the value', () => {
    expectError(THREE_TIER.replace('    datastore: ds-b-ssd\n', ''), 'invalid_type', 'spec.placement.datastore', 'datacenter: dc-b', { message: /missing required key "datastore"/ });
    expectError(THREE_TIER.replace('cpus: 8', 'cpus: many'), 'invalid_type', 'spec.vms[0].cpus', 'many', { message: /expected number, got string "many"/ });
  });

  it('checks enumerations, literals and the discriminator of steps', () => {
    expectError(THREE_TIER.replace('kind: Runbook', 'kind: RunBook'), 'invalid_value', 'kind', 'RunBook', { message: /must be "Runbook"/ });
    expectError(THREE_TIER.replace('onFailure: continue', 'onFailure: retry'), 'invalid_value', 'spec.powerOn.groups[2].after[0].onFailure', 'retry', { message: /"abort" or "continue" or "pause"/ });
    expectError(THREE_TIER.replace('type: approval', 'type: approve'), 'invalid_union', 'spec.powerOn.groups[1].before[0].type', 'approve', { message: /"approval", "webhook"/ });
  });

  it('accepts human durations and rejects others', () => {
    expectValid(THREE_TIER.replace('timeout: 30m', 'timeout: 1h30m'));
    expectError(THREE_TIER.replace('timeout: 30m', 'timeout: 30 minutes'), 'invalid_format', 'spec.powerOn.groups[1].before[0].timeout', '30 minutes', { message: /duration such as "30s"/ });
  });

  it('rejects invalid names of runbooks, groups and VMs', () => {
    expectError(THREE_TIER.replace('name: shop-three-tier', 'name: Shop_Three'), 'invalid_format', 'metadata.name', 'Shop_Three', { message: /lowercase letters/ });
    expectError(THREE_TIER.replace('- name: database', '- name: "data base"'), 'invalid_format', 'spec.powerOn.groups[0].name', '"data base"');
  });

  it('accepts header values only as named secrets', () => {
    expectError(THREE_TIER.replace('Authorization: { secret: dns-api-token }', 'Authorization: Bearer abc123'), 'invalid_type', 'spec.powerOn.groups[2].after[0].headers.Authorization', 'Bearer abc123');
    expectError(THREE_TIER.replace('{ secret: dns-api-token }', '{ secret: dns-api-token, value: abc123 }'), 'unknown_key', 'spec.powerOn.groups[2].after[0].headers.Authorization.value', 'value');
  });
});

describe('runbook validation: meaning', () => {
  it('finds VMs a group names that the domain does not declare', () => {
    const text = THREE_TIER.replace('{ name: app-2, waitForHeartbeat', '{ name: app-3, waitForHeartbeat');
    expectError(text, 'unknown_vm', 'spec.powerOn.groups[1].vms[1].name', 'app-3', { message: /"app-3" is not declared in spec.vms; did you mean "app-1"\?/ });
  });

  it('finds a VM in two groups and a VM twice in one group', () => {
    const twoGroups = THREE_TIER.replace('{ name: web-2, waitForHeartbeat: true }', '{ name: app-1, waitForHeartbeat: true }');
    expectError(twoGroups, 'vm_in_two_groups', 'spec.powerOn.groups[2].vms[1].name', 'app-1', { message: /already in group "app" \(spec.powerOn.groups\[1\].vms\[0\]\)/ });
    const twice = THREE_TIER.replace('{ name: app-2, waitForHeartbeat', '{ name: app-1, waitForHeartbeat');
    expectError(twice, 'duplicate_name', 'spec.powerOn.groups[1].vms[1].name', 'app-1', { message: /listed twice in group "app"/ });
  });

  it('warns about VMs of the domain that no group powers on, but not about those meant to stay off', () => {
    const text = THREE_TIER.replace('          - { name: web-2, waitForHeartbeat: true }\n', '');
    const result = validateRunbook(text);
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.warnings.map((w) => [w.code, w.path, `${w.line}:${w.column}`]),
      [['vm_not_in_plan', 'spec.vms[4].name', `${text.split('\n').findIndex((l) => l.includes('- name: web-2')) + 1}:13`]],
    );
    assert.deepEqual(validateRunbook(THREE_TIER).warnings, []);
  });

  it('names a dependency cycle and a self-dependency', () => {
    const text = edited((r) => {
      r.spec.powerOn.groups[0].dependsOn = ['web'];
    });
    expectError(text, 'dependency_cycle', 'spec.powerOn.groups[1].dependsOn[0]', 'database', { message: /dependency cycle: database -> web -> app -> database/ });
    const self = edited((r) => {
      r.spec.powerOn.groups[1].dependsOn = ['app'];
    });
    expectError(self, 'dependency_cycle', 'spec.powerOn.groups[1].dependsOn[0]', 'app', { message: /"app" depends on itself/ });
  });

  it('finds dependencies on groups that do not exist', () => {
    expectError(THREE_TIER.replace('dependsOn: [app]', 'dependsOn: [apps]'), 'unknown_group', 'spec.powerOn.groups[2].dependsOn[0]', 'apps]', { message: /did you mean "app"\?/ });
  });

  it('finds duplicate names of VMs, groups, steps, mapped networks and headers', () => {
    expectError(THREE_TIER.replace('- name: app-2\n', '- name: app-1\n'), 'duplicate_name', 'spec.vms[2].name', 'app-1', { message: /already declared at spec.vms\[1\]/ });
    expectError(THREE_TIER.replace('- name: web\n', '- name: app\n'), 'duplicate_name', 'spec.powerOn.groups[2].name', 'app', { message: /already defined at spec.powerOn.groups\[1\]/ });
    expectError(THREE_TIER.replace('name: update-dns', 'name: approve-app-start'), 'duplicate_name', 'spec.powerOn.groups[2].after[0].name', 'approve-app-start');
    expectError(THREE_TIER.replace('source: prod-web', 'source: prod-app'), 'duplicate_name', 'spec.networkMapping[1].source', 'prod-app');
    const headers = THREE_TIER.replace('Authorization: { secret: dns-api-token }', 'Authorization: { secret: dns-api-token }\n              authorization: { secret: other }');
    expectError(headers, 'duplicate_name', 'spec.powerOn.groups[2].after[0].headers.authorization', 'authorization:', { message: /case-insensitive/ });
    expectError(THREE_TIER.replace('approvers: [dr-lead, dba-oncall]', 'approvers: [dr-lead, dr-lead]'), 'duplicate_name', 'spec.powerOn.groups[1].before[0].approvers[1]', 'dr-lead]');
  });

  it('rejects duplicate YAML keys where they are written', () => {
    expectError(THREE_TIER.replace('      cpus: 8\n', '      cpus: 8\n      cpus: 4\n'), 'yaml_duplicate_key', '', 'cpus: 4');
  });

  it('checks re-IP addresses, prefixes, gateways and DNS servers', () => {
    const vm0 = (reIp: string) => THREE_TIER.replace('{ address: 10.20.1.10, prefix: 24, gateway: 10.20.1.1, dns: [10.20.0.53] }', reIp);
    expectValid(vm0('{ address: "2001:db8::10", prefix: 64, gateway: "2001:db8::1", dns: ["2001:db8::53"] }'));
    expectValid(vm0('{ address: 192.168.7.2, prefix: 31 }'));
    expectError(vm0('{ address: 10.20.1.300, prefix: 24 }'), 'invalid_address', 'spec.vms[0].reIp.address', '10.20.1.300', { message: /not an IPv4 or IPv6 address/ });
    expectError(vm0('{ address: 10.20.1.10, prefix: 33 }'), 'invalid_prefix', 'spec.vms[0].reIp.prefix', '33', { message: /max \/32/ });
    expectError(vm0('{ address: 10.20.1.0, prefix: 24 }'), 'invalid_address', 'spec.vms[0].reIp.address', '10.20.1.0', { message: /network or broadcast/ });
    expectError(vm0('{ address: 10.20.1.10, prefix: 24, gateway: 10.20.2.1 }'), 'invalid_gateway', 'spec.vms[0].reIp.gateway', '10.20.2.1', { message: /outside 10.20.1.10\/24/ });
    expectError(vm0('{ address: 10.20.1.10, prefix: 24, gateway: "fe80::1" }'), 'invalid_gateway', 'spec.vms[0].reIp.gateway', '"fe80::1"', { message: /IPv6 but the address is IPv4/ });
    expectError(vm0('{ address: 10.20.1.10, prefix: 24, dns: [10.20.0.53, dns.example.com] }'), 'invalid_address', 'spec.vms[0].reIp.dns[1]', 'dns.example.com');
    expectError(vm0('{ address: 10.20.1.21, prefix: 24 }'), 'duplicate_address', 'spec.vms[1].reIp.address', '10.20.1.21', { message: /already assigned to VM "db-1"/ });
  });

  it('checks durations for meaning: positive timeouts, a window longer than the interval', () => {
    expectValid(THREE_TIER.replace('protectionWindow: 7d', 'protectionWindow: 15m'));
    expectError(THREE_TIER.replace('protectionWindow: 7d', 'protectionWindow: 10m'), 'invalid_duration', 'spec.protection.protectionWindow', '10m', { message: /shorter than the restore point interval/ });
    expectError(THREE_TIER.replace('timeout: 20s', 'timeout: 0s'), 'invalid_duration', 'spec.powerOn.groups[2].after[0].timeout', '0s', { message: /longer than 0s/ });
    expectError(THREE_TIER.replace('heartbeatTimeout: 10m', 'heartbeatTimeout: 31d'), 'invalid_duration', 'spec.powerOn.groups[0].vms[0].heartbeatTimeout', '31d', { message: /limit of 30d/ });
  });

  it('checks webhooks: parseable URL, no credentials in it, no body on GET', () => {
    const url = 'https://dns.example.com/api/v1/zones/shop.example.com/records';
    expectError(THREE_TIER.replace(url, 'https://user:pw@dns.example.com/x'), 'secret_in_url', 'spec.powerOn.groups[2].after[0].url', 'https://user', { message: /header taken from a named secret/ });
    expectError(THREE_TIER.replace(url, 'http://[::1/x'), 'invalid_url', 'spec.powerOn.groups[2].after[0].url', 'http://[::1/x');
    expectError(THREE_TIER.replace('method: POST', 'method: GET'), 'body_not_allowed', 'spec.powerOn.groups[2].after[0].body', "'{");
  });

  it('requires different primary and recovery sites', () => {
    expectError(THREE_TIER.replace('recovery: site-b', 'recovery: site-a'), 'same_site', 'spec.sites.recovery', 'site-a');
  });

  it('accepts a runbook without a recovery site, its recovery sections then optional, and refuses a failback section in it', () => {
    const storageOnly = edited((r) => {
      const spec = recoverySections(r);
      delete spec.sites.recovery;
      delete spec.placement;
      delete spec.rocva;
      delete spec.failback;
    });
    const valid = expectValid(storageOnly, INVENTORY);
    assert.equal(valid.runbook?.spec.sites.recovery, undefined);
    const withFailback = edited((r) => {
      const spec = recoverySections(r);
      delete spec.sites.recovery;
      delete spec.placement;
      delete spec.rocva;
    });
    expectError(withFailback, 'no_recovery_site', 'spec.failback', 'failback', { message: /needs spec.sites.recovery/ });
  });

  it('requires the placement and the RocVA with a recovery site, naming it', () => {
    const text = edited((r) => {
      const spec = recoverySections(r);
      delete spec.placement;
      delete spec.rocva;
    });
    assert.deepEqual(
      validateRunbook(text).errors.map((e) => [e.code, e.path, e.message]),
      [
        ['missing_section', 'spec', 'spec.placement is required: where the VMs are recovered at recovery site "site-b"'],
        ['missing_section', 'spec', 'spec.rocva is required: the networks of the recovery appliance at recovery site "site-b"'],
      ],
    );
  });

  it('warns about VMs listed for power-on whose startup action is to stay off', () => {
    const text = THREE_TIER.replace('- { name: web-2, waitForHeartbeat: true }', '- { name: web-2, waitForHeartbeat: true }\n          - { name: reporting-1 }');
    const result = validateRunbook(text);
    assert.equal(result.ok, true);
    assert.deepEqual(result.warnings.map((w) => [w.code, w.path]), [['powered_off_in_plan', 'spec.powerOn.groups[2].vms[2].name']]);
  });
});

describe('runbook validation: recovery site inventory', () => {
  it('checks every placed name against the inventory, with suggestions', () => {
    expectValid(THREE_TIER, INVENTORY);
    const cases: Array<[string, string, string, string]> = [
      ['datacenter: dc-b', 'datacenter: dc-c', 'spec.placement.datacenter', 'dc-c'],
      ['cluster: cluster-b1', 'cluster: cluster-b2', 'spec.placement.cluster', 'cluster-b2'],
      ['resourcePool: dr-pool', 'resourcePool: dr-pol', 'spec.placement.resourcePool', 'dr-pol'],
      ['datastore: ds-b-ssd', 'datastore: ds-b-sdd', 'spec.placement.datastore', 'ds-b-sdd'],
      ['target: dr-web', 'target: dr-wbe', 'spec.networkMapping[1].target', 'dr-wbe'],
      ['management: dr-management', 'management: mgmt', 'spec.rocva.networks.management', 'mgmt'],
      ['      storagePolicy: gold-mirrored\n', '      storagePolicy: gold-mirrored\n      datastore: ds-b-flsh\n', 'spec.vms[0].datastore', 'ds-b-flsh'],
      ['storagePolicy: gold-mirrored', 'storagePolicy: gold', 'spec.vms[0].storagePolicy', 'gold'],
      ['      network: dr-web\n      reIp: { address: 10.20.2.31', '      network: dr-dmz\n      reIp: { address: 10.20.2.31', 'spec.vms[3].network', 'dr-dmz'],
    ];
    for (const [from, to, path, token] of cases) {
      const error = expectError(THREE_TIER.replace(from, to), 'not_in_inventory', path, token, { inventory: INVENTORY });
      assert.match(error.message, /does not exist at recovery site "site-b"/);
    }
    const suggested = expectError(THREE_TIER.replace('datastore: ds-b-ssd', 'datastore: ds-b-sdd'), 'not_in_inventory', 'spec.placement.datastore', 'ds-b-sdd', { inventory: INVENTORY });
    assert.match(suggested.message, /did you mean "ds-b-ssd"\?/);
  });

  it('looks the inventory up by the recovery site and warns when it cannot', async () => {
    const asked: string[] = [];
    const checked = await validateRunbookAgainstSite(THREE_TIER.replace('datacenter: dc-b', 'datacenter: dc-x'), (site) => {
      asked.push(site);
      return INVENTORY;
    });
    assert.deepEqual(asked, ['site-b', 'site-a'], 'the failback section is checked against the primary');
    assert.equal(checked.errors[0]?.code, 'not_in_inventory');
    const unknown = await validateRunbookAgainstSite(THREE_TIER, () => undefined);
    assert.equal(unknown.ok, true);
    const recoveryWarning = unknown.warnings.find((w) => w.path === 'spec.sites.recovery');
    assert.match(recoveryWarning?.message ?? '', /placement was not checked against recovery site "site-b": the site is unknown/);
    const siteLine = THREE_TIER.split('\n').findIndex((l) => l.includes('recovery: site-b')) + 1;
    assert.deepEqual([recoveryWarning?.line, recoveryWarning?.column], [siteLine, 15]);
    const primaryWarning = unknown.warnings.find((w) => w.path === 'spec.sites.primary');
    assert.match(primaryWarning?.message ?? '', /the failback section was not checked against primary site "site-a": the site is unknown/);
    const failing = await validateRunbookAgainstSite(THREE_TIER, () => Promise.reject(new Error('connection refused')));
    assert.match(failing.warnings[0]?.message ?? '', /could not be read \(connection refused\)/);
    const withoutFailback = edited((r) => {
      delete (r.spec as Record<string, unknown>).failback;
    });
    asked.length = 0;
    await validateRunbookAgainstSite(withoutFailback, (site) => {
      asked.push(site);
      return INVENTORY;
    });
    assert.deepEqual(asked, ['site-b'], 'without a failback section nothing is placed at the primary');
  });
});

describe('runbook validation: the failback section', () => {
  const PRIMARY_INVENTORY = THREE_TIER_PRIMARY_INVENTORY;

  const failbackPlan = (change: (plan: EditablePlan) => void) =>
    edited((r) => {
      change((r.spec as unknown as { failback: { powerOn: EditablePlan } }).failback.powerOn);
    });

  it('checks the failback power-on plan like the recovery plan: declared VMs, one group each, known and acyclic dependencies', () => {
    expectError(THREE_TIER.replace('{ name: web-2, waitForHeartbeat: true }\n          after', '{ name: web-3, waitForHeartbeat: true }\n          after'), 'unknown_vm', 'spec.failback.powerOn.groups[1].vms[3].name', 'web-3', { message: /did you mean "web-1"\?/ });
    expectError(failbackPlan((p) => p.groups[1].vms.push({ name: 'db-1' })), 'vm_in_two_groups', 'spec.failback.powerOn.groups[1].vms[4].name', 'db-1', { message: /already in group "database" \(spec.failback.powerOn.groups\[0\].vms\[0\]\)/ });
    expectError(failbackPlan((p) => (p.groups[1].dependsOn = ['databse'])), 'unknown_group', 'spec.failback.powerOn.groups[1].dependsOn[0]', 'databse', { message: /not defined in spec.failback.powerOn.groups; did you mean "database"\?/ });
    expectError(failbackPlan((p) => (p.groups[0].dependsOn = ['app-and-web'])), 'dependency_cycle', 'spec.failback.powerOn.groups[1].dependsOn[0]', 'database', { message: /database -> app-and-web -> database/ });
    expectError(failbackPlan((p) => (p.groups[1].name = 'database')), 'duplicate_name', 'spec.failback.powerOn.groups[1].name', 'database', { message: /already defined at spec.failback.powerOn.groups\[0\]/ });
  });

  it('warns about a VM the failback plan leaves off, and names the plan', () => {
    const text = THREE_TIER.replace('            - { name: web-2, waitForHeartbeat: true }\n', '');
    const result = validateRunbook(text);
    assert.equal(result.ok, true);
    assert.deepEqual(result.warnings.map((w) => [w.code, w.path]), [['vm_not_in_plan', 'spec.vms[4].name']]);
    assert.match(result.warnings[0].message, /in no group of spec.failback.powerOn; failback will bring it back but not power it on/);
  });

  it('refuses a recovery network mapped back twice', () => {
    expectError(THREE_TIER.replace('source: dr-web, target: prod-web', 'source: dr-app, target: prod-web'), 'duplicate_name', 'spec.failback.networkMapping[1].source', 'dr-app', { message: /already mapped at spec.failback.networkMapping\[0\]/ });
  });

  it('warns when a RocVA network has no way back to the primary', () => {
    const result = validateRunbook(THREE_TIER.replace('      - { source: dr-management, target: a-management }\n', ''));
    assert.equal(result.ok, true);
    assert.deepEqual(result.warnings.map((w) => [w.code, w.path]), [['rocva_network_unmapped', 'spec.rocva.networks.management']]);
  });

  it('checks what it places at the primary against the primary inventory, and the networks it maps from against the recovery inventory', () => {
    const check = (text: string) => validateRunbook(text, { inventory: INVENTORY, primaryInventory: PRIMARY_INVENTORY });
    assert.deepEqual(check(THREE_TIER).errors, []);
    const cases: Array<[string, string, string, string, RegExp]> = [
      ['datastore: ds-a-ssd', 'datastore: ds-a-sdd', 'spec.failback.placement.datastore', 'ds-a-sdd', /datastore "ds-a-sdd" does not exist at primary site "site-a"; did you mean "ds-a-ssd"\?/],
      ['cluster: cluster-a1', 'cluster: cluster-b1', 'spec.failback.placement.cluster', 'cluster-b1', /at primary site "site-a"/],
      ['target: prod-web', 'target: dr-web', 'spec.failback.networkMapping[1].target', 'dr-web', /network "dr-web" does not exist at primary site "site-a"/],
      ['source: dr-web', 'source: prod-web', 'spec.failback.networkMapping[1].source', 'prod-web', /network "prod-web" does not exist at recovery site "site-b"/],
    ];
    for (const [from, to, path, token, message] of cases) {
      const result = check(THREE_TIER.replace(from, to));
      const found = result.errors.find((e) => e.code === 'not_in_inventory' && e.path === path);
      assert.ok(found, `${path}: ${JSON.stringify(result.errors)}`);
      assert.ok(THREE_TIER.replace(from, to).split('\n')[found.line - 1].slice(found.column - 1).startsWith(token), `${path} at ${found.line}:${found.column}`);
      assert.match(found.message, message);
    }
  });
});

describe('runbook validation: the drill sections', () => {
  const WITHOUT_DRILL = THREE_TIER.slice(0, THREE_TIER.indexOf('  # Drills'));

  it('reads test networks, test addresses, checks with their defaults, runInDrill and postCleanup', () => {
    const { runbook } = expectValid(THREE_TIER, INVENTORY);
    const spec = runbook!.spec;
    assert.deepEqual(spec.testNetworkMapping, [
      { source: 'dr-app', target: 'test-app' },
      { source: 'dr-web', target: 'test-web' },
    ]);
    assert.deepEqual(spec.vms[3].testIp, { address: '10.99.2.31', prefix: 24, dns: [] });
    assert.deepEqual(spec.checks[2], { name: 'web-health', type: 'http', group: 'web', port: 8080, path: '/health', expectStatus: [200], timeout: '2m' });
    const optedIn = expectValid(THREE_TIER.replace('            onFailure: continue\n', '            onFailure: continue\n            runInDrill: true\n')).runbook!.spec;
    const runInDrill = (s: typeof spec) => s.powerOn.groups[2].after.map((step) => step.type === 'webhook' && step.runInDrill);
    assert.deepEqual([runInDrill(spec), runInDrill(optedIn)], [[false], [true]], 'webhooks stay out of drills unless they opt in');
    assert.equal(spec.postCleanup[0].name, 'drill-cleaned-up');
    const { runbook: plain } = expectValid(WITHOUT_DRILL);
    assert.equal(plain!.spec.testNetworkMapping, undefined, 'a runbook without test networks says so (it cannot be drilled)');
    assert.deepEqual([plain!.spec.checks, plain!.spec.postCleanup], [[], []]);
  });

  it('refuses a test network that is a production network of either site, or a RocVA network', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['target: test-web }', 'dr-app', /test network "dr-app" is a production network of recovery site "site-b" \(spec.networkMapping\[0\].target\)/],
      ['target: test-web }', 'prod-app', /a production network of primary site "site-a" \(spec.networkMapping\[0\].source\)/],
      ['target: test-web }', 'a-management', /a production network of primary site "site-a" \(spec.failback.networkMapping\[4\].target\)/],
      ['target: test-web }', 'dr-replication', /a production network of recovery site "site-b" \(spec.failback.networkMapping\[2\].source\)/],
    ];
    for (const [from, network, message] of cases) {
      expectError(THREE_TIER.replace(from, `target: ${network} }`), 'test_network_not_isolated', 'spec.testNetworkMapping[1].target', network, { message });
    }
    const rocvaOnly = THREE_TIER.replace('      - { source: dr-management, target: a-management }\n', '').replace('target: test-web }', 'target: dr-management }');
    expectError(rocvaOnly, 'test_network_not_isolated', 'spec.testNetworkMapping[1].target', 'dr-management', { message: /the RocVA's management network \(spec.rocva.networks.management\)/ });
  });

  it('requires a test network for every recovery network a VM is attached to, and names unused and duplicate mappings', () => {
    const unmapped = THREE_TIER.replace('    - { source: dr-web, target: test-web }\n', '');
    expectError(unmapped, 'no_test_network', 'spec.networkMapping[1].target', 'dr-web', { message: /recovery network "dr-web" has no test network in spec.testNetworkMapping/ });
    const onlyOwnNetwork = unmapped.replace('target: dr-web', 'target: dr-app');
    expectError(onlyOwnNetwork.replace('    - source: prod-web\n      target: dr-app\n', ''), 'no_test_network', 'spec.vms[3].network', 'dr-web');
    expectError(THREE_TIER.replace('source: dr-web, target: test-web', 'source: dr-app, target: test-web'), 'duplicate_name', 'spec.testNetworkMapping[1].source', 'dr-app');
    const unused = validateRunbook(THREE_TIER.replace('    - { source: dr-web, target: test-web }\n', '    - { source: dr-web, target: test-web }\n    - { source: dr-dmz, target: test-dmz }\n'));
    assert.deepEqual(unused.warnings.map((w) => [w.code, w.path]), [['unused_test_network', 'spec.testNetworkMapping[2].source']]);
  });

  it('checks test networks against the recovery inventory, and test addresses like re-IP addresses', () => {
    const error = expectError(THREE_TIER.replace('target: test-web }', 'target: test-webs }'), 'not_in_inventory', 'spec.testNetworkMapping[1].target', 'test-webs', { inventory: INVENTORY });
    assert.match(error.message, /network "test-webs" does not exist at recovery site "site-b"; did you mean "test-web"\?/);
    expectError(THREE_TIER.replace('testIp: { address: 10.99.2.32', 'testIp: { address: 10.99.2.31'), 'duplicate_address', 'spec.vms[4].testIp.address', '10.99.2.31', { message: /already assigned to VM "web-1"/ });
    expectError(THREE_TIER.replace('testIp: { address: 10.99.2.31, prefix: 24 }', 'testIp: { address: 10.99.2.0, prefix: 24 }'), 'invalid_address', 'spec.vms[3].testIp.address', '10.99.2.0');
    // A test address may repeat a re-IP address: the test network is another network.
    expectValid(THREE_TIER.replace('testIp: { address: 10.99.2.31', 'testIp: { address: 10.20.2.31'));
  });

  it('checks each check: one vm or one group that exist, a known type, a port, a path, a sensible timeout', () => {
    const check = (text: string) => THREE_TIER.replace('{ name: db-port, type: tcp, vm: db-1, port: 5432, timeout: 2m }', text);
    expectError(check('{ name: db-port, type: tcp, vm: db-9, port: 5432 }'), 'unknown_vm', 'spec.checks[1].vm', 'db-9', { message: /did you mean "db-1"\?/ });
    expectError(check('{ name: db-port, type: tcp, group: databse, port: 5432 }'), 'unknown_group', 'spec.checks[1].group', 'databse', { message: /did you mean "database"\?/ });
    expectError(check('{ name: db-port, type: tcp, vm: db-1, group: database, port: 5432 }'), 'check_target', 'spec.checks[1]', '{', { message: /either a vm or a group/ });
    expectError(check('{ name: db-port, type: tcp, port: 5432 }'), 'check_target', 'spec.checks[1]', '{');
    expectError(check('{ name: db-port, type: tcp, vm: db-1 }'), 'invalid_type', 'spec.checks[1].port', '{', { message: /missing required key "port"/ });
    expectError(check('{ name: db-port, type: tcp, vm: db-1, port: 70000 }'), 'too_big', 'spec.checks[1].port', '70000');
    expectError(check('{ name: db-port, type: ping, vm: db-1 }'), 'invalid_union', 'spec.checks[1].type', 'ping', { message: /"type" must be one of "heartbeat", "tcp", "http"/ });
    expectError(check('{ name: db-port, type: http, vm: db-1, port: 80, path: health }'), 'invalid_format', 'spec.checks[1].path', 'health', { message: /starting with "\/"/ });
    expectError(check('{ name: db-port, type: heartbeat, vm: db-1, timeout: 0s }'), 'invalid_duration', 'spec.checks[1].timeout', '0s');
    expectError(check('{ name: db-heartbeat, type: heartbeat, vm: db-1 }'), 'duplicate_name', 'spec.checks[1].name', 'db-heartbeat', { message: /already defined at spec.checks\[0\]/ });
  });

  it('warns that checks without test networks never run, and checks postCleanup webhooks like the plan\'s', () => {
    const checksOnly = `${WITHOUT_DRILL}  checks:\n    - { name: db-up, type: heartbeat, vm: db-1 }\n`;
    const result = validateRunbook(checksOnly);
    assert.equal(result.ok, true);
    assert.deepEqual(result.warnings.map((w) => [w.code, w.path]), [['drill_without_test_networks', 'spec.checks']]);
    const url = 'https://chat.example.com/hooks/dr-drills\n      body';
    expectError(THREE_TIER.replace(url, 'https://u:p@chat.example.com/x\n      body'), 'secret_in_url', 'spec.postCleanup[0].url', 'https://u:p');
    expectError(THREE_TIER.replace("body: '{\"text\": \"shop drill cleaned up\"}'", "body: '{}'\n      timeout: 0s"), 'invalid_duration', 'spec.postCleanup[0].timeout', '0s');
    expectError(`${THREE_TIER}    - { name: drill-cleaned-up, type: webhook, url: "https://x.example.com" }\n`, 'duplicate_name', 'spec.postCleanup[1].name', 'drill-cleaned-up');
    expectError(`${THREE_TIER}    - { name: ask, type: approval, approvers: [dr-lead] }\n`, 'invalid_value', 'spec.postCleanup[1].type', 'approval');
  });
});

describe('runbook validation: hostile and non-runbook input', () => {
  const only = (text: string, maxBytes?: number) => {
    const result = validateRunbook(text, maxBytes ? { maxBytes } : {});
    assert.equal(result.ok, false);
    return result.errors[0];
  };

  it('refuses documents over the size limit before parsing them', () => {
    const error = only(`${THREE_TIER}#${'x'.repeat(SOURCE_LIMITS.maxBytes)}\n`);
    assert.equal(error.code, 'too_large');
    assert.match(error.message, new RegExp(`the limit is ${SOURCE_LIMITS.maxBytes} bytes`));
    assert.equal(only(THREE_TIER, 100).code, 'too_large');
    expectValid(THREE_TIER);
  });

  it('refuses alias bombs by expansion and by alias count', () => {
    const bomb = 'a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
    assert.equal(only(bomb).code, 'alias_expansion');
    const many = `x: &x 1\n${Array.from({ length: 60 }, (_, i) => `k${i}: *x`).join('\n')}\n`;
    const error = only(many);
    assert.equal(error.code, 'too_many_aliases');
    assert.match(error.message, /60 YAML aliases; the limit is 50/);
    // A few aliases are ordinary YAML and fine.
    const withAlias = THREE_TIER.replace('dns: [10.20.0.53] }\n    - name: app-1', 'dns: &dns [10.20.0.53] }\n    - name: app-1').replace('dns: [10.20.0.53] }\n    - name: app-2', 'dns: *dns }\n    - name: app-2');
    expectValid(withAlias);
  });

  it('refuses excessive nesting, in block and in flow style', () => {
    const block = `spec:\n${Array.from({ length: 40 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`;
    const deep = only(block);
    assert.equal(deep.code, 'too_deep');
    assert.match(deep.message, /limit is 32/);
    assert.equal(only(`${'['.repeat(20_000)}${']'.repeat(20_000)}`).code, 'too_deep');
  });

  it('refuses mapping keys that are themselves mappings or lists, where they are written', () => {
    const text = THREE_TIER.replace('    restorePointInterval: 15m\n', '    ? { restorePointInterval: 15m }\n    : 1\n');
    expectError(text, 'collection_key', '', '{ restorePointInterval');
  });

  it('refuses several documents in one body, pointing at the second', () => {
    const error = only(`${THREE_TIER}---\nkind: Runbook\n`);
    assert.equal(error.code, 'multiple_documents');
    assert.equal(error.line, THREE_TIER.split('\n').length);
  });

  it('refuses bodies that are not a YAML mapping or not YAML at all', () => {
    for (const text of ['- a\n- b\n', 'just words', '42', '{"apiVersion": "dr.example.io/v1alpha1",', '\u0000\u0001\u0002', '', '   \n']) {
      const error = only(text);
      assert.ok(['not_a_mapping', 'empty'].includes(error.code) || error.code.startsWith('yaml_'), `${JSON.stringify(text)}: ${error.code}`);
      assert.ok(error.line >= 1 && error.column >= 1);
    }
  });
});
