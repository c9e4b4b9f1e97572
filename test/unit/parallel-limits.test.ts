import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { limited } from '../../common/parallel';

describe('limited', () => {
  it('runs at most `limit` at a time, in the order given, and frees the slot of one that fails', async () => {
    const run = limited(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const results = await Promise.allSettled(
      [0, 1, 2, 3, 4, 5].map((i) =>
        run(async () => {
          started.push(i);
          most = Math.max(most, ++running);
          await new Promise((resolve) => setTimeout(resolve, 5));
          running--;
          if (i === 1) throw new Error('failed');
          return i;
        }),
      ),
    );
    assert.equal(most, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('lets one that waits give up its place when its signal aborts, and runs the rest in order', async () => {
    const run = limited(1);
    let release!: () => void;
    const first = run(() => new Promise<string>((resolve) => (release = () => resolve('first'))));
    const abort = new AbortController();
    const started: string[] = [];
    const waited: string[] = [];
    const abandoned = run(() => Promise.resolve(void started.push('abandoned')), { signal: abort.signal, onWait: () => waited.push('abandoned') });
    const last = run(() => Promise.resolve(void started.push('last')), { onWait: () => waited.push('last') });
    abort.abort(new Error('cancelled while waiting'));
    await assert.rejects(abandoned, /cancelled while waiting/);
    release();
    assert.equal(await first, 'first');
    await last;
    assert.deepEqual(started, ['last']);
    assert.deepEqual(waited, ['abandoned', 'last'], 'each told that it waits for a turn');
    await assert.rejects(run(() => Promise.resolve('never'), { signal: abort.signal }), /cancelled while waiting/, 'an aborted signal does not wait at all');
    assert.equal(await run(() => Promise.resolve('free')), 'free', 'the slot is free again');
  });
});
