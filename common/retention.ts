/**
 * Which restore points a retention policy keeps: a pure function of the points' timestamps, the
 * pins, the policy and the current time, so that garbage collection, the API and the tests all
 * agree on it. See docs/restore-points.md for the rule in words.
 */

/** `everyMs: 'all'` keeps every point younger than `forMs`; a number keeps the newest point of each such bucket. */
export interface RetentionTier {
  everyMs: number | 'all';
  forMs: number;
}

export interface RetentionPolicy {
  tiers: RetentionTier[];
  /** A point a drill tested is pinned without an operator asking. */
  keepTested: boolean;
}

/** Without a policy in the runbook: every point for the protection window, as before retention existed. */
export const windowOnly = (windowMs: number): RetentionPolicy => ({ tiers: [{ everyMs: 'all', forMs: windowMs }], keepTested: false });

export interface RetentionDecision {
  id: string;
  kept: boolean;
  /** The indexes of the tiers that keep it. */
  tiers: number[];
  pinned: boolean;
  /**
   * When the tiers that keep it stop keeping it, unless a newer point arrives in the same bucket
   * first; null while it is pinned or when nothing keeps it.
   */
  expiresAt: number | null;
}

/** Newer: later timestamp, then later log position (ids are positions; only the unpadded entry count needs numeric order). */
const newer = (a: { id: string; timestamp: number }, b: { id: string; timestamp: number }) =>
  a.timestamp !== b.timestamp ? a.timestamp > b.timestamp : a.id.localeCompare(b.id, 'en', { numeric: true }) > 0;

/**
 * For each tier, a point is kept when it is younger than `forMs` (now - timestamp < forMs) and,
 * for a bucketed tier, it is the newest point whose timestamp falls in its bucket
 * (floor(timestamp / everyMs): buckets align to the Unix epoch, so `1d` buckets are UTC days).
 * A pinned point is kept whatever the tiers say. Deleting the points not kept changes nothing
 * about which are kept, so applying the selection twice is applying it once.
 */
export function selectRetained(points: Array<{ id: string; timestamp: number }>, pinned: ReadonlySet<string>, policy: RetentionPolicy, now: number): RetentionDecision[] {
  const newestInBucket = policy.tiers.map(({ everyMs }) => {
    if (everyMs === 'all') return undefined;
    const newest = new Map<number, { id: string; timestamp: number }>();
    for (const point of points) {
      const bucket = Math.floor(point.timestamp / everyMs);
      const current = newest.get(bucket);
      if (!current || newer(point, current)) newest.set(bucket, point);
    }
    return new Set([...newest.values()].map((p) => p.id));
  });
  return points.map((point) => {
    const tiers = policy.tiers.flatMap((tier, index) => {
      const young = now - point.timestamp < tier.forMs;
      const newest = newestInBucket[index]?.has(point.id) ?? true;
      return young && newest ? [index] : [];
    });
    const isPinned = pinned.has(point.id);
    const expiresAt = isPinned || tiers.length === 0 ? null : Math.max(...tiers.map((i) => point.timestamp + policy.tiers[i].forMs));
    return { id: point.id, kept: isPinned || tiers.length > 0, tiers, pinned: isPinned, expiresAt };
  });
}
