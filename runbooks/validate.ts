/**
 * The one entry point for checking a submitted runbook. It never throws: whatever the text is,
 * the answer is a list of findings with line:column and path, and the runbook when there are none.
 */
import type { InventoryLookup, SiteInventory } from './inventory';
import { compareIssues, type RunbookIssue } from './issues';
import type { Runbook } from './schema';
import { checkSemantics } from './semantics';
import { checkShape } from './shape';
import { parseSource, SOURCE_LIMITS } from './source';

export interface ValidationResult {
  ok: boolean;
  errors: RunbookIssue[];
  warnings: RunbookIssue[];
  runbook?: Runbook;
}

export interface ValidateOptions {
  /** The recovery site's inventory; without it placement names are not checked against a site. */
  inventory?: SiteInventory;
  /** The primary site's inventory, for what the runbook's failback section places there. */
  primaryInventory?: SiteInventory;
  maxBytes?: number;
}

export function validateRunbook(text: string, options: ValidateOptions = {}): ValidationResult {
  try {
    const parsed = parseSource(text, { maxBytes: options.maxBytes ?? SOURCE_LIMITS.maxBytes });
    if (!parsed.ok) return { ok: false, errors: parsed.errors.sort(compareIssues), warnings: [] };
    const shape = checkShape(parsed.source);
    if (!shape.runbook) return { ok: false, errors: shape.errors.sort(compareIssues), warnings: [] };
    const { errors, warnings } = checkSemantics(shape.runbook, parsed.source, { recovery: options.inventory, primary: options.primaryInventory });
    errors.sort(compareIssues);
    warnings.sort(compareIssues);
    return errors.length > 0 ? { ok: false, errors, warnings } : { ok: true, errors, warnings, runbook: shape.runbook };
  } catch (error) {
    // A validator bug must still come back as a finding, not as a crashed request or CLI.
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, errors: [{ line: 1, column: 1, path: '', code: 'internal', message: `the validator failed on this input: ${message}` }], warnings: [] };
  }
}

/**
 * Validates, then, when the lookup knows the inventory of the runbook's recovery site (and, for a
 * runbook with a failback section, of its primary site), validates again against it. An unknown
 * or unreachable site is a warning: the runbook may be written before the site exists, but the
 * operator must know it was not checked.
 */
export async function validateRunbookAgainstSite(text: string, lookup: InventoryLookup | undefined, options: Omit<ValidateOptions, 'inventory' | 'primaryInventory'> = {}): Promise<ValidationResult> {
  const first = validateRunbook(text, options);
  if (!first.ok || !first.runbook || !lookup) return first;
  const { sites, failback } = first.runbook.spec;
  // A runbook without a recovery site places nothing anywhere (and has no failback section).
  if (sites.recovery === undefined) return first;
  const recovery = await inventoryOf(lookup, sites.recovery);
  const primary = failback ? await inventoryOf(lookup, sites.primary) : undefined;
  const checked = validateRunbook(text, { ...options, inventory: recovery.inventory, primaryInventory: primary?.inventory });
  const unchecked = [
    ...(recovery.inventory ? [] : [{ role: 'recovery' as const, what: 'placement', reason: recovery.reason }]),
    ...(primary && !primary.inventory ? [{ role: 'primary' as const, what: 'the failback section', reason: primary.reason }] : []),
  ];
  if (unchecked.length === 0) return checked;
  // Parsed again only on this rare path, to point each warning at the site's name.
  const parsed = parseSource(text, { maxBytes: options.maxBytes ?? SOURCE_LIMITS.maxBytes });
  const warnings: RunbookIssue[] = unchecked.map(({ role, what, reason }) => ({
    ...(parsed.ok ? parsed.source.locate(['spec', 'sites', role]) : { line: 1, column: 1 }),
    path: `spec.sites.${role}`,
    code: 'inventory_unavailable',
    message: `${what} was not checked against ${role} site "${sites[role]}": ${reason}`,
  }));
  return { ...checked, warnings: [...checked.warnings, ...warnings].sort(compareIssues) };
}

async function inventoryOf(lookup: InventoryLookup, site: string): Promise<{ inventory?: SiteInventory; reason: string }> {
  try {
    const inventory = await lookup(site);
    return inventory ? { inventory, reason: '' } : { reason: 'the site is unknown' };
  } catch (error) {
    return { reason: `its inventory could not be read (${error instanceof Error ? error.message : String(error)})` };
  }
}
