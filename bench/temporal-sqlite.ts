/**
 * The embedded Temporal server's SQLite settings: BENCH_DOMAINS (10) domains of BENCH_VMS_EACH
 * (20) VMs failing over at once on a server with the product's pragmas (DEFAULT_SQLITE_PRAGMAS: a
 * write-ahead log synced at checkpoints), against its limit measured in the same run, the same
 * failovers on a server with SQLite's own defaults (a rollback journal, every commit synced):
 *
 *   ratio = median time until the last failover ends with the product's pragmas / with SQLite's defaults
 *
 * over BENCH_RUNS (default 3) of each, interleaved (defaults, product, defaults, product, ...), each
 * on a fresh stack, with the Temporal server's CPU seconds. Timings are never asserted.
 */
import os from 'node:os';
import { DEFAULT_SQLITE_PRAGMAS } from '../stack/temporal-dev-server';
import { startTestStack } from '../test/harness/stack';
import { cpuSecondsByProcess, forcedFailoversAtOnce, type FailoverRun } from './failover-runs';
import { smallDomains } from './large-domain';
import { round2, spread } from './measure';
import { reportBenchResults } from './results-file';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 10);
const VMS_EACH = Number(process.env.BENCH_VMS_EACH ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const domains = (label: string) => smallDomains(label, DOMAINS, VMS_EACH);

async function failoversOn(sqlitePragmas: readonly string[], label: string): Promise<FailoverRun> {
  const stack = await startTestStack({ temporalSqlitePragmas: sqlitePragmas });
  try {
    return await forcedFailoversAtOnce(stack, domains(label), label);
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  const sqliteDefaults: FailoverRun[] = [];
  const product: FailoverRun[] = [];
  for (let run = 1; run <= RUNS; run++) {
    sqliteDefaults.push(await failoversOn([], `defaults-${run}`));
    console.log(`run ${run}: SQLite's defaults: ${sqliteDefaults[run - 1].wallMs} ms, Temporal ${sqliteDefaults[run - 1].cpuSeconds.temporal} CPU s`);
    product.push(await failoversOn(DEFAULT_SQLITE_PRAGMAS, `product-${run}`));
    console.log(`run ${run}: ${DEFAULT_SQLITE_PRAGMAS.join(', ')}: ${product[run - 1].wallMs} ms, Temporal ${product[run - 1].cpuSeconds.temporal} CPU s`);
  }
  const defaultsMs = spread(sqliteDefaults.map((r) => r.wallMs));
  const productMs = spread(product.map((r) => r.wallMs));
  const ratio = round2(productMs.median / defaultsMs.median);
  reportBenchResults('temporal-sqlite', {
    setup: {
      domains: DOMAINS,
      vmsEach: VMS_EACH,
      runs: RUNS,
      order: "interleaved: SQLite's defaults, the product's pragmas, ...; a fresh stack for each run",
      failover: 'forced, latest consistent point, the large-domain runbook without waits, as bench/failover-runs.ts runs them',
      productPragmas: DEFAULT_SQLITE_PRAGMAS,
      cores: os.cpus().length,
    },
    sqliteDefaultsWallMs: defaultsMs,
    productPragmasWallMs: productMs,
    productToDefaultsRatio: ratio,
    ratioPerPair: spread(product.map((r, i) => round2(r.wallMs / sqliteDefaults[i].wallMs))),
    cpuSecondsByProcess: { sqliteDefaults: cpuSecondsByProcess(sqliteDefaults), productPragmas: cpuSecondsByProcess(product) },
    succeeded: { sqliteDefaults: sqliteDefaults.reduce((n, r) => n + r.failovers.length, 0), productPragmas: product.reduce((n, r) => n + r.failovers.length, 0) },
  });
  console.log(
    `\n${DOMAINS} domains x ${VMS_EACH} VMs failing over: ${productMs.median} ms (min ${productMs.min}, max ${productMs.max}) with ${DEFAULT_SQLITE_PRAGMAS.join(', ')}; ` +
      `${defaultsMs.median} ms (min ${defaultsMs.min}, max ${defaultsMs.max}) with SQLite's defaults; ratio of medians ${ratio}, ${RUNS} interleaved runs`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
