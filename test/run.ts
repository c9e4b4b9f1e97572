/**
 * `npm test`: every *.test.ts under test/ in node's built-in test runner (spec reporter, whose
 * summary CI reads). Arguments narrow the run: `npm test -- unit` or `npm test -- test/unit/x.test.ts`.
 * Integration tests start their own Temporal and SeaweedFS servers through test/harness.
 */
import { spawn } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TYPESCRIPT_LOADER } from '../common/child-process';
import { COMPILED_PROGRAMS_VARIABLE } from '../common/programs';
import { compilePrograms } from '../stack/compile-programs';
import { writeWorkflowBundle } from '../worker/workflow-code';

const TEST_ROOT = __dirname;

function findTests(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return findTests(full);
    return name.endsWith('.test.ts') ? [full] : [];
  });
}

const filters = process.argv.slice(2);
const files = findTests(TEST_ROOT)
  // Relative to the checkout: a worktree's own folder name (wt-drill-e2e) must not match every file.
  .filter((f) => filters.length === 0 || filters.some((x) => (path.isAbsolute(x) ? f : path.relative(TEST_ROOT, f)).includes(x) || path.relative(process.cwd(), f).includes(x)))
  .sort();

if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// Every worker the tests start runs this one bundle: each bundling its own took seconds of CPU per start.
const workflowBundle = path.join(tmpdir(), `dr-test-workflows-${process.pid}.js`);
// And the product's processes the tests start (hundreds of workers, sites and APIs) run compiled.
const compiledPrograms = path.join(tmpdir(), `dr-test-programs-${process.pid}`);

function removeBuilt(): void {
  rmSync(workflowBundle, { force: true });
  rmSync(compiledPrograms, { recursive: true, force: true });
}

async function main(): Promise<void> {
  await Promise.all([writeWorkflowBundle(workflowBundle), compilePrograms(compiledPrograms)]);
  const runner = spawn(
    process.execPath,
    [
      ...TYPESCRIPT_LOADER,
      '--test',
      '--test-reporter=spec',
      `--test-concurrency=${process.env.DR_TEST_CONCURRENCY ?? '2'}`,
      // A hung test must fail the run, not hold CI until its limit. Each file is a test too: the
      // longest take 4-5 min on a quiet machine and twice that under load, which is not a hang.
      `--test-timeout=${process.env.DR_TEST_TIMEOUT_MS ?? '900000'}`,
      // Tests of a long file by name (its hooks still run; a matching suite runs whole): `DR_TEST_NAME_PATTERN='keeps a copy' npm run chaos -- large-domain`.
      ...(process.env.DR_TEST_NAME_PATTERN ? [`--test-name-pattern=${process.env.DR_TEST_NAME_PATTERN}`] : []),
      ...files,
    ],
    // Its own process group, so that everything the tests start can be found and ended with it.
    { stdio: 'inherit', detached: true, env: { ...process.env, NODE_NO_WARNINGS: '1', DR_WORKFLOW_BUNDLE: workflowBundle, [COMPILED_PROGRAMS_VARIABLE]: compiledPrograms } },
  );

  /** Ends every process the run started, including servers a killed test file left behind. */
  const endRun = (code: number) => {
    try {
      process.kill(-runner.pid!, 'SIGKILL');
    } catch {
      // the group is already empty
    }
    removeBuilt();
    process.exit(code);
  };

  // The whole run has a limit too: a stray server holding a pipe open must not hold CI either. Below
  // CI's own 90 min, above what a loaded machine takes (a rehearsal beside a fuzz run passed 45).
  const limitMs = Number(process.env.DR_TEST_RUN_LIMIT_MS ?? 80 * 60_000);
  const limit = setTimeout(() => {
    console.error(`\n[test] the run passed its limit of ${limitMs / 60_000} min (DR_TEST_RUN_LIMIT_MS); ending it`);
    endRun(1);
  }, limitMs);

  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => endRun(1));

  runner.once('exit', (code) => {
    clearTimeout(limit);
    endRun(code ?? 1);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  removeBuilt();
  process.exit(1);
});
