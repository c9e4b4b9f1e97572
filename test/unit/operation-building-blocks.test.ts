import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { CANNOT_HEAL, canHeal, failure, FAILURES } from '../../common/failures';
import { powerOnOrder, PowerOnOrderError } from '../../runbooks/power-on-order';
import { PROTECTION_DEFAULTS, protectionPolicy } from '../../runbooks/protection-policy';
import type { RunbookGroup } from '../../runbooks/schema';
import { protectionWorkflowOptions } from '../../workflows/phases/protection';
import { shutdownBatches } from '../../workflows/phases/shutdown';
import { domainOperationsWorkflowId, operationWorkflowId, parseOperationWorkflowId, powerOnGroupWorkflowId, protectionWorkflowId } from '../../workflows/workflow-ids';

const group = (name: string, vms: string[], dependsOn: string[] = []) => ({ name, dependsOn, vms: vms.map((vm) => ({ name: vm })) }) as unknown as RunbookGroup;

describe('power-on order', () => {
  it('starts each group after its dependencies, in waves that keep the runbook order', () => {
    const groups = [group('web', [], ['app']), group('db', []), group('app', [], ['db']), group('cache', []), group('batch', [], ['db'])];
    assert.deepEqual(
      powerOnOrder(groups).map((g) => g.name),
      ['db', 'cache', 'app', 'batch', 'web'],
    );
  });

  it('refuses a dependency on an unknown group and a cycle, by name, instead of looping', () => {
    assert.throws(() => powerOnOrder([group('app', [], ['database'])]), (e: unknown) => e instanceof PowerOnOrderError && /app depends on database, which is not a group/.test(e.message));
    assert.throws(
      () => powerOnOrder([group('db', []), group('a', [], ['b']), group('b', [], ['a'])]),
      (e: unknown) => e instanceof PowerOnOrderError && /a, b depend on each other in a cycle/.test(e.message),
    );
  });
});

describe('shutdown in reverse power-on order', () => {
  it('stops VMs outside the plan first, then the groups last started first, skipping VMs the domain lacks', () => {
    const groups = [group('app', ['app-1', 'app-2'], ['db']), group('db', ['db-1'])];
    assert.deepEqual(shutdownBatches(groups, ['db-1', 'app-1', 'app-2', 'tools-1']), [['tools-1'], ['app-1', 'app-2'], ['db-1']]);
    assert.deepEqual(shutdownBatches(groups, ['db-1']), [['db-1']]);
  });
});

describe('protection start', () => {
  it('uses the runbook policy, or the one set of defaults, with one id per site and epoch', () => {
    assert.deepEqual(protectionPolicy(), { protectionWindowMs: 7 * 86_400_000, restorePointIntervalMs: 15 * 60_000 });
    assert.deepEqual(protectionPolicy({ protectionWindow: '1d', restorePointInterval: '1m' }), { protectionWindowMs: 86_400_000, restorePointIntervalMs: 60_000 });
    assert.equal(PROTECTION_DEFAULTS.protectionWindow, '7d');
    const fresh = protectionWorkflowOptions({ domain: 'demo', site: 'primary', epoch: 1, vms: ['db-1'], reason: 'first start' });
    assert.equal(fresh.workflowId, protectionWorkflowId('demo', 'primary', 1));
    assert.deepEqual(fresh.args[0], { domain: 'demo', site: 'primary', vms: ['db-1'], protectionWindowMs: 7 * 86_400_000, restorePointIntervalMs: 900_000 });
    const resumed = protectionWorkflowOptions({ domain: 'demo', site: 'recovery', epoch: 3, vms: ['db-1'], resumeAt: { cursor: 42 }, reason: 'resumed by failover/demo/x' });
    assert.deepEqual(resumed.args[0].start, { epoch: 3, cursor: 42 });
    assert.equal(resumed.args[0].initialSync, true);
    assert.match(resumed.staticSummary, /^Protection of demo at recovery \(epoch 3\): resumed by failover\/demo\/x$/);
  });
});

describe('workflow ids', () => {
  it('builds and parses operation ids in one place', () => {
    const id = operationWorkflowId('failover', 'demo', Date.parse('2026-11-29T17:00:00.000Z'));
    assert.equal(id, 'failover/demo/2026-11-29T17:00:00.000Z');
    assert.deepEqual(parseOperationWorkflowId(id), { operation: 'failover', domain: 'demo', startedAt: '2026-11-29T17:00:00.000Z' });
    assert.equal(parseOperationWorkflowId(powerOnGroupWorkflowId(id, 'db')), undefined, 'a group child is not an operation');
    assert.equal(parseOperationWorkflowId(domainOperationsWorkflowId('demo')), undefined);
    assert.equal(parseOperationWorkflowId('protect/demo/primary/epoch-1'), undefined);
  });
});

describe('failure catalogue', () => {
  it('says once which failures retrying cannot heal, and failures carry it', () => {
    assert.ok(CANNOT_HEAL.includes('StaleEpoch') && CANNOT_HEAL.includes('JournalGap') && !CANNOT_HEAL.includes('SiteUnavailable'));
    assert.equal(canHeal('SiteUnavailable'), true);
    assert.equal(canHeal('VmNotFound'), false);
    assert.equal(canHeal('SomethingUnforeseen'), true, 'an unknown type is retried: only what is known not to heal stops at once');
    const f = failure('NotOwner', 'primary does not own demo');
    assert.ok(f instanceof ApplicationFailure && f.nonRetryable && f.type === 'NotOwner');
    assert.equal(failure('ReplicationBehind', 'resyncing').nonRetryable, false);
    for (const [type, { meaning }] of Object.entries(FAILURES)) assert.ok(meaning.length > 10, `${type} says what it means`);
  });
});
