/**
 * `npm run bench [-- name ...]`: runs the benchmark scripts in bench/ one after another (never in
 * parallel: they measure the same two cores). Each script measures its own limit in the same run
 * and writes its ratios to bench/results/<name>.json.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { TYPESCRIPT_LOADER } from '../common/child-process';

/** Modules the benchmarks share: imported by them, nothing to run on their own. */
const SHARED_MODULES = new Set(['run.ts', 'results-file.ts', 'measure.ts', 'large-domain.ts', 'failover-runs.ts']);

const wanted = process.argv.slice(2);
const scripts = readdirSync(__dirname)
  .filter((f) => f.endsWith('.ts') && !SHARED_MODULES.has(f) && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .filter((name) => wanted.length === 0 || wanted.some((w) => name.includes(w)))
  .sort();

if (scripts.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ') || '(any)'}`);
  process.exit(1);
}
let failed = 0;
for (const name of scripts) {
  console.log(`\n=== bench ${name}`);
  const result = spawnSync(process.execPath, [...TYPESCRIPT_LOADER, path.join(__dirname, `${name}.ts`)], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
