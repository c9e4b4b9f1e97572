/**
 * What the validator needs to know about a site: the names that exist there. Kept name-based and
 * minimal so that any site provider's inventory can be reduced to it.
 */
export interface SiteInventory {
  datacenters: string[];
  clusters: string[];
  resourcePools: string[];
  datastores: string[];
  networks: string[];
  storagePolicies: string[];
}

/** The inventories of a runbook's sites that are known: the recovery site's for recovery, the primary's for failback. */
export interface SiteInventories {
  recovery?: SiteInventory;
  primary?: SiteInventory;
}

/** Finds the inventory of a site by name; undefined when the site is unknown or unreachable. */
export type InventoryLookup = (siteName: string) => Promise<SiteInventory | undefined> | SiteInventory | undefined;
