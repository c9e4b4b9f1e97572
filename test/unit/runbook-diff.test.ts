import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unifiedDiff } from '../../runbooks/diff';

const labels = { from: 'shop/1.yaml', to: 'shop/2.yaml' };
const numbered = (count: number) => Array.from({ length: count }, (_, i) => `line ${i + 1}`);

describe('runbook diff', () => {
  it('is empty for identical texts', () => {
    assert.equal(unifiedDiff('a\nb\n', 'a\nb\n', labels), '');
  });

  it('writes unified hunks with three lines of context, as diff -u does', () => {
    const before = numbered(12);
    const after = [...before];
    after[1] = 'line two';
    after.push('line 13');
    assert.equal(
      unifiedDiff(`${before.join('\n')}\n`, `${after.join('\n')}\n`, labels),
      [
        '--- shop/1.yaml', '+++ shop/2.yaml',
        '@@ -1,5 +1,5 @@', ' line 1', '-line 2', '+line two', ' line 3', ' line 4', ' line 5',
        '@@ -10,3 +10,4 @@', ' line 10', ' line 11', ' line 12', '+line 13',
        '',
      ].join('\n'),
    );
  });

  it('handles texts that are empty on either side', () => {
    assert.equal(unifiedDiff('', 'x\n', labels), '--- shop/1.yaml\n+++ shop/2.yaml\n@@ -0,0 +1,1 @@\n+x\n');
    assert.equal(unifiedDiff('x\ny\n', '', labels), '--- shop/1.yaml\n+++ shop/2.yaml\n@@ -1,2 +0,0 @@\n-x\n-y\n');
  });

  it('stays small for a one-line change in a large runbook', () => {
    const before = numbered(50_000);
    const after = [...before];
    after[25_000] = 'changed';
    const diff = unifiedDiff(before.join('\n'), after.join('\n'), labels);
    assert.equal(diff.split('\n').filter((l) => l.startsWith('-line') || l.startsWith('+')).length, 2 + 1);
  });

  it('falls back to replacing everything when the versions share almost nothing', () => {
    const diff = unifiedDiff(numbered(3_000).join('\n'), numbered(3_000).map((l) => `x${l}`).join('\n'), labels);
    assert.equal(diff.split('\n').filter((l) => l.startsWith('-line')).length, 3_000);
    assert.equal(diff.split('\n').filter((l) => l.startsWith('+xline')).length, 3_000);
  });
});
