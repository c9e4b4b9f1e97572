/**
 * Histories recorded from earlier versions of the workflow code (test/fixtures/histories), replayed
 * against the current code. An incompatible change to a workflow fails here, before it can break
 * operations that are running in production: guard it with patched() instead.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { workflowCode } from '../../worker/workflow-code';
import { dataConverter } from '../../common/payload-compression';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

describe('workflow replay of recorded histories', () => {
  it('replays every recorded history without a determinism error', async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 0, 'recorded histories exist');
    const histories = files.map((f) => {
      const { workflowId, history } = JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')) as { workflowId: string; history: unknown };
      return { workflowId, history: historyFromJSON(history) };
    });
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ ...workflowCode(), dataConverter }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, files.length);
  });
});
