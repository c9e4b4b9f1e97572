import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { atChaosSize } from '../harness/crashes';
import { planRunbook } from '../../runbooks/planner';
import { validateRunbook } from '../../runbooks/validate';
import { malformedRunbook } from './runbook-malformed';

/** 5,000 under `npm run chaos`: the validator and the planner take some 8 ms a document, most of it parsing YAML. */
const WANTED_MALFORMED = atChaosSize(5_000, 1_500);

describe('runbook validator under fuzzing', () => {
  it(`answers ${WANTED_MALFORMED} generated malformed documents with located errors and never throws`, () => {
    let malformed = 0;
    let valid = 0;
    const codes = new Map<string, number>();
    for (let n = 0; malformed < WANTED_MALFORMED; n++) {
      assert.ok(n < WANTED_MALFORMED * 2, 'the generator produces too few malformed documents');
      const text = malformedRunbook(n);
      let result;
      try {
        result = validateRunbook(text);
      } catch (error) {
        assert.fail(`case ${n} threw: ${String(error)}`);
      }
      assert.equal(result.ok, result.errors.length === 0, `case ${n}`);
      if (result.ok) {
        valid++;
        assert.ok(result.runbook, `case ${n}: valid without a runbook`);
        // Whatever the validator accepts, the planner must be able to plan.
        const plan = planRunbook(result.runbook);
        assert.ok(plan.rtoEstimateMs > 0 && plan.rtoWorstCaseMs >= plan.rtoEstimateMs, `case ${n}: implausible plan`);
        continue;
      }
      malformed++;
      const lineCount = text.split('\n').length;
      for (const e of result.errors) {
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
        assert.notEqual(e.code, 'internal', `case ${n}: ${e.message}`);
        assert.ok(e.line >= 1 && e.line <= lineCount + 1 && e.column >= 1, `case ${n}: bad location ${e.line}:${e.column}`);
        assert.ok(e.message.length > 0 && typeof e.path === 'string', `case ${n}`);
      }
    }
    // The generator must reach every layer of the validator, not only the YAML parser.
    for (const code of ['unknown_key', 'invalid_type', 'unknown_vm', 'dependency_cycle', 'vm_in_two_groups', 'duplicate_name', 'multiple_documents', 'not_a_mapping']) {
      assert.ok((codes.get(code) ?? 0) > 0, `no case produced ${code}: ${JSON.stringify([...codes])}`);
    }
    assert.ok(valid > 0 && valid < malformed, `${valid} of the generated documents were valid`);
  });
});
