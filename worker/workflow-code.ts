/**
 * The workflow code a worker runs. Bundling the workflows (webpack) takes seconds of CPU at every
 * worker start: `npm start` and `npm test` bundle once and name the file in DR_WORKFLOW_BUNDLE,
 * so that a worker restarted after a crash polls again within a second. Without it, a worker
 * bundles the source itself, as a worker deployed on its own does.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type BundleOptions } from '@temporalio/worker';

const WORKFLOWS = path.join(__dirname, '../workflows/index.ts');

/** ECMAScript that Node 20 runs natively, object spread and optional chaining included. */
const WORKFLOW_TARGET = 'es2022';

type WebpackConfig = Parameters<NonNullable<BundleOptions['webpackConfigHook']>>[0];

/**
 * The SDK compiles workflow TypeScript for ES2017, turning every object spread into a helper call:
 * a worker taking over a 10,000-VM drill replays its history in 2.9 s so, and in 2.2 s with the
 * spreads native (bench/results/README.md, "Replaying a large operation"). Replay must stay well
 * inside the workflow task timeout.
 */
function compileForNode(config: WebpackConfig): WebpackConfig {
  let found = false;
  for (const rule of config.module?.rules ?? []) {
    const use = rule && typeof rule === 'object' ? rule.use : undefined;
    const options = use && typeof use === 'object' && !Array.isArray(use) ? use.options : undefined;
    const jsc = options && typeof options === 'object' ? (options as { jsc?: { target?: string } }).jsc : undefined;
    if (jsc) {
      jsc.target = WORKFLOW_TARGET;
      found = true;
    }
  }
  if (!found) throw new Error('the workflow bundler has no swc rule to set the target of: the Temporal SDK changed how it compiles workflows');
  return config;
}

/** Every bundle of workflow code: the product's, the replay tests', the benches' no-op workflows. */
export const WORKFLOW_BUNDLER_OPTIONS = { webpackConfigHook: compileForNode };

export type WorkflowCode = { workflowBundle: { codePath: string } } | { workflowsPath: string; bundlerOptions: typeof WORKFLOW_BUNDLER_OPTIONS };

export function workflowCode(bundle = process.env.DR_WORKFLOW_BUNDLE): WorkflowCode {
  return bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: WORKFLOWS, bundlerOptions: WORKFLOW_BUNDLER_OPTIONS };
}

/** Bundles the workflows' source into `file`, for DR_WORKFLOW_BUNDLE. */
export async function writeWorkflowBundle(file: string): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS, logger: new DefaultLogger('WARN'), ...WORKFLOW_BUNDLER_OPTIONS });
  writeFileSync(file, code);
}
