/**
 * A protected domain's mode, and which operation may start from which mode: the one table the
 * API enforces before it starts any workflow and the workflows record after they succeed. The
 * words are the product documents' ("Running in Failover", "Continuous Rehydration in Progress").
 */
export const DOMAIN_MODES = ['Protected', 'Continuous Rehydration in Progress', 'Running in Failover', 'Continuous Failback in Progress'] as const;
export type DomainMode = (typeof DOMAIN_MODES)[number];

/**
 * What an operator can ask of a domain. `failover` while a continuous failover runs completes it;
 * `resolve-conflict` ends a split-brain and is allowed exactly while one is open, in any mode.
 */
export const DOMAIN_REQUESTS = ['power-on', 'failover', 'continuous-failover', 'failback', 'continuous-failback', 'permanent-failover', 'drill', 'restore', 'resolve-conflict'] as const;
export type DomainRequest = (typeof DOMAIN_REQUESTS)[number];

export type ModeDecision =
  | { allowed: true; /** The mode after the operation succeeds (unchanged when absent). */ becomes?: DomainMode; /** The request completes this running operation instead of starting one. */ completes?: 'continuous-failover' | 'continuous-failback' }
  | { allowed: false; reason: string };

type Row = Partial<Record<DomainRequest, Omit<Extract<ModeDecision, { allowed: true }>, 'allowed'>>>;

/** What each mode allows; anything absent is refused. */
const TABLE: Record<DomainMode, Row> = {
  Protected: {
    'power-on': {},
    failover: { becomes: 'Running in Failover' },
    'continuous-failover': { becomes: 'Continuous Rehydration in Progress' },
    drill: {},
    restore: {},
  },
  'Continuous Rehydration in Progress': {
    failover: { becomes: 'Running in Failover', completes: 'continuous-failover' },
    drill: {},
  },
  'Running in Failover': {
    'power-on': {},
    failback: { becomes: 'Protected' },
    'continuous-failback': { becomes: 'Continuous Failback in Progress' },
    'permanent-failover': { becomes: 'Protected' },
    drill: {},
    restore: {},
  },
  'Continuous Failback in Progress': {
    failback: { becomes: 'Protected', completes: 'continuous-failback' },
    drill: {},
  },
};

/** With a split-brain conflict open, these are refused whatever the mode says, until it is resolved. */
const REFUSED_IN_CONFLICT: DomainRequest[] = ['continuous-failover', 'failback', 'continuous-failback', 'restore'];

/**
 * Refused by the conflict: those above, and a failover from `Protected`. A domain is Protected with
 * a conflict open when a forced failback fenced the recovery site and it came back running its stale
 * copies: a failover to it would rebuild the domain under them.
 */
function refusedInConflict(request: DomainRequest, mode: DomainMode): boolean {
  return REFUSED_IN_CONFLICT.includes(request) || (request === 'failover' && mode === 'Protected');
}

export interface DomainCondition {
  mode: DomainMode;
  /** A returning site runs the domain's VMs too (split-brain), since this instant. */
  conflictSince?: number;
}

function allowedBy(request: DomainRequest, { mode, conflictSince }: DomainCondition): Row[DomainRequest] | undefined {
  if (request === 'resolve-conflict') return conflictSince !== undefined ? {} : undefined;
  if (conflictSince !== undefined && refusedInConflict(request, mode)) return undefined;
  // Permanent failover is how a split-brain ends when the old primary is not coming back for good.
  if (request === 'permanent-failover' && conflictSince !== undefined) return { becomes: 'Protected' };
  return TABLE[mode][request];
}

export function allowedRequests(condition: DomainCondition): DomainRequest[] {
  return DOMAIN_REQUESTS.filter((request) => allowedBy(request, condition) !== undefined);
}

export function decide(request: DomainRequest, condition: DomainCondition): ModeDecision {
  const allowed = allowedBy(request, condition);
  if (allowed) return { allowed: true, ...allowed };
  const conflict =
    condition.conflictSince !== undefined && refusedInConflict(request, condition.mode)
      ? ` with a split-brain conflict open since ${new Date(condition.conflictSince).toISOString()} (resolve it first)`
      : request === 'resolve-conflict'
        ? ' without a split-brain conflict open'
        : '';
  return { allowed: false, reason: `${request} is not allowed while ${condition.mode === 'Protected' ? 'the domain is Protected' : `the domain is ${condition.mode}`}${conflict}; allowed now: ${allowedRequests(condition).join(', ') || 'nothing'}` };
}
