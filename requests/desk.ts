/**
 * Asking a domain's operations desk for an operation: the checks before any workflow starts (the
 * mode table, the runbook, the recovery site) and the update-with-start on the desk. Shared by the
 * HTTP API and the orchestration worker's activities (a scheduled drill asks exactly as
 * `POST /domains/{domain}/drill` does), so they throw a RequestRefused that each turns into its
 * own answer: a problem+json for the API, a failure naming why for a workflow.
 */
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { allowedRequests, decide, type DomainCondition, type DomainRequest } from '../common/domain-modes';
import { readConflict, type ConflictRecord } from '../datapath/conflict';
import { readDomainCondition } from '../datapath/domain-status';
import type { ObjectStore } from '../datapath/object-store';
import type { Runbook } from '../runbooks/schema';
import type { RunbookStore } from '../runbooks/store';
import { validateRunbook } from '../runbooks/validate';
import { deskStartOptions, domainOperations, OPERATION_ALREADY_RUNNING, startOperationUpdate, type OperationRecord, type OperationRequest } from '../workflows/domain-operations';

/** A request the desk or the checks before it refuse: 404 nothing by that name, 409 not now, 422 not with this runbook. */
export class RequestRefused extends Error {
  constructor(
    readonly status: 404 | 409 | 422,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'RequestRefused';
  }
}

/** Another operation of the domain runs: the desk takes one at a time. */
export class DeskBusy extends RequestRefused {
  constructor(
    message: string,
    readonly running: OperationRecord,
  ) {
    super(409, message);
    this.name = 'DeskBusy';
  }
}

export interface RunbookRef {
  runbook: string;
  version?: number;
}

/** The requests the API offers endpoints for (the mode table knows the operations still to come). */
const OFFERED: DomainRequest[] = ['power-on', 'failover', 'continuous-failover', 'failback', 'continuous-failback', 'permanent-failover', 'resolve-conflict', 'drill', 'restore'];
export const offeredNow = (condition: DomainCondition) => allowedRequests(condition).filter((r) => OFFERED.includes(r));

/** A split-brain conflict as the API shows it. */
export function shownConflict(open: ConflictRecord) {
  return { conflict: 'split-brain' as const, site: open.site, vms: open.vms, since: new Date(open.since).toISOString(), owner: open.owner };
}

function describeConflict(open: ConflictRecord): string {
  return `site ${open.site} runs ${open.vms.join(', ')} since ${new Date(open.since).toISOString()} while ${open.owner.site} owns the domain`;
}

/** The runbook version named (or the latest), validated again, and protecting this domain. */
export async function loadDomainRunbook(runbooks: RunbookStore, domain: string, ref: RunbookRef): Promise<{ runbook: Runbook; version: number }> {
  const stored = ref.version ? await runbooks.get(ref.runbook, ref.version) : await runbooks.latest(ref.runbook);
  if (!stored) throw new RequestRefused(404, `runbook ${ref.runbook}${ref.version ? ` version ${ref.version}` : ''} does not exist`);
  const checked = validateRunbook(stored.text);
  if (!checked.runbook) throw new RequestRefused(422, `runbook ${ref.runbook} version ${stored.record.version} no longer validates`, { errors: checked.errors });
  if (checked.runbook.spec.protectedDomain !== domain) {
    throw new RequestRefused(422, `runbook ${ref.runbook} protects domain ${checked.runbook.spec.protectedDomain}, not ${domain}`);
  }
  return { runbook: checked.runbook, version: stored.record.version };
}

/**
 * The mode table, before any workflow starts: refused naming the mode and the operations it
 * allows, and the split-brain conflict when that is what refuses the request.
 */
export async function requireAllowed(store: ObjectStore, domain: string, request: DomainRequest) {
  const condition = await readDomainCondition(store, domain);
  const decision = decide(request, condition);
  if (!decision.allowed) {
    const allowed = offeredNow(condition);
    const open = condition.conflictSince !== undefined ? await readConflict(store, domain) : undefined;
    const becauseOfConflict = open && decide(request, { mode: condition.mode }).allowed;
    const why = open
      ? ` with a split-brain conflict open: ${describeConflict(open)}${becauseOfConflict ? `; resolve it first with POST /domains/${domain}/resolve-conflict` : ''}`
      : request === 'resolve-conflict'
        ? ' and has no split-brain conflict open'
        : '';
    throw new RequestRefused(409, `${request} is refused while ${domain} is ${condition.mode}${why}; allowed now: ${allowed.join(', ') || 'nothing'}`, {
      mode: condition.mode,
      allowedOperations: allowed,
      ...(open ? { conflict: shownConflict(open) } : {}),
    });
  }
  return decision;
}

/** What acts at the domain's recovery site, from a mode that may have none (Protected after a permanent failover that named none). */
const AT_THE_RECOVERY_SITE: readonly DomainRequest[] = ['failover', 'continuous-failover', 'drill'];

/** The requests offered, less those that need a recovery site when the domain's latest runbook names none. */
export function offeredByRunbook(offered: DomainRequest[], latest: { runbook: Runbook } | { why: string }): DomainRequest[] {
  if ('why' in latest || latest.runbook.spec.sites.recovery !== undefined) return offered;
  return offered.filter((request) => !AT_THE_RECOVERY_SITE.includes(request));
}

/**
 * Failover, continuous failover, failback and drills act at the domain's recovery site: after a
 * permanent failover that named none, its runbook has no recovery site, and they are refused.
 */
export function requireRecoverySite<T extends { runbook: Runbook; version: number }>(domain: string, request: DomainRequest, loaded: T): T & { recovery: string } {
  const recovery = loaded.runbook.spec.sites.recovery;
  if (recovery !== undefined) return { ...loaded, recovery };
  throw new RequestRefused(
    409,
    `${request} of ${domain} needs a recovery site, and runbook ${loaded.runbook.metadata.name} v${loaded.version} names none: ${domain} is protected to the storage site only (from ${loaded.runbook.spec.sites.primary}); submit a runbook version with spec.sites.recovery to recover it elsewhere`,
    { runbook: { name: loaded.runbook.metadata.name, version: loaded.version }, primarySite: loaded.runbook.spec.sites.primary },
  );
}

/**
 * Starts the operation through the domain's desk (started itself if it is not yet). `updateId`
 * makes a repeated request (a retried activity) answer the first one's record instead of being
 * refused by the operation that request started.
 */
export async function startThroughDesk(client: Client, domain: string, request: OperationRequest, updateId?: string): Promise<OperationRecord> {
  try {
    return await client.workflow.executeUpdateWithStart(startOperationUpdate, {
      args: [request],
      ...(updateId ? { updateId } : {}),
      startWorkflowOperation: new WithStartWorkflowOperation(domainOperations, deskStartOptions(domain)),
    });
  } catch (error) {
    const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === OPERATION_ALREADY_RUNNING) throw new DeskBusy(cause.message, cause.details?.[0] as OperationRecord);
    throw error;
  }
}
