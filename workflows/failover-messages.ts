import { defineQuery } from '@temporalio/workflow';
import type { PointInTime } from '../activities/handover';
import type { Runbook } from '../runbooks/schema';
import type { CompensationOutcome } from './compensation';

export type FailoverType = 'planned' | 'forced';

export interface FailoverInput {
  domain: string;
  type: FailoverType;
  /** The validated runbook, as stored; the operation's history records exactly what it ran. */
  runbook: Runbook;
  runbookVersion: number;
  /** A restore point or an instant inside the protection window; absent: the latest consistent point. */
  pointInTime?: PointInTime;
  requestedBy: string;
  /** When the disaster (or the move) was declared: RTO and RPO are measured from here. */
  declaredAt: number;
  /** Forced failover only: must repeat the domain's name, confirming that the primary is lost. */
  forcedConfirmation?: string;
}

export type FailoverVmState = 'protected' | 'shutDown' | 'rehydrating' | 'rehydrated' | 'registered' | 'poweredOn' | 'leftPoweredOff' | 'failed' | 'removed';
export type StepState = 'running' | 'done' | 'failed';
export type FailoverOutcome = 'running' | 'succeeded' | 'aborted' | 'cancelled';

export interface FailoverStep {
  name: string;
  state: StepState;
  startedAt: number;
  endedAt?: number;
  durationMs?: number;
  detail?: string;
}

export interface FailoverProgress {
  domain: string;
  type: FailoverType;
  primarySite: string;
  recoverySite: string;
  runbook: { name: string; version: number };
  requestedBy: string;
  outcome: FailoverOutcome;
  phase: string;
  steps: FailoverStep[];
  vms: Array<{ name: string; state: FailoverVmState }>;
  bytesRehydrated: number;
  /** Ownership of the domain once this operation holds it. */
  epoch?: number;
  recoveryPoint?: { description: string; dataFrom: number; lastJournalSequence?: number };
  declaredAt: number;
  startedAt: number;
  /** As of the workflow's latest event. */
  elapsedMs: number;
  rtoSoFarMs: number;
}

export interface FailoverReport extends Omit<FailoverProgress, 'phase' | 'elapsedMs' | 'rtoSoFarMs'> {
  endedAt: number;
  /** Declaration until every VM the plan starts was running at the recovery site. */
  rtoMs?: number;
  /** Declaration minus the instant the recovered data is from (0: nothing acknowledged was lost). */
  rpoMs?: number;
  failure?: string;
  compensation?: CompensationOutcome;
}

export const failoverProgressQuery = defineQuery<FailoverProgress>('failoverProgress');
export const FAILOVER_ABORTED = 'FailoverAborted';
