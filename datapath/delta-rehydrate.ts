import { follow, type FollowCursor, type FollowOptions, type FollowResult } from './follower';
import type { LogPosition } from './records';

/**
 * A delta rehydration: the disks a site left behind hold the departure position (checked by
 * `checkDeltaBase`), so only the log after it is applied: the departing epoch's rest (none once
 * sealed) and every later epoch's log from its arrival on. No base is read: each later epoch
 * started from the image before it (the lineage the check proved), so its initial-sync base
 * would only rewrite what the disks already hold. This is the follower started at the
 * departure position as if it had applied everything up to there: bounded memory, a cursor to
 * resume from, bytes read and written reported.
 */
export function deltaCursor(from: LogPosition, journalCursor: number): FollowCursor {
  return { base: null, baseWritten: true, applied: { epoch: from.epoch, segment: from.segment, endsAt: journalCursor } };
}

export type DeltaOptions = Omit<FollowOptions, 'cursor' | 'untilEnd'> & {
  /** Where an earlier attempt stopped; absent: start at the departure. */
  cursor?: FollowCursor;
  from: LogPosition;
  journalCursor: number;
};

/** Applies what the chain holds after the departure (or `cursor`) and returns. */
export async function rehydrateDelta(options: DeltaOptions): Promise<FollowResult> {
  const { from, journalCursor, cursor, ...rest } = options;
  return follow({ ...rest, cursor: cursor ?? deltaCursor(from, journalCursor), untilEnd: true });
}
