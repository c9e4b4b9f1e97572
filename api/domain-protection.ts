/** What the domain list and the metrics both read of a domain: its mode, its protection's status and its RPO against the target. */
import type { Client, QueryDefinition } from '@temporalio/client';
import type { DomainCondition } from '../common/domain-modes';
import { readDomainCondition } from '../datapath/domain-status';
import type { ImportableDomain } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import { latestRpoTargetSeconds } from '../runbooks/domain-retention';
import type { RunbookStore } from '../runbooks/store';
import { protectStatusQuery, type ProtectStatus } from '../workflows/protect';
import { protectionWorkflowId } from '../workflows/workflow-ids';
import { rpoNow, type RpoNow } from './rpo';

/** The query's answer in bounded time; undefined when the workflow does not exist or does not answer (then a note says so). */
export async function askWithin<R>(client: Client, deadlineMs: number, workflowId: string, query: QueryDefinition<R, []>, notes: string[]): Promise<R | undefined> {
  try {
    return await client.withDeadline(Date.now() + deadlineMs, () => client.workflow.getHandle(workflowId).query(query));
  } catch (error) {
    if ((error as Error).name !== 'WorkflowNotFoundError') notes.push(`${workflowId} did not answer within ${deadlineMs / 1000} s (is an orchestration worker running?): ${(error as Error).message}`);
    return undefined;
  }
}

export interface DomainProtection {
  condition: DomainCondition;
  protection?: ProtectStatus;
  rpo: RpoNow | null;
}

export async function domainProtection(
  { client, store, runbooks, deadlineMs }: { client: Client; store: ObjectStore; runbooks: RunbookStore; deadlineMs: number },
  scanned: ImportableDomain,
  notes: string[],
): Promise<DomainProtection> {
  const [condition, protection, rpoTarget] = await Promise.all([
    readDomainCondition(store, scanned.domain),
    scanned.ownerSite ? askWithin(client, deadlineMs, protectionWorkflowId(scanned.domain, scanned.ownerSite, scanned.epoch), protectStatusQuery, notes) : undefined,
    latestRpoTargetSeconds(runbooks, scanned.domain).catch(() => undefined),
  ]);
  return { condition, ...(protection ? { protection } : {}), rpo: rpoNow(protection, rpoTarget) };
}
