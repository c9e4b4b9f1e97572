import type { ProtectStatus } from '../workflows/protect';

/** A domain's RPO now, against the target its runbook sets (`spec.protection.rpoTarget`). */
export interface RpoNow {
  /** The protection's lag as its replicator last measured it. */
  seconds: number;
  targetSeconds: number | null;
  breached: boolean;
}

/** Null when the protection did not answer: the RPO is then unknown, not zero. */
export function rpoNow(protection: Pick<ProtectStatus, 'lagMs'> | null | undefined, targetSeconds: number | undefined): RpoNow | null {
  if (!protection) return null;
  const seconds = Math.round(protection.lagMs / 100) / 10;
  return { seconds, targetSeconds: targetSeconds ?? null, breached: targetSeconds !== undefined && seconds > targetSeconds };
}

export const rpoBreachWarning = (domain: string, rpo: RpoNow) => `the RPO of ${domain} is ${rpo.seconds} s, past its target of ${rpo.targetSeconds} s (spec.protection.rpoTarget)`;
