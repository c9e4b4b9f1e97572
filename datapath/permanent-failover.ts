import { z } from 'zod';
import { DomainKeys } from './keys';
import type { ObjectStore } from './object-store';
import { parseRecord, RECORD_FORMAT_VERSION } from './records';

/**
 * The domain's last permanent failover: the recovery site became its primary for good, and the
 * old primary was retired (`domains/<d>/permanent-failover.json`). Kept apart from `status.json`,
 * which every later operation overwrites, so that a failback to the retired site is still refused
 * by name long after; the log and bases of the domain are not touched by it.
 */
export const permanentFailoverSchema = z.object({
  formatVersion: z.literal(RECORD_FORMAT_VERSION),
  domain: z.string(),
  /** The permanent failover's workflow id. */
  workflowId: z.string(),
  /** Epoch ms it was recorded (the domain's primary changed then). */
  at: z.number().int(),
  retiredSite: z.string(),
  newPrimary: z.string(),
  /** Absent: no recovery site, the domain is protected to the storage site only. */
  newRecoverySite: z.string().optional(),
  /** The runbook version written for the new direction. */
  runbook: z.object({ name: z.string(), version: z.number().int().positive() }),
  /** The workflow that removes the domain from the retired site (at once, or when it returns). */
  retiredBy: z.string(),
});
export type PermanentFailoverRecord = z.infer<typeof permanentFailoverSchema>;

export function permanentFailoverKey(prefix: string, domain: string): string {
  return `${new DomainKeys(prefix, domain).root}permanent-failover.json`;
}

export async function readPermanentFailover(store: ObjectStore, domain: string): Promise<PermanentFailoverRecord | undefined> {
  const key = permanentFailoverKey(store.prefix, domain);
  const body = await store.get(key);
  return body ? parseRecord(permanentFailoverSchema, key, body) : undefined;
}

/** How the API names it when it refuses an operation because of it. */
export function describePermanentFailover(record: PermanentFailoverRecord): string {
  return `${record.domain} was permanently failed over from ${record.retiredSite} to ${record.newPrimary} by ${record.workflowId} at ${new Date(record.at).toISOString()} (runbook ${record.runbook.name} v${record.runbook.version})`;
}
