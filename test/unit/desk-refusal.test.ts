/** Which running operation refuses a request at the domain's desk: a drill has a slot of its own and never refuses anything. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deskRefusal, type OperationRecord } from '../../workflows/domain-operations';
import type { OperationKind } from '../../workflows/workflow-ids';

const record = (operation: OperationKind): OperationRecord => ({ workflowId: `${operation}/d/t`, operation, requestedBy: 'op', startedAt: '2026-11-30T00:00:00.000Z' });

describe('the desk refuses', () => {
  it('nothing when it is idle', () => {
    for (const operation of ['failover', 'drill', 'continuous-failover'] as const) assert.equal(deskRefusal({}, operation), undefined);
  });
  it('a drill beside a second drill, or beside any operation but a continuous failover or failback', () => {
    assert.equal(deskRefusal({ drill: record('drill') }, 'drill')?.operation, 'drill');
    for (const running of ['failover', 'failback', 'power-on', 'permanent-failover', 'resolve-conflict'] as const) {
      assert.equal(deskRefusal({ running: record(running) }, 'drill')?.operation, running, `a drill while a ${running} runs`);
    }
    for (const running of ['continuous-failover', 'continuous-failback'] as const) {
      assert.equal(deskRefusal({ running: record(running) }, 'drill'), undefined, `a drill beside a ${running}`);
    }
  });
  it('never because of a drill: a disaster takes precedence', () => {
    for (const operation of ['failover', 'continuous-failover', 'failback', 'power-on'] as const) {
      assert.equal(deskRefusal({ drill: record('drill') }, operation), undefined, `${operation} while a drill runs`);
    }
    assert.equal(deskRefusal({ drill: record('drill'), running: record('continuous-failover') }, 'failover')?.operation, 'continuous-failover', 'the running operation still refuses a second one');
  });
});
