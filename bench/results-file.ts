import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Writes a benchmark's results with the facts needed to compare runs: machine, Node, date. */
export function writeBenchResults(name: string, results: Record<string, unknown>): string {
  const file = path.join(__dirname, 'results', `${name}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 1024 ** 3), node: process.version };
  writeFileSync(file, `${JSON.stringify({ benchmark: name, measuredAt: new Date().toISOString(), machine, ...results }, null, 2)}\n`);
  return file;
}

/** Prints a benchmark's results and writes them (`writeBenchResults`), saying where. */
export function reportBenchResults(name: string, results: Record<string, unknown>): void {
  console.log(JSON.stringify(results, null, 2));
  console.log(`written to ${writeBenchResults(name, results)}`);
}
