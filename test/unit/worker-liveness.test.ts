import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { State } from '@temporalio/worker';
import { createLogger } from '../../common/logger';
import { serveLiveness, type Liveness } from '../../worker/liveness';

describe('the worker liveness probe', () => {
  let state: State = 'INITIALIZED';
  let liveness: Liveness;
  before(async () => {
    liveness = await serveLiveness({ host: '127.0.0.1', port: 0 }, () => state, createLogger('liveness-test', new Writable({ write: (_c, _e, done) => done() })));
  });
  after(() => liveness.close());

  const probe = async (path = '/healthz') => {
    const response = await fetch(`http://127.0.0.1:${liveness.port}${path}`);
    return { status: response.status, body: (await response.json()) as { state?: string } };
  };

  it('answers 200 only while the worker runs: 503 before it polls, while it stops and drains, and once stopped or failed', async () => {
    const seen: Array<[State, number]> = [];
    for (const next of ['INITIALIZED', 'RUNNING', 'STOPPING', 'DRAINING', 'DRAINED', 'STOPPED', 'FAILED'] as State[]) {
      state = next;
      const { status, body } = await probe();
      assert.equal(body.state, next);
      seen.push([next, status]);
    }
    assert.deepEqual(seen, [
      ['INITIALIZED', 503],
      ['RUNNING', 200],
      ['STOPPING', 503],
      ['DRAINING', 503],
      ['DRAINED', 503],
      ['STOPPED', 503],
      ['FAILED', 503],
    ]);
  });

  it('serves nothing else', async () => {
    assert.equal((await probe('/')).status, 404);
  });
});
