import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowCode } from '../../worker/workflow-code';
import { dataConverter } from '../../common/payload-compression';
import { eventually } from './eventually';

const HISTORY_FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

/**
 * Replays the closed executions of `workflowTypes` against the current workflow code and returns
 * how many replayed; the first determinism error throws. With DR_RECORD_HISTORIES=1 it also
 * writes them to test/fixtures/histories, which test/unit/workflow-replay.test.ts replays against
 * every future version of the code.
 */
export async function replayClosedHistories(client: Client, workflowTypes: string[]): Promise<number> {
  const query = `WorkflowType IN (${workflowTypes.map((t) => `'${t}'`).join(', ')}) AND ExecutionStatus != 'Running'`;
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ ...workflowCode(), dataConverter }, client.workflow.list({ query }).intoHistories())) {
    if (result.error) throw new Error(`${result.workflowId}: ${String(result.error)}`);
    replayed++;
  }
  if (process.env.DR_RECORD_HISTORIES === '1') {
    mkdirSync(HISTORY_FIXTURES, { recursive: true });
    for await (const w of client.workflow.list({ query })) {
      const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      writeFileSync(path.join(HISTORY_FIXTURES, `${w.workflowId.replace(/[^A-Za-z0-9-]+/g, '_')}.json`), `{"workflowId":${JSON.stringify(w.workflowId)},"history":${historyToJSON(history)}}\n`);
    }
  }
  return replayed;
}

/**
 * The workflow task timeout a workflow was started with, in seconds: how long a worker taking it
 * over has to replay it. Waits for it to exist: a desk names the operation it starts in the same
 * workflow task that asks the server to start it.
 */
export async function workflowTaskTimeoutSeconds(client: Client, workflowId: string): Promise<number> {
  const { raw } = await eventually(`workflow ${workflowId} started`, () =>
    client.workflow
      .getHandle(workflowId)
      .describe()
      .catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      }),
  );
  return Number(raw.executionConfig?.defaultWorkflowTaskTimeout?.seconds);
}
