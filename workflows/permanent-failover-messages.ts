import type { RequestedOperation } from './operation';

export interface PermanentFailoverInput extends RequestedOperation {
  /** Must repeat the domain's name: the old primary is retired and what it holds of the domain removed for good. */
  confirmation?: string;
  /**
   * The runbook version for the new direction (primary: the recovery site the domain runs at; recovery:
   * the new recovery site or none), as the API derived and validated it before anything changed.
   */
  newDirection: { text: string; primary: string; recovery?: string };
}

/** The input of the workflow (`retire/<domain>/<site>`) that removes a domain from the site a permanent failover retired. */
export interface RetireInput {
  domain: string;
  /** The retired site. */
  site: string;
  /** The domain's new primary: nothing is ever removed there. */
  newPrimary: string;
  /** The domain's VMs by its manifest: representation VMs for them go too. */
  vms: string[];
  /** The domain's disks (the same ids at every site): those the retired site still holds go, attached or not. */
  diskIds: string[];
  /** The permanent failover that retired the site. */
  permanentFailover: string;
}
