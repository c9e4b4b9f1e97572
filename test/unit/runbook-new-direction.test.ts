import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NewDirectionError, runbookAfterPermanentFailover, runbookText } from '../../runbooks/new-direction';
import type { Runbook } from '../../runbooks/schema';
import { validateRunbook } from '../../runbooks/validate';
import { THREE_TIER_PRIMARY_INVENTORY } from '../fixtures/three-tier-inventories';
import { THREE_TIER } from './runbook-malformed';

const BY = 'requested by dr-lead at 2026-11-30T03:00:00.000Z';

function threeTier(): Runbook {
  const { runbook } = validateRunbook(THREE_TIER);
  assert.ok(runbook);
  return runbook;
}

/** The derived runbook as the API stores it: its text, validated again. */
function stored(runbook: Runbook): Runbook {
  const checked = validateRunbook(runbookText(runbook));
  assert.deepEqual(checked.errors, []);
  return checked.runbook!;
}

describe('the runbook after a permanent failover', () => {
  it('without a new recovery site: the old recovery site is the primary, the recovery sections and per-VM placement there are gone, the plan is kept', () => {
    const old = threeTier();
    const next = stored(runbookAfterPermanentFailover(old, undefined, BY));
    assert.deepEqual(next.spec.sites, { primary: 'site-b' });
    assert.equal(next.spec.placement, undefined);
    assert.equal(next.spec.rocva, undefined);
    assert.equal(next.spec.failback, undefined);
    assert.deepEqual(next.spec.networkMapping, []);
    assert.ok(next.spec.vms.every((vm) => vm.reIp === undefined && vm.datastore === undefined && vm.network === undefined), 'no VM keeps a setting that placed it at the old recovery site');
    assert.deepEqual(next.spec.powerOn, old.spec.powerOn);
    assert.deepEqual(next.spec.protection, old.spec.protection, 'protection goes on as it ran');
    assert.ok(old.spec.testNetworkMapping && old.spec.checks.length > 0, 'the example can be drilled');
    assert.deepEqual([next.spec.testNetworkMapping, next.spec.checks, next.spec.postCleanup], [undefined, [], []], 'drills ran at the old recovery site: their sections go');
    assert.ok(next.spec.vms.every((vm) => vm.testIp === undefined));
    assert.equal(next.metadata.name, old.metadata.name);
    assert.match(next.metadata.description ?? '', /^After a permanent failover requested by dr-lead at 2026-11-30T03:00:00.000Z: site-b is the primary \(retired: site-a\), no recovery site/);
  });

  it('with the old primary as the new recovery site: the failback section is the recovery side, the old recovery side the failback section, and it validates against the old primary', () => {
    const old = threeTier();
    const text = runbookText(runbookAfterPermanentFailover(old, 'site-a', BY));
    const checked = validateRunbook(text, { inventory: THREE_TIER_PRIMARY_INVENTORY });
    assert.deepEqual(checked.errors, []);
    const next = checked.runbook!;
    assert.deepEqual(next.spec.sites, { primary: 'site-b', recovery: 'site-a' });
    assert.deepEqual(next.spec.placement, old.spec.failback?.placement);
    assert.deepEqual(next.spec.networkMapping, old.spec.failback?.networkMapping);
    assert.deepEqual(next.spec.rocva?.networks, { externalReplication: 'a-replication', internal: 'a-rocva-internal', management: 'a-management' });
    assert.deepEqual(next.spec.powerOn, old.spec.failback?.powerOn);
    assert.deepEqual(next.spec.failback?.placement, old.spec.placement);
    assert.deepEqual(next.spec.failback?.networkMapping, [
      ...old.spec.networkMapping,
      { source: 'a-replication', target: 'dr-replication' },
      { source: 'a-rocva-internal', target: 'dr-rocva-internal' },
      { source: 'a-management', target: 'dr-management' },
    ]);
    assert.deepEqual(checked.warnings, [], 'the RocVA of a failback to the new primary has its networks there');
    assert.deepEqual(next.spec.failback?.powerOn, old.spec.powerOn);
  });

  it('refuses what it cannot derive, saying what to add or to name instead', () => {
    const old = threeTier();
    assert.throws(() => runbookAfterPermanentFailover(old, 'site-c', BY), (e: Error) => e instanceof NewDirectionError && /describes no placement at site-c: name a runbook for the new direction .* in "newRunbook"/.test(e.message));
    const noPlacement: Runbook = { ...old, spec: { ...old.spec, failback: { ...old.spec.failback!, placement: undefined } } };
    assert.throws(() => runbookAfterPermanentFailover(noPlacement, 'site-a', BY), /has no spec.failback.placement/);
    const unmapped: Runbook = { ...old, spec: { ...old.spec, failback: { ...old.spec.failback!, networkMapping: old.spec.failback!.networkMapping.filter((m) => m.source !== 'dr-management') } } };
    assert.throws(() => runbookAfterPermanentFailover(unmapped, 'site-a', BY), /the RocVA networks dr-management of runbook .* have no mapping to site-a/);
    const storageOnly = stored(runbookAfterPermanentFailover(old, undefined, BY));
    assert.throws(() => runbookAfterPermanentFailover(storageOnly, undefined, BY), /names no recovery site/);
  });
});
