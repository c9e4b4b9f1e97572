import type { RetentionPolicy } from '../common/retention';
import { retentionPolicy } from './protection-policy';
import type { RunbookStore } from './store';
import { validateRunbook } from './validate';

export interface DomainRetention {
  /** Undefined: every point for the protection window (no retention in the runbook, or no usable runbook). */
  policy?: RetentionPolicy;
  /** Where the policy comes from, or why there is none, in words. */
  source: string;
}

/**
 * The retention policy of the domain's runbook (the one named like the domain, as operations
 * default to), latest version. Read each time it is needed, so that a changed policy applies to a
 * running protection without restarting it. A version that does not validate falls back to the
 * window alone, which keeps every point any valid policy keeps (no tier may outlast the window).
 */
export async function latestRetention(runbooks: RunbookStore, domain: string): Promise<DomainRetention> {
  const stored = await runbooks.latest(domain);
  if (!stored) return { source: `no runbook ${domain}: every point for the protection window` };
  const runbook = validateRunbook(stored.text).runbook;
  const version = `runbook ${domain} v${stored.record.version}`;
  if (!runbook) return { source: `${version} does not validate: every point for the protection window` };
  if (runbook.spec.protectedDomain !== domain) return { source: `${version} protects ${runbook.spec.protectedDomain}: every point for the protection window` };
  const retention = runbook.spec.protection.retention;
  if (!retention) return { source: `${version} has no spec.protection.retention: every point for the protection window` };
  return { policy: retentionPolicy(retention), source: `${version} spec.protection.retention` };
}
