import { rpoBound, type ProtectStatus } from '../workflows/protect';

/** A domain's RPO now, against the target its runbook sets (`spec.protection.rpoTarget`). */
export interface RpoNow {
  /**
   * At most this many seconds of writes would be lost: the time since every write was known
   * durable. It keeps rising while the object store does not answer; before the first replicator
   * run reports it, the lag that run measured.
   */
  seconds: number;
  /** Every write journaled before this time is in the log (null: not reported yet). */
  durableAsOf: string | null;
  targetSeconds: number | null;
  breached: boolean;
}

/** Null when the protection did not answer: the RPO is then unknown, not zero. */
export function rpoNow(protection: Pick<ProtectStatus, 'lagMs' | 'durableAsOf'> | null | undefined, targetSeconds: number | undefined, now: number): RpoNow | null {
  if (!protection) return null;
  const seconds = rpoBound(protection, now) ?? Math.round(protection.lagMs / 100) / 10;
  return {
    seconds,
    durableAsOf: protection.durableAsOf === undefined ? null : new Date(protection.durableAsOf).toISOString(),
    targetSeconds: targetSeconds ?? null,
    breached: targetSeconds !== undefined && seconds > targetSeconds,
  };
}

export const rpoBreachWarning = (domain: string, rpo: RpoNow) => `the RPO of ${domain} is ${rpo.seconds} s, past its target of ${rpo.targetSeconds} s (spec.protection.rpoTarget)`;
