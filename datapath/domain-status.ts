import { z } from 'zod';
import { DOMAIN_MODES, type DomainCondition } from '../common/domain-modes';
import { readConflict } from './conflict';
import { DomainKeys } from './keys';
import type { ObjectStore } from './object-store';
import { parseRecord, RECORD_FORMAT_VERSION } from './records';

/**
 * The domain's operating mode as the product documents name it ("Running in Failover", VMs
 * "Recoverable"), kept in the storage site so that every site, and the API, reads the same
 * answer even when the site that wrote it is gone.
 */
export const VM_PROTECTION_STATES = ['Recoverable'] as const;

export const domainStatusSchema = z.object({
  formatVersion: z.literal(RECORD_FORMAT_VERSION),
  domain: z.string(),
  mode: z.enum(DOMAIN_MODES),
  /** The site where the domain's VMs run now. */
  runningAt: z.string(),
  vms: z.array(z.object({ name: z.string(), protection: z.enum(VM_PROTECTION_STATES) })),
  /** The operation that set this mode (a workflow id). */
  setBy: z.string(),
  updatedAt: z.number().int(),
});
export type DomainStatus = z.infer<typeof domainStatusSchema>;

export function domainStatusKey(prefix: string, domain: string): string {
  return `${new DomainKeys(prefix, domain).root}status.json`;
}

export async function readDomainStatus(store: ObjectStore, domain: string): Promise<DomainStatus | undefined> {
  const key = domainStatusKey(store.prefix, domain);
  const body = await store.get(key);
  return body ? parseRecord(domainStatusSchema, key, body) : undefined;
}

/**
 * What the table in common/domain-modes.ts decides from: the mode (a domain without a recorded
 * mode is Protected) and, while a split-brain conflict is open, since when.
 */
export async function readDomainCondition(store: ObjectStore, domain: string): Promise<DomainCondition> {
  const [status, conflict] = await Promise.all([readDomainStatus(store, domain), readConflict(store, domain)]);
  return { mode: status?.mode ?? 'Protected', ...(conflict ? { conflictSince: conflict.since } : {}) };
}
