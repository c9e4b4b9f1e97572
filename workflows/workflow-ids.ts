/**
 * Ids of long-lived workflows that operations address by name. A domain is protected by one
 * workflow per owning site and ownership epoch, so that a failover can start protection at the
 * recovery site while the fenced primary's protection is still closing.
 */
export function protectionWorkflowId(domain: string, site: string, epoch: number): string {
  return `protect/${domain}/${site}/epoch-${epoch}`;
}
