/** What the domain list, a domain's status and the metrics read of a domain: its mode, its protection's status and its RPO against the target. */
import { defaultPayloadConverter, type Client, type QueryDefinition } from '@temporalio/client';
import type { DomainCondition } from '../common/domain-modes';
import { readDomainCondition } from '../datapath/domain-status';
import type { ImportableDomain } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import type { ReplicationProgress } from '../datapath/replicator';
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

/**
 * The protection's status, with how far writes are durable as its running replicator last
 * heartbeated it: the workflow learns it only when a run ends, every ten seconds or so.
 */
export async function protectionStatus(client: Client, deadlineMs: number, workflowId: string, notes: string[]): Promise<ProtectStatus | undefined> {
  const [status, description] = await Promise.all([
    askWithin(client, deadlineMs, workflowId, protectStatusQuery, notes),
    client.withDeadline(Date.now() + deadlineMs, () => client.workflow.getHandle(workflowId).describe()).catch(() => undefined),
  ]);
  if (!status) return undefined;
  const replicating = description?.raw.pendingActivities?.find((a) => a.activityType?.name === 'replicateJournal');
  const heartbeat = replicating?.heartbeatDetails?.payloads?.[0];
  const heartbeatDurableAsOf = heartbeat ? defaultPayloadConverter.fromPayload<ReplicationProgress | undefined>(heartbeat)?.durableAsOf : undefined;
  const durableAsOf = Math.max(status.durableAsOf ?? 0, heartbeatDurableAsOf ?? 0);
  return durableAsOf > 0 ? { ...status, durableAsOf } : status;
}

export interface DomainProtection {
  condition: DomainCondition;
  protection?: ProtectStatus;
  rpoTargetSeconds?: number;
  /** As of when it was read: `rpoNow` again for a later moment. */
  rpo: RpoNow | null;
}

export async function domainProtection(
  { client, store, runbooks, deadlineMs }: { client: Client; store: ObjectStore; runbooks: RunbookStore; deadlineMs: number },
  scanned: ImportableDomain,
  notes: string[],
): Promise<DomainProtection> {
  const [condition, protection, rpoTargetSeconds] = await Promise.all([
    readDomainCondition(store, scanned.domain),
    scanned.ownerSite ? protectionStatus(client, deadlineMs, protectionWorkflowId(scanned.domain, scanned.ownerSite, scanned.epoch), notes) : undefined,
    latestRpoTargetSeconds(runbooks, scanned.domain).catch(() => undefined),
  ]);
  return { condition, ...(protection ? { protection } : {}), ...(rpoTargetSeconds !== undefined ? { rpoTargetSeconds } : {}), rpo: rpoNow(protection, rpoTargetSeconds, Date.now()) };
}
