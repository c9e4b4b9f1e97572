import type { RetentionPolicy } from '../common/retention';
import type { Runbook, RunbookRetention } from './schema';
import type { RunbookStore } from './store';
import { parseDuration } from './units';
import { validateRunbook } from './validate';

export interface DomainRetention {
  /** Undefined: every point for the protection window (no retention in the runbook, or no usable runbook). */
  policy?: RetentionPolicy;
  /** Where the policy comes from, or why there is none, in words. */
  source: string;
}

/**
 * The latest version of the runbook named like the domain (the one operations default to), when
 * it validates and protects the domain; otherwise why there is none, in words. Read each time it
 * is needed, so that a changed policy applies to a running protection without restarting it.
 */
export async function latestDomainRunbook(runbooks: RunbookStore, domain: string): Promise<{ runbook: Runbook; version: string } | { why: string }> {
  const stored = await runbooks.latest(domain);
  if (!stored) return { why: `no runbook ${domain}` };
  const runbook = validateRunbook(stored.text).runbook;
  const version = `runbook ${domain} v${stored.record.version}`;
  if (!runbook) return { why: `${version} does not validate` };
  if (runbook.spec.protectedDomain !== domain) return { why: `${version} protects ${runbook.spec.protectedDomain}` };
  return { runbook, version };
}

/**
 * The retention policy of the domain's latest runbook. A version that does not validate falls back
 * to the window alone, which keeps every point any valid policy keeps (no tier may outlast the window).
 */
export async function latestRetention(runbooks: RunbookStore, domain: string): Promise<DomainRetention> {
  const latest = await latestDomainRunbook(runbooks, domain);
  if ('why' in latest) return { source: `${latest.why}: every point for the protection window` };
  const retention = latest.runbook.spec.protection.retention;
  if (!retention) return { source: `${latest.version} has no spec.protection.retention: every point for the protection window` };
  return { policy: retentionPolicy(retention), source: `${latest.version} spec.protection.retention` };
}

/** The domain's RPO target in seconds, from its latest runbook's `spec.protection.rpoTarget`; undefined without one. */
export async function latestRpoTargetSeconds(runbooks: RunbookStore, domain: string): Promise<number | undefined> {
  const latest = await latestDomainRunbook(runbooks, domain);
  const target = 'why' in latest ? undefined : latest.runbook.spec.protection.rpoTarget;
  return target === undefined ? undefined : parseDuration(target)! / 1000;
}

/** A runbook's `spec.protection.retention` in milliseconds; durations are validated, so each parses. */
export function retentionPolicy(retention: RunbookRetention): RetentionPolicy {
  return {
    tiers: retention.tiers.map((tier) => ({ everyMs: tier.every === 'all' ? 'all' : parseDuration(tier.every)!, forMs: parseDuration(tier.for)! })),
    keepTested: retention.keepTested,
  };
}
