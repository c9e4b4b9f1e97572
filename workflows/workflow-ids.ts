/**
 * Every workflow id the product builds, and the one parser of them. Ids read as what they are in
 * the Web UI's list: `failover/demo/2026-11-29T17:00:00.000Z`, `protect/demo/recovery/epoch-3`.
 */

/** The operations a domain's desk starts, each the first segment of its workflow id. */
export const OPERATION_KINDS = ['power-on', 'failover', 'continuous-failover', 'failback', 'continuous-failback', 'resolve-conflict', 'drill', 'permanent-failover', 'restore'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

/** `<operation>/<domain>/<start time>`: one operation of a domain. */
export function operationWorkflowId(operation: OperationKind, domain: string, startedAt: number): string {
  return `${operation}/${domain}/${new Date(startedAt).toISOString()}`;
}

export function parseOperationWorkflowId(workflowId: string): { operation: OperationKind; domain: string; startedAt: string } | undefined {
  const [operation, domain, startedAt, ...rest] = workflowId.split('/');
  if (rest.length > 0 || !domain || !startedAt || !(OPERATION_KINDS as readonly string[]).includes(operation)) return undefined;
  return { operation: operation as OperationKind, domain, startedAt };
}

/** The domain's operations desk: one operation of the domain at a time. */
export function domainOperationsWorkflowId(domain: string): string {
  return `domain/${domain}`;
}

/**
 * A domain is protected by one workflow per owning site and ownership epoch, so that a failover
 * can start protection at the recovery site while the fenced primary's protection is still closing.
 */
export function protectionWorkflowId(domain: string, site: string, epoch: number): string {
  return `protect/${domain}/${site}/epoch-${epoch}`;
}

/**
 * The removal of a domain from the site a permanent failover retired: one per domain and site, so
 * that a retried or repeated permanent failover finds the removal already under way.
 */
export function retireWorkflowId(domain: string, site: string): string {
  return `retire/${domain}/${site}`;
}

/** The split-brain detector of a site: one per site, kept running by that site's worker. */
export function conflictWatchWorkflowId(site: string): string {
  return `conflict-watch/${site}`;
}

/** A power-on group's child of an operation: operators address approvals and decisions to it. */
export function powerOnGroupWorkflowId(operationWorkflowId: string, group: string): string {
  return `${operationWorkflowId}/power-on/${group}`;
}

/**
 * One batch of a power-on group too big for one child (`POWER_ON_BATCH_VMS`): read in the Web UI
 * as `…/power-on/web/batch-3-of-10`, under its group's id.
 */
export function powerOnBatchWorkflowId(operationWorkflowId: string, group: string, batch: { index: number; total: number }): string {
  return `${powerOnGroupWorkflowId(operationWorkflowId, group)}/batch-${batch.index}-of-${batch.total}`;
}

/** A domain's drill schedule (a Temporal Schedule, on the Web UI's Schedules page): one per domain. */
export function drillScheduleId(domain: string): string {
  return `drill-schedule/${domain}`;
}

/** The runs of a drill schedule; Temporal appends each run's scheduled time. */
export function scheduledDrillWorkflowId(domain: string): string {
  return `scheduled-drill/${domain}`;
}
