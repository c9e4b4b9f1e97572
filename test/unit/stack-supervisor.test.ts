import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startChild } from '../../common/child-process';
import { supervise } from '../../stack/supervisor';

describe('the embedded stack\'s supervisor', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-supervisor-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const crasher = () => startChild({ name: 'crasher', command: '/bin/sh', args: ['-c', 'echo "cannot open /var/lib/thing: no space left"; exit 3'], logFile: path.join(dir, 'crasher.log') });

  it('names a dying component with its log\'s last lines, restarts it with a growing backoff, and gives up past its bound', async () => {
    const said: string[] = [];
    let restarts = 0;
    const gaveUp = await new Promise<string>((resolve) =>
      supervise(
        crasher(),
        () => {
          restarts++;
          return Promise.resolve(crasher());
        },
        { say: (m) => said.push(m), stopping: () => false, giveUp: resolve, policy: { maxRestarts: 2, windowMs: 60_000, backoffMs: 10, maxBackoffMs: 1_000, healthyAfterMs: 60_000 } },
      ),
    );
    assert.equal(gaveUp, 'crasher');
    assert.equal(restarts, 2);
    assert.match(said[0], /^crasher died with code 3; see \S+crasher\.log; its last lines:\n\s+cannot open \/var\/lib\/thing: no space left/);
    assert.deepEqual(
      said.filter((m) => m.startsWith('restarting')),
      ['restarting crasher in 0.01 s (restart 1 of at most 2 within 1 min)', 'restarting crasher in 0.02 s (restart 2 of at most 2 within 1 min)'],
    );
    assert.equal(said.at(-1), 'crasher died 3 times within 1 min: giving up');
  });

  it('leaves a component alone once the stack is stopping', async () => {
    const said: string[] = [];
    const child = crasher();
    supervise(child, () => assert.fail('no restart while stopping'), { say: (m) => said.push(m), stopping: () => true, giveUp: () => assert.fail('no giving up') });
    await child.exited;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(said, []);
  });
});
