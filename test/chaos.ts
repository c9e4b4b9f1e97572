/**
 * `npm run chaos`: the crash tests at their full size (DR_CHAOS=1: 20 failovers, 10 of every other
 * operation, workers and the Temporal server SIGKILLed at random moments) and the API's load and
 * fuzz test at its (60 s of 200 clients, 10,000 bad requests per route), which take too long for
 * every CI run (`npm test` runs less of each). Prints as `npm test` does and writes each suite's
 * outcome, duration and kill counts to bench/results/chaos.json (the API's figures to api-load.json).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { writeBenchResults } from '../bench/results-file';

const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'run.ts'), '-crash.test.ts', 'api-load-fuzz.test.ts'], { env: { ...process.env, DR_CHAOS: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
let output = '';
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  output += chunk.toString();
});
child.on('close', (code) => {
  const suites: Array<{ suite: string; passed: boolean; seconds: number; diagnostics: string[] }> = [];
  let diagnostics: string[] = [];
  for (const line of output.split('\n')) {
    const diagnostic = /^\s+ℹ (.*SIGKILL.*)$/.exec(line);
    if (diagnostic) diagnostics.push(diagnostic[1]);
    // A top-level suite's result: it ends the diagnostics of its tests.
    const suite = /^(✔|✖) (.*) \(([\d.]+)ms\)$/.exec(line);
    if (suite) {
      suites.push({ suite: suite[2], passed: suite[1] === '✔', seconds: Math.round(Number(suite[3]) / 1000), diagnostics });
      diagnostics = [];
    }
  }
  const file = writeBenchResults('chaos', { scale: 'full (DR_CHAOS=1)', passed: suites.filter((s) => s.passed).length, failed: suites.filter((s) => !s.passed).length, suites });
  console.log(`\nchaos results: ${file}`);
  process.exit(code ?? 1);
});
