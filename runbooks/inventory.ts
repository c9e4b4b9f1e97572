/**
 * What the validator needs to know about a recovery site: the names that exist there. Kept
 * name-based and minimal so that any site provider's inventory can be reduced to it.
 */
export interface RecoverySiteInventory {
  datacenters: string[];
  clusters: string[];
  resourcePools: string[];
  datastores: string[];
  networks: string[];
  storagePolicies: string[];
}

/** Finds the inventory of a site by name; undefined when the site is unknown or unreachable. */
export type InventoryLookup = (siteName: string) => Promise<RecoverySiteInventory | undefined> | RecoverySiteInventory | undefined;
