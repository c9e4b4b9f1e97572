/**
 * `npm run runbook -- validate <file> [--inventory <inventory.json>] [--primary-inventory <inventory.json>]`
 * `npm run runbook -- plan <file> [--inventory <inventory.json>] [--primary-inventory <inventory.json>] [--json]`
 * `--inventory` is the recovery site's, `--primary-inventory` the primary's (for the failback section).
 * Findings print as `file:line:col: message (path)`, the format editors and CI annotate; exit 1 on errors.
 */
import { readFileSync } from 'node:fs';
import type { SiteInventory } from './inventory';
import { formatIssue } from './issues';
import { renderPlan } from './plan-text';
import { planRunbook } from './planner';
import { validateRunbook } from './validate';

const USAGE = 'usage: npm run runbook -- validate|plan <file.yaml> [--inventory <inventory.json>] [--primary-inventory <inventory.json>] [--json]';

function readInventory(file: string): SiteInventory {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<SiteInventory>;
  const lists = ['datacenters', 'clusters', 'resourcePools', 'datastores', 'networks', 'storagePolicies'] as const;
  for (const key of lists) {
    if (!Array.isArray(raw[key]) || !raw[key].every((n) => typeof n === 'string')) throw new Error(`${file}: "${key}" must be a list of names`);
  }
  return raw as SiteInventory;
}

function inventoryOption(args: string[], option: string): SiteInventory | undefined {
  const at = args.indexOf(option);
  if (at < 0) return undefined;
  if (!args[at + 1]) throw new Error(`${option} needs a file`);
  return readInventory(args[at + 1]);
}

export function runCli(args: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): number {
  const [command, file, ...rest] = args;
  if ((command !== 'validate' && command !== 'plan') || !file) {
    err(USAGE);
    return 2;
  }
  let text: string;
  let inventory: SiteInventory | undefined;
  let primaryInventory: SiteInventory | undefined;
  try {
    text = readFileSync(file, 'utf8');
    inventory = inventoryOption(rest, '--inventory');
    primaryInventory = inventoryOption(rest, '--primary-inventory');
  } catch (error) {
    err(`${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const result = validateRunbook(text, { inventory, primaryInventory });
  for (const e of result.errors) err(formatIssue(file, e));
  for (const w of result.warnings) err(formatIssue(file, { ...w, message: `warning: ${w.message}` }));
  if (!result.ok || !result.runbook) {
    err(`${file}: ${result.errors.length} error(s)`);
    return 1;
  }
  if (command === 'validate') {
    out(`${file}: valid (${result.runbook.spec.vms.length} VMs, ${result.runbook.spec.powerOn.groups.length} groups, ${result.warnings.length} warning(s))`);
    return 0;
  }
  const plan = planRunbook(result.runbook);
  out(rest.includes('--json') ? JSON.stringify(plan, null, 2) : renderPlan(plan));
  return 0;
}

if (require.main === module) process.exitCode = runCli(process.argv.slice(2));
