import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rpoNow } from '../../api/rpo';

describe('a domain\'s RPO against its target', () => {
  it('is unknown without an answer from protection, never zero', () => {
    assert.equal(rpoNow(null, 30), null);
    assert.equal(rpoNow(undefined, undefined), null);
  });
  it('is breached only past a target it has', () => {
    assert.deepEqual(rpoNow({ lagMs: 31_000 }, 30), { seconds: 31, targetSeconds: 30, breached: true });
    assert.deepEqual(rpoNow({ lagMs: 30_000 }, 30), { seconds: 30, targetSeconds: 30, breached: false });
    assert.deepEqual(rpoNow({ lagMs: 3_600_000 }, undefined), { seconds: 3600, targetSeconds: null, breached: false });
  });
});
