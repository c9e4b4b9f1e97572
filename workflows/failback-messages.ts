import type { HandoverType } from './operation-messages';
import type { RunbookInInput } from './phases/runbook';

export interface FailbackInput {
  domain: string;
  type: HandoverType;
  /** The runbook the domain failed over by, by name (`phases/runbook.ts`) or as stored: its primary site is where failback returns to. */
  runbook: RunbookInInput;
  runbookVersion: number;
  requestedBy: string;
  /** When the failback was declared: RTO and RPO are measured from here. */
  declaredAt: number;
  /** Forced failback only: must repeat the domain's name, confirming that the recovery site is lost. */
  forcedConfirmation?: string;
}
