import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Typed search attributes every DR operation carries, so operators can filter the Web UI's
 * workflow list (e.g. `DrDomain = "demo" AND DrOutcome = "failed"`). Registered on the embedded
 * dev server at start; on an external cluster run `npm run register-search-attributes`.
 */
export const DR_DOMAIN = defineSearchAttributeKey('DrDomain', SearchAttributeType.KEYWORD);
export const DR_OPERATION = defineSearchAttributeKey('DrOperation', SearchAttributeType.KEYWORD);
export const DR_PRIMARY_SITE = defineSearchAttributeKey('DrPrimarySite', SearchAttributeType.KEYWORD);
export const DR_RECOVERY_SITE = defineSearchAttributeKey('DrRecoverySite', SearchAttributeType.KEYWORD);
export const DR_SITE = defineSearchAttributeKey('DrSite', SearchAttributeType.KEYWORD);
export const DR_FAILOVER_TYPE = defineSearchAttributeKey('DrFailoverType', SearchAttributeType.KEYWORD);
export const DR_OUTCOME = defineSearchAttributeKey('DrOutcome', SearchAttributeType.KEYWORD);
export const DR_REQUESTED_BY = defineSearchAttributeKey('DrRequestedBy', SearchAttributeType.KEYWORD);
/** Domains with a split-brain conflict open: on each site's conflict watch, and on the resolve-conflict operation (`DrConflict = "demo"`). */
export const DR_CONFLICT = defineSearchAttributeKey('DrConflict', SearchAttributeType.KEYWORD_LIST);

export const ALL_SEARCH_ATTRIBUTES = [
  DR_DOMAIN,
  DR_OPERATION,
  DR_PRIMARY_SITE,
  DR_RECOVERY_SITE,
  DR_SITE,
  DR_FAILOVER_TYPE,
  DR_OUTCOME,
  DR_REQUESTED_BY,
  DR_CONFLICT,
] as const;
