/**
 * Validating and planning a 10,000-VM runbook. The limit measured in the same run is parsing the
 * same text with the yaml package alone: no validator built on it can be faster, so the ratio
 * says what validation adds on top. A scaling series (1k, 5k, 10k VMs) shows the cost per VM
 * stays flat, i.e. the checks and the planner are linear. Writes bench/results/runbook-validate.json.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { generateLargeDomainRunbook, LARGE_DOMAIN_INVENTORY } from '../runbooks/examples/large-domain';
import { renderPlan } from '../runbooks/plan-text';
import { planRunbook } from '../runbooks/planner';
import { validateRunbook } from '../runbooks/validate';

const RUNS = 5;
const VM_COUNT = 10_000;
const SCALING = [1_000, 5_000, 10_000];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const start = performance.now();
  const value = fn();
  return { ms: performance.now() - start, value };
}

function measure(vmCount: number, runs: number) {
  const text = generateLargeDomainRunbook(vmCount);
  const samples = { yamlParse: [] as number[], validate: [] as number[], plan: [] as number[], renderText: [] as number[], planJson: [] as number[] };
  let nodes = 0;
  for (let run = 0; run < runs; run++) {
    samples.yamlParse.push(time((): unknown => parse(text)).ms);
    const validated = time(() => validateRunbook(text, { inventory: LARGE_DOMAIN_INVENTORY }));
    if (!validated.value.ok || !validated.value.runbook) throw new Error(`generated runbook is invalid: ${JSON.stringify(validated.value.errors.slice(0, 3))}`);
    samples.validate.push(validated.ms);
    const planned = time(() => planRunbook(validated.value.runbook!));
    samples.plan.push(planned.ms);
    nodes = planned.value.nodes.length;
    samples.renderText.push(time(() => renderPlan(planned.value)).ms);
    samples.planJson.push(time(() => JSON.stringify(planned.value)).ms);
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, Math.round(median(v) * 10) / 10])) as Record<keyof typeof samples, number>;
  return { vmCount, bytes: Buffer.byteLength(text, 'utf8'), planNodes: nodes, medianMs: medians };
}

const main = measure(VM_COUNT, RUNS);
const scaling = SCALING.map((count) => {
  const m = count === VM_COUNT ? main : measure(count, 3);
  return { vmCount: count, validateMsPerThousandVms: Math.round((m.medianMs.validate / count) * 1000 * 10) / 10, planMsPerThousandVms: Math.round((m.medianMs.plan / count) * 1000 * 10) / 10 };
});
const validateAndPlan = main.medianMs.validate + main.medianMs.plan;
const result = {
  benchmark: 'runbook-validate',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.arch()}` },
  runs: RUNS,
  runbook: { vmCount: main.vmCount, bytes: main.bytes, planNodes: main.planNodes },
  limit: { what: 'yaml.parse of the same text (the floor for any validator built on it)', medianMs: main.medianMs.yamlParse },
  medianMs: { ...main.medianMs, validateAndPlan: Math.round(validateAndPlan * 10) / 10 },
  ratios: {
    validateToLimit: Math.round((main.medianMs.validate / main.medianMs.yamlParse) * 100) / 100,
    validateAndPlanToLimit: Math.round((validateAndPlan / main.medianMs.yamlParse) * 100) / 100,
    perVmCost10kTo1k: Math.round((scaling[scaling.length - 1].validateMsPerThousandVms / scaling[0].validateMsPerThousandVms) * 100) / 100,
  },
  scaling,
};
const file = path.join(__dirname, 'results', 'runbook-validate.json');
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `${VM_COUNT} VMs (${(main.bytes / 1024 / 1024).toFixed(2)} MiB): validate ${main.medianMs.validate} ms, plan ${main.medianMs.plan} ms, ` +
    `yaml.parse alone ${main.medianMs.yamlParse} ms; validate/limit ${result.ratios.validateToLimit}, per-VM cost 10k/1k ${result.ratios.perVmCost10kTo1k}`,
);
console.log(`wrote ${path.relative(process.cwd(), file)}`);
