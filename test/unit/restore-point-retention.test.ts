import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { selectRetained, windowOnly, type RetentionPolicy } from '../../common/retention';
import { restorePointId } from '../../datapath/keys';
import { retentionPolicy } from '../../runbooks/domain-retention';
import { validateRunbook } from '../../runbooks/validate';
import { type EditableRunbook, THREE_TIER } from './runbook-malformed';

/** Every point for 1 s, the newest of each 1 s bucket for 5 s, the newest of each 5 s bucket for 20 s. */
const POLICY: RetentionPolicy = {
  tiers: [
    { everyMs: 'all', forMs: 1_000 },
    { everyMs: 1_000, forMs: 5_000 },
    { everyMs: 5_000, forMs: 20_000 },
  ],
  keepTested: false,
};
const NOW = 100_000;
const POINTS = Object.entries({ j: 100_500, a: 99_500, b: 99_100, c: 98_900, d: 98_200, e: 96_500, f: 94_999, g: 92_000, i: 80_000, h: 79_999 }).map(([id, timestamp]) => ({ id, timestamp }));

describe('retention selection: which restore points a tiered policy keeps', () => {
  it('keeps, per tier, the points younger than its span, bucketed ones only when newest in their bucket; pins keep anything', () => {
    const decisions = selectRetained(POINTS, new Set(['g']), POLICY, NOW);
    assert.deepEqual(
      decisions.map((d) => [d.id, d.kept, d.tiers, d.pinned, d.expiresAt]),
      [
        // In the future (a clock ahead of ours): young for every tier and newest in each of its buckets.
        ['j', true, [0, 1, 2], false, 120_500],
        ['a', true, [0, 1, 2], false, 119_500],
        ['b', true, [0], false, 100_100],
        // 1.1 s old: only the 1 s bucket [98 000, 99 000) keeps it, where it is newer than d.
        ['c', true, [1], false, 103_900],
        ['d', false, [], false, null],
        ['e', true, [1], false, 101_500],
        // 5.001 s old: past the 1 s tier's 5 s; newest of the 5 s bucket [90 000, 95 000).
        ['f', true, [2], false, 114_999],
        ['g', true, [], true, null],
        // Exactly 20 s old is no longer younger than 20 s.
        ['i', false, [], false, null],
        ['h', false, [], false, null],
      ],
    );
  });

  it('is stable: the points it keeps, selected again, are all kept', () => {
    const kept = selectRetained(POINTS, new Set(['g']), POLICY, NOW).filter((d) => d.kept);
    const again = selectRetained(POINTS.filter((p) => kept.some((k) => k.id === p.id)), new Set(['g']), POLICY, NOW);
    assert.ok(again.every((d) => d.kept));
    assert.equal(again.length, 7);
  });

  it('breaks a tie of timestamps by log position, numerically', () => {
    const points = [restorePointId(1, 5, 17), restorePointId(1, 5, 9)].map((id) => ({ id, timestamp: 50_000 }));
    const decisions = selectRetained(points, new Set(), { tiers: [{ everyMs: 1_000, forMs: 5_000 }], keepTested: false }, 51_000);
    assert.deepEqual(decisions.filter((d) => d.kept).map((d) => d.id), [restorePointId(1, 5, 17)]);
  });

  it('without a policy keeps every point younger than the protection window, as before retention', () => {
    assert.deepEqual(selectRetained(POINTS, new Set(), windowOnly(1_000), NOW).filter((d) => d.kept).map((d) => d.id), ['j', 'a', 'b']);
  });
});

/** The three-tier example with `spec.protection` replaced. */
function withProtection(protection: Record<string, unknown>): string {
  const runbook = parse(THREE_TIER) as EditableRunbook;
  (runbook.spec as unknown as { protection: unknown }).protection = protection;
  return stringify(runbook);
}

describe('spec.protection.retention in the runbook', () => {
  it('reads as tiers in milliseconds', () => {
    const text = withProtection({ protectionWindow: '7d', retention: { tiers: [{ every: 'all', for: '1h' }, { every: '1h', for: '1d' }, { every: '1d', for: '7d' }], keepTested: true } });
    const checked = validateRunbook(text);
    assert.deepEqual(checked.errors, []);
    assert.deepEqual(retentionPolicy(checked.runbook!.spec.protection.retention!), {
      tiers: [
        { everyMs: 'all', forMs: 3_600_000 },
        { everyMs: 3_600_000, forMs: 86_400_000 },
        { everyMs: 86_400_000, forMs: 7 * 86_400_000 },
      ],
      keepTested: true,
    });
  });

  it('refuses a tier longer than the protection window, a bucket longer than its tier, and a malformed bucket, each at its line and column', () => {
    const text = withProtection({ protectionWindow: '1d', retention: { tiers: [{ every: 'all', for: '1h' }, { every: '1h', for: '2d' }, { every: '2h', for: '1h' }] } });
    const errors = validateRunbook(text).errors.map((e) => [e.code, e.path, text.split('\n')[e.line - 1].slice(e.column - 1)]);
    assert.deepEqual(errors, [
      ['retention_beyond_window', 'spec.protection.retention.tiers[1].for', '2d'],
      ['invalid_duration', 'spec.protection.retention.tiers[2].every', '2h'],
    ]);
    const malformed = withProtection({ retention: { tiers: [{ every: 'hourly', for: '1h' }] } });
    const shape = validateRunbook(malformed).errors;
    assert.equal(shape.length, 1);
    assert.equal(shape[0].path, 'spec.protection.retention.tiers[0].every');
    assert.ok(malformed.split('\n')[shape[0].line - 1].slice(shape[0].column - 1).startsWith('hourly'));
  });
});
