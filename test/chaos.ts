/**
 * `npm run chaos [-- <scenario> ...]`: the fault scenarios at their full size (DR_CHAOS=1: 20
 * failovers, 10 of every other operation with workers and the Temporal server SIGKILLed at random
 * moments, the API's load and fuzz test at 60 s of 200 clients and 10,000 bad requests per route
 * (its figures in bench/results/api-load.json), 5,000 malformed runbooks through the runbooks API
 * and 5,000 through the validator (3,000 damaged ones against the JSON Schema),
 * a forced failover of 10,000 VMs (1,200 in npm test), and the fault tests at the sizes docs/reliability.md
 * names), each against servers of its
 * own that the test harness starts. `npm test` runs them smaller. A scenario is a test file's name or
 * a part of it (`npm run chaos -- failover-crash s3-faults`); without one, every scenario runs.
 * Prints as `npm test` does and records each suite's outcome, duration and kill counts in
 * bench/results/chaos.json, replacing only the suites this run ran.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { TYPESCRIPT_LOADER } from '../common/child-process';
import { writeBenchResults } from '../bench/results-file';

/** The test files that make up the chaos scenarios when none is named. */
const EVERY_SCENARIO = ['-crash.test.ts', 's3-faults.test.ts', 'protection-soak.test.ts', 'api-load-fuzz.test.ts', 'runbook-api.test.ts', 'runbook-fuzz.test.ts', 'runbook-schema.test.ts', 'large-domain-operations.test.ts'];
/**
 * A full-size crash test makes 20 runs with kills between them, and the 10,000-VM domain goes
 * through six operations and three initial syncs of every disk: far longer than npm test's limit per test.
 */
const FULL_SIZE_TEST_LIMIT_MS = 90 * 60_000;

interface SuiteResult {
  suite: string;
  passed: boolean;
  seconds: number;
  measuredAt?: string;
  diagnostics: string[];
  /** `DR_TEST_NAME_PATTERN` of a run narrowed to the tests it names. */
  onlyTestsNamed?: string;
}

const scenarios = process.argv.slice(2);
const child = spawn(process.execPath, [...TYPESCRIPT_LOADER, path.join(__dirname, 'run.ts'), ...(scenarios.length > 0 ? scenarios : EVERY_SCENARIO)], {
  env: { DR_TEST_TIMEOUT_MS: String(FULL_SIZE_TEST_LIMIT_MS), DR_TEST_RUN_LIMIT_MS: String(4 * FULL_SIZE_TEST_LIMIT_MS), ...process.env, DR_CHAOS: '1' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let output = '';
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  output += chunk.toString();
});
child.on('close', (code) => {
  // A run narrowed to some tests by name records which: its suites did not run whole.
  const only = process.env.DR_TEST_NAME_PATTERN;
  const ran = suitesOf(output).map((suite) => (only ? { ...suite, onlyTestsNamed: only } : suite));
  const suites = [...previousSuites().filter((s) => !ran.some((r) => r.suite === s.suite)), ...ran];
  const file = writeBenchResults('chaos', { scale: 'full (DR_CHAOS=1)', passed: suites.filter((s) => s.passed).length, failed: suites.filter((s) => !s.passed).length, suites });
  console.log(`\nchaos: ${ran.filter((s) => s.passed).length} of ${ran.length} suites passed; results: ${file}`);
  process.exit(code ?? 1);
});

function suitesOf(testOutput: string): SuiteResult[] {
  const suites: SuiteResult[] = [];
  let diagnostics: string[] = [];
  for (const line of testOutput.split('\n')) {
    // The reporter repeats each failed test unindented after the run: they are not suites, and their suites are already counted.
    if (line.startsWith('✖ failing tests:')) break;
    const diagnostic = /^\s+ℹ (.*)$/.exec(line);
    if (diagnostic) diagnostics.push(diagnostic[1]);
    // A top-level suite's result: it ends the diagnostics of its tests.
    const suite = /^(✔|✖) (.*) \(([\d.]+)ms\)$/.exec(line);
    if (suite) {
      // A file that passed its time limit is named by its path: relative, so runs from two checkouts agree.
      const name = path.isAbsolute(suite[2]) ? path.relative(path.dirname(__dirname), suite[2]) : suite[2];
      suites.push({ suite: name, passed: suite[1] === '✔', seconds: Math.round(Number(suite[3]) / 1000), measuredAt: new Date().toISOString(), diagnostics });
      diagnostics = [];
    }
  }
  return suites;
}

/** The suites an earlier run recorded, so that running one scenario again keeps the others' results. */
function previousSuites(): SuiteResult[] {
  const file = path.join(__dirname, '..', 'bench', 'results', 'chaos.json');
  if (!existsSync(file)) return [];
  const previous = JSON.parse(readFileSync(file, 'utf8')) as { measuredAt?: string; suites?: SuiteResult[] };
  return (previous.suites ?? []).map((s) => ({ measuredAt: previous.measuredAt, ...s }));
}
