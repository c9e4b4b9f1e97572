/**
 * The workflow code a worker runs. Bundling the workflows (webpack) takes seconds of CPU at every
 * worker start: `npm start` and `npm test` bundle once and name the file in DR_WORKFLOW_BUNDLE,
 * so that a worker restarted after a crash polls again within a second. Without it, a worker
 * bundles the source itself, as a worker deployed on its own does.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

const WORKFLOWS = path.join(__dirname, '../workflows/index.ts');

export type WorkflowCode = { workflowBundle: { codePath: string } } | { workflowsPath: string };

export function workflowCode(bundle = process.env.DR_WORKFLOW_BUNDLE): WorkflowCode {
  return bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS };
}

/** Bundles the workflows' source into `file`, for DR_WORKFLOW_BUNDLE. */
export async function writeWorkflowBundle(file: string): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS, logger: new DefaultLogger('WARN') });
  writeFileSync(file, code);
}
