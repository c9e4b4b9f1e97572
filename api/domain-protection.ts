/** What the domain list, a domain's status and the metrics read of a domain: its mode, its protection's status and its RPO against the target. */
import { defaultPayloadConverter, type Client, type QueryDefinition, type WorkflowExecutionDescription } from '@temporalio/client';
import type { DomainCondition } from '../common/domain-modes';
import { readDomainCondition } from '../datapath/domain-status';
import type { BaseCopyProgress } from '../datapath/base-image';
import type { ImportableDomain } from '../datapath/import-scan';
import type { ObjectStore } from '../datapath/object-store';
import type { ReplicationProgress } from '../datapath/replicator';
import { latestRpoTargetSeconds } from '../runbooks/domain-retention';
import type { RunbookStore } from '../runbooks/store';
import { protectStatusQuery, type ProtectStatus } from '../workflows/protect';
import { whyNoRestorePoint } from '../workflows/restore-point-refusal';
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

/** A protection's status as the API shows it: the workflow's own, with what its running activities last heartbeated. */
export interface ProtectionNow extends ProtectStatus {
  /** During the initial sync: how far the copy of the disks into the epoch's base has got. */
  initialSyncCopied?: Pick<BaseCopyProgress, 'disk' | 'bytesRead' | 'chunksStored'>;
}

/** The first heartbeat payload of the workflow's pending activity of that type. */
function heartbeatOf<T>(description: WorkflowExecutionDescription | undefined, activityType: string): T | undefined {
  const pending = description?.raw.pendingActivities?.find((a) => a.activityType?.name === activityType);
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<T | undefined>(payload) : undefined;
}

/**
 * The protection's status, with how far writes are durable as its running replicator last
 * heartbeated it (the workflow learns it only when a run ends, every ten seconds or so), and how
 * far a running initial sync has copied the disks (the workflow learns nothing until it ends,
 * minutes at 10,000 disks).
 */
export async function protectionStatus(client: Client, deadlineMs: number, workflowId: string, notes: string[]): Promise<ProtectionNow | undefined> {
  const [status, description] = await Promise.all([
    askWithin(client, deadlineMs, workflowId, protectStatusQuery, notes),
    client.withDeadline(Date.now() + deadlineMs, () => client.workflow.getHandle(workflowId).describe()).catch(() => undefined),
  ]);
  if (!status) return undefined;
  const heartbeatDurableAsOf = heartbeatOf<ReplicationProgress>(description, 'replicateJournal')?.durableAsOf;
  const durableAsOf = Math.max(status.durableAsOf ?? 0, heartbeatDurableAsOf ?? 0);
  const copied = status.mode === 'initial-sync' ? heartbeatOf<{ copy?: BaseCopyProgress }>(description, 'initialSync')?.copy : undefined;
  return {
    ...status,
    ...(durableAsOf > 0 ? { durableAsOf } : {}),
    ...(copied ? { initialSyncCopied: { disk: copied.disk, bytesRead: copied.bytesRead, chunksStored: copied.chunksStored } } : {}),
  };
}

/**
 * Why the protection cannot take a restore point now, in an operator's words, or undefined when it
 * can: what its restore-point update refuses (workflows/restore-point-refusal.ts), with how far the
 * initial sync has got out of `disks`.
 */
export function restorePointRefusal(protection: ProtectionNow, disks: number): string | undefined {
  const copied = protection.initialSyncCopied;
  const progress = copied ? `copying disk ${Math.min(copied.disk + 1, disks)} of ${disks}, ${(copied.bytesRead / 2 ** 30).toFixed(1)} GiB read so far` : `${disks} disks to copy, none copied yet`;
  const refusal = whyNoRestorePoint(protection, progress);
  return refusal && `protection of epoch ${protection.epoch} ${refusal}`;
}

export interface DomainProtection {
  condition: DomainCondition;
  protection?: ProtectionNow;
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
