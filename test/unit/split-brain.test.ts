import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { activeDomainVms, nextConflict, type ConflictRecord } from '../../datapath/conflict';
import { sideCopyName } from '../../workflows/resolve-conflict-messages';
import type { Vm } from '../../sites/provider';
import { siteVm } from '../fixtures/site-vms';

const vm = (name: string, overrides: Partial<Vm> = {}): Vm => siteVm(name, { powerState: 'poweredOn', metadata: { protectedDomain: 'demo' }, ...overrides });

describe('split-brain detection and side copies', () => {
  it('counts running, active workload VMs tagged with a domain, never appliances, representation VMs or deactivated copies', () => {
    const vms = [
      vm('web-1'),
      vm('db-1'),
      vm('off-1', { powerState: 'poweredOff' }),
      vm('stale-1', { metadata: { protectedDomain: 'demo', drState: 'inactive' } }),
      vm('rocva-demo-1', { kind: 'rocva', metadata: { role: 'recovery appliance' } }),
      vm('rep-web-1', { kind: 'representation', metadata: { representing: 'web-1', protectedDomain: 'demo' } }),
      vm('other-1', { metadata: { protectedDomain: 'other' } }),
      vm('untagged-1', { metadata: {} }),
    ];
    assert.deepEqual([...activeDomainVms(vms, { running: true })], [
      ['demo', ['db-1', 'web-1']],
      ['other', ['other-1']],
    ]);
    assert.deepEqual(activeDomainVms(vms, { domain: 'demo' }).get('demo'), ['db-1', 'off-1', 'web-1'], 'a powered-off copy is still stale');
  });

  it('keeps a conflict\'s first detection time and rewrites the record only when what it says changes', () => {
    const found = { domain: 'demo', site: 'primary', vms: ['db-1', 'web-1'], owner: { site: 'recovery', epoch: 2 } };
    const first = nextConflict(undefined, found, 1_000)!;
    assert.deepEqual({ since: first.since, detectedAt: first.detectedAt, vms: first.vms }, { since: 1_000, detectedAt: 1_000, vms: ['db-1', 'web-1'] });
    assert.equal(nextConflict(first, found, 2_000), undefined, 'an unchanged conflict is not rewritten');
    const grown = nextConflict(first, { ...found, vms: ['app-1', 'db-1', 'web-1'] }, 3_000)!;
    assert.deepEqual({ since: grown.since, detectedAt: grown.detectedAt }, { since: 1_000, detectedAt: 3_000 });
    const newEpoch: ConflictRecord = nextConflict(first, { ...found, owner: { site: 'recovery', epoch: 3 } }, 4_000)!;
    assert.equal(newEpoch.since, 4_000, 'a conflict against a later epoch is a new one');
  });

  it('names a side copy after its site and conflict, as a key-safe deterministic name', () => {
    assert.equal(sideCopyName('primary', Date.parse('2026-11-29T17:00:00.123Z')), 'primary-2026-11-29T17-00-00-123Z');
  });
});
