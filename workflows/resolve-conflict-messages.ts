import type { RequestedOperation } from './operation';

/** What an operator may do about a split-brain: `deactivate` the stale copies at the returning site. */
export const CONFLICT_ACTIONS = ['deactivate'] as const;
export type ConflictAction = (typeof CONFLICT_ACTIONS)[number];

export interface ResolveConflictInput extends RequestedOperation {
  action: ConflictAction;
  /** The conflict as the API saw it when the request was accepted; the workflow checks it again. */
  conflict: { site: string; vms: string[]; since: number; owner: string };
}

/** A side copy's name, deterministic per conflict so that a retried export names the same objects: `<site>-<since as an ISO instant>`. */
export function sideCopyName(site: string, since: number): string {
  return `${site}-${new Date(since).toISOString().replace(/[:.]/g, '-')}`;
}
