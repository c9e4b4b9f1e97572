/** The liveness probe of a real worker process (worker/main.ts with DR_WORKER_HEALTH_PORT), as an orchestrator would probe it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort } from '../../stack/ports';
import { useTestStack } from '../harness/stack';
import { TestWorkers } from '../harness/workers';

describe('a worker process answers its liveness probe while it runs, and stops answering 200 when told to stop', () => {
  const storage = useTestStack();

  it('200 with the worker polling; after SIGTERM, 503 or no answer, then the worker is gone', async () => {
    const port = await freePort();
    const workers = new TestWorkers(storage.stack, 'no site');
    const worker = await workers.orchestration({ DR_WORKER_HEALTH_PORT: String(port) });
    try {
      const running = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(running.status, 200);
      assert.deepEqual(await running.json(), { status: 'ok', state: 'RUNNING' });

      const exited = worker.stop(30_000);
      const answers: Array<number | 'refused'> = [];
      while (!worker.hasExited()) {
        answers.push(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 'refused' as const));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await exited;
      assert.equal(await worker.exited, 0, 'a clean stop');
      // A probe sent before the signal reached the worker may still see it running; after that, never again.
      const firstNotRunning = answers.findIndex((a) => a !== 200);
      assert.ok(firstNotRunning >= 0, `the probe never stopped answering 200: ${answers.join(' ')}`);
      assert.ok(answers.slice(firstNotRunning).every((a) => a !== 200), answers.join(' '));
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'nothing listens once the worker is gone');
    } finally {
      await workers.stopAll();
    }
  });
});
