/**
 * The one entry point for checking a submitted runbook. It never throws: whatever the text is,
 * the answer is a list of findings with line:column and path, and the runbook when there are none.
 */
import type { InventoryLookup, RecoverySiteInventory } from './inventory';
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
  inventory?: RecoverySiteInventory;
  maxBytes?: number;
}

export function validateRunbook(text: string, options: ValidateOptions = {}): ValidationResult {
  try {
    const parsed = parseSource(text, { maxBytes: options.maxBytes ?? SOURCE_LIMITS.maxBytes });
    if (!parsed.ok) return { ok: false, errors: parsed.errors.sort(compareIssues), warnings: [] };
    const shape = checkShape(parsed.source);
    if (!shape.runbook) return { ok: false, errors: shape.errors.sort(compareIssues), warnings: [] };
    const { errors, warnings } = checkSemantics(shape.runbook, parsed.source, options.inventory);
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
 * Validates, then, when the runbook names a recovery site whose inventory the lookup knows,
 * validates again against that inventory. An unknown or unreachable site is a warning: the
 * runbook may be written before the site exists, but the operator must know it was not checked.
 */
export async function validateRunbookAgainstSite(text: string, lookup: InventoryLookup | undefined, options: Omit<ValidateOptions, 'inventory'> = {}): Promise<ValidationResult> {
  const first = validateRunbook(text, options);
  if (!first.ok || !first.runbook || !lookup) return first;
  const site = first.runbook.spec.sites.recovery;
  let inventory: RecoverySiteInventory | undefined;
  let reason = 'the site is unknown';
  try {
    inventory = await lookup(site);
  } catch (error) {
    reason = `its inventory could not be read (${error instanceof Error ? error.message : String(error)})`;
  }
  if (!inventory) {
    // Parsed again only on this rare path, to point the warning at the site's name.
    const parsed = parseSource(text, { maxBytes: options.maxBytes ?? SOURCE_LIMITS.maxBytes });
    const at = parsed.ok ? parsed.source.locate(['spec', 'sites', 'recovery']) : { line: 1, column: 1 };
    const warning: RunbookIssue = { ...at, path: 'spec.sites.recovery', code: 'inventory_unavailable', message: `placement was not checked against recovery site "${site}": ${reason}` };
    return { ...first, warnings: [...first.warnings, warning] };
  }
  return validateRunbook(text, { ...options, inventory });
}
