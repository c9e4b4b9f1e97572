/**
 * `npm test`: every *.test.ts under test/ in node's built-in test runner (spec reporter, whose
 * summary CI reads). Arguments narrow the run: `npm test -- unit` or `npm test -- test/unit/x.test.ts`.
 * Integration tests start their own Temporal and SeaweedFS servers through test/harness.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

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
  .filter((f) => filters.length === 0 || filters.some((x) => path.relative(process.cwd(), f).includes(x) || f.includes(x)))
  .sort();

if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${process.env.DR_TEST_CONCURRENCY ?? '2'}`,
    // A hung test must fail the run, not hold CI until its limit.
    `--test-timeout=${process.env.DR_TEST_TIMEOUT_MS ?? '600000'}`,
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, NODE_NO_WARNINGS: '1' } },
);
process.exit(result.status ?? 1);
