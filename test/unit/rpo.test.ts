import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rpoNow } from '../../api/rpo';

describe('a domain\'s RPO against its target', () => {
  const now = Date.parse('2026-11-30T10:00:00Z');
  it('is unknown without an answer from protection, never zero', () => {
    assert.equal(rpoNow(null, 30, now), null);
    assert.equal(rpoNow(undefined, undefined, now), null);
  });
  it('is the time since every write was known durable, rising while nothing more is', () => {
    const protection = { lagMs: 200, durableAsOf: now - 4_000 };
    assert.deepEqual(rpoNow(protection, 30, now), { seconds: 4, durableAsOf: '2026-11-30T09:59:56.000Z', targetSeconds: 30, breached: false });
    assert.deepEqual(rpoNow(protection, 30, now + 27_000), { seconds: 31, durableAsOf: '2026-11-30T09:59:56.000Z', targetSeconds: 30, breached: true });
  });
  it('is the measured lag before any run said how far writes are durable', () => {
    assert.deepEqual(rpoNow({ lagMs: 31_000 }, 30, now), { seconds: 31, durableAsOf: null, targetSeconds: 30, breached: true });
    assert.deepEqual(rpoNow({ lagMs: 30_000 }, 30, now), { seconds: 30, durableAsOf: null, targetSeconds: 30, breached: false });
    assert.deepEqual(rpoNow({ lagMs: 3_600_000 }, undefined, now), { seconds: 3600, durableAsOf: null, targetSeconds: null, breached: false });
  });
});
