import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowedRequests, decide, DOMAIN_MODES, DOMAIN_REQUESTS, type DomainMode, type DomainRequest } from '../../common/domain-modes';

/** The design's table, row by row: the mode after success, `=` for a completion, 409 for a refusal. */
const EXPECTED: Record<DomainMode, Partial<Record<DomainRequest, string>>> = {
  Protected: { 'power-on': '', failover: '→Running in Failover', 'continuous-failover': '→Continuous Rehydration in Progress', drill: '', restore: '' },
  'Continuous Rehydration in Progress': { failover: '= continuous-failover →Running in Failover', drill: '' },
  'Running in Failover': { 'power-on': '', failback: '→Protected', 'continuous-failback': '→Continuous Failback in Progress', 'permanent-failover': '→Protected', drill: '', restore: '' },
  'Continuous Failback in Progress': { failback: '= continuous-failback →Protected', drill: '' },
};

const describeDecision = (request: DomainRequest, mode: DomainMode, conflictSince?: number) => {
  const d = decide(request, { mode, ...(conflictSince !== undefined ? { conflictSince } : {}) });
  if (!d.allowed) return '409';
  return [d.completes ? `= ${d.completes}` : '', d.becomes ? `→${d.becomes}` : ''].filter(Boolean).join(' ');
};

describe('domain modes', () => {
  it('allow exactly what the table allows, from every mode', () => {
    for (const mode of DOMAIN_MODES) {
      for (const request of DOMAIN_REQUESTS) {
        assert.equal(describeDecision(request, mode), EXPECTED[mode][request] ?? '409', `${request} from ${mode}`);
      }
    }
  });

  it('refuse what a split-brain conflict blocks, whatever the mode, and allow permanent failover', () => {
    for (const mode of DOMAIN_MODES) {
      for (const request of ['continuous-failover', 'failback', 'continuous-failback', 'restore'] as const) assert.equal(describeDecision(request, mode, 1), '409', `${request} in conflict from ${mode}`);
      assert.equal(describeDecision('drill', mode, 1), '', 'a drill touches nothing in production');
      assert.equal(describeDecision('permanent-failover', mode, 1), '→Protected');
    }
    // Protected with a conflict: the recovery site, fenced by a forced failback, came back running stale copies.
    assert.equal(describeDecision('failover', 'Protected', 1), '409', 'no failover onto a site that runs stale copies of the domain');
    assert.equal(describeDecision('failover', 'Continuous Rehydration in Progress', 1), '= continuous-failover →Running in Failover', 'a disaster still completes a continuous failover');
  });

  it('allow resolving a conflict exactly while one is open, in every mode, and name the conflict when refusing for it', () => {
    for (const mode of DOMAIN_MODES) {
      assert.equal(describeDecision('resolve-conflict', mode, 1), '', `resolve-conflict in conflict from ${mode}`);
      assert.equal(describeDecision('resolve-conflict', mode), '409', `resolve-conflict without a conflict from ${mode}`);
    }
    const since = Date.parse('2026-11-29T17:00:00.000Z');
    const refused = decide('failback', { mode: 'Running in Failover', conflictSince: since });
    assert.ok(!refused.allowed && refused.reason.includes('with a split-brain conflict open since 2026-11-29T17:00:00.000Z'), JSON.stringify(refused));
    assert.ok(!refused.allowed && refused.reason.endsWith('allowed now: power-on, permanent-failover, drill, resolve-conflict'), JSON.stringify(refused));
    const nothingToResolve = decide('resolve-conflict', { mode: 'Running in Failover' });
    assert.ok(!nothingToResolve.allowed && nothingToResolve.reason.includes('without a split-brain conflict open'));
  });

  it('name the mode and what it allows when refusing', () => {
    const refused = decide('failback', { mode: 'Protected' });
    assert.ok(!refused.allowed && /failback is not allowed while the domain is Protected; allowed now: power-on, failover, continuous-failover, drill, restore/.test(refused.reason));
    assert.deepEqual(allowedRequests({ mode: 'Continuous Failback in Progress' }), ['failback', 'drill']);
  });
});
