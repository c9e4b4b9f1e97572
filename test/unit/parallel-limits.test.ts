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
});
