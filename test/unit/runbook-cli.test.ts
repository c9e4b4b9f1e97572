import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../../runbooks/cli';
import { THREE_TIER, THREE_TIER_PATH } from './runbook-malformed';

function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('runbook CLI', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'runbook-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('validates the example and exits 0', () => {
    const { code, out } = run(['validate', THREE_TIER_PATH]);
    assert.equal(code, 0);
    assert.match(out, /valid \(6 VMs, 3 groups, 0 warning\(s\)\)/);
  });

  it('prints each error as file:line:col: message (path) and exits 1', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, THREE_TIER.replace('      cpus: 8', '      cpu: 8'));
    const { code, err } = run(['validate', file]);
    assert.equal(code, 1);
    assert.match(err, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:29:7: unknown key "cpu"; did you mean "cpus"\\?.* \\(spec\\.vms\\[0\\]\\.cpu\\)$`, 'm'));
  });

  it('prints the plan as text or JSON', () => {
    const text = run(['plan', THREE_TIER_PATH]);
    assert.equal(text.code, 0);
    assert.match(text.out, /RTO estimate/);
    const json = run(['plan', THREE_TIER_PATH, '--json']);
    assert.equal((JSON.parse(json.out) as { runbook: string }).runbook, 'shop-three-tier');
  });

  it('checks against an inventory file when given one', () => {
    const inventory = path.join(dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ datacenters: ['dc-x'], clusters: [], resourcePools: [], datastores: [], networks: [], storagePolicies: [] }));
    const { code, err } = run(['validate', THREE_TIER_PATH, '--inventory', inventory]);
    assert.equal(code, 1);
    assert.match(err, /datacenter "dc-b" does not exist at recovery site "site-b"/);
  });

  it('explains its usage and unreadable files with exit 2', () => {
    assert.equal(run([]).code, 2);
    assert.match(run(['lint', 'x']).err, /usage: npm run runbook -- validate\|plan/);
    assert.equal(run(['validate', path.join(dir, 'missing.yaml')]).code, 2);
  });
});
