import { defineUpdate } from '@temporalio/workflow';
import type { TestedPoint } from '../activities/datapath';
import type { PointInTime } from '../activities/handover';
import type { DrillResource, DrillResourceKind } from '../common/resource-names';
import type { RunbookCheck } from '../runbooks/schema';
import type { Listing } from './listing';
import type { RunbookInInput } from './phases/runbook';

export interface DrillInput {
  domain: string;
  /** Its name (the drill reads it: `phases/runbook.ts`), or the validated runbook as stored; it must have `spec.testNetworkMapping`. */
  runbook: RunbookInInput;
  runbookVersion: number;
  /** A restore point or an instant inside the protection window; absent: the latest consistent point. */
  pointInTime?: PointInTime;
  /** How long the drill's VMs stay up after the checks before the cleanup; 0: cleaned up right after them. */
  keepForMs: number;
  requestedBy: string;
  /** When the drill was requested: its RTO counts from here. */
  declaredAt: number;
}

/** `POST /operations/{id}/cleanup`: end a kept drill now. */
export interface CleanupRequest {
  requestedBy: string;
  /** Remove what can be removed and report what could not, instead of retrying until everything is gone. */
  force?: boolean;
}

export interface CleanupAccepted {
  workflowId: string;
  requestedBy: string;
  force: boolean;
}

export const cleanupDrillUpdate = defineUpdate<CleanupAccepted, [CleanupRequest]>('cleanupDrill');
/** The failure type of a cleanup request the drill refuses (one was accepted already, or the cleanup has begun). */
export const CLEANUP_REFUSED = 'CleanupRefused';

/** One VM's answer to a check (by its name in the domain): the last answer, and how long the check waited for it. */
export interface CheckedVm {
  vm: string;
  passed: boolean;
  detail: string;
  waitedMs: number;
}

export interface CheckResult {
  name: string;
  type: RunbookCheck['type'];
  passed: boolean;
  /** The VMs the check probed, those that failed first; `failed` counts them all. */
  vms: Listing<CheckedVm>;
  failed: number;
}

export type { DrillResource };

/** Resources by kind, counted: what a drill created and what its cleanup did, in a report that stays small at 10,000 VMs. */
export type ResourceCounts = Partial<Record<DrillResourceKind, number>>;

export interface DrillCleanup {
  requestedBy: string;
  force: boolean;
  /** The recorded resources that the cleanup removed, by kind. */
  removed: ResourceCounts;
  /** Recorded resources that were gone already (an undo, or a killed worker's earlier attempt, removed them), by kind. */
  alreadyGone: ResourceCounts;
  /** Forced cleanup only: what could not be removed, and why. */
  notRemoved: Listing<DrillResource & { why: string }>;
  inventory: {
    /** No name appeared or disappeared at the site between before the drill and after its cleanup. */
    asBefore: boolean;
    before: { vms: number; disks: number };
    /** Names of this drill still at the site. */
    leftBehind: Listing<string>;
    /** Names without this drill's prefix that appeared or disappeared meanwhile: other operations at the site. */
    otherChanges: { appeared: Listing<string>; disappeared: Listing<string> };
  };
}

export interface DrillReport {
  id: string;
  outcome: 'passed' | 'failed';
  /** Why it failed: the failed checks, and VMs the plan did not bring up. */
  failedBecause?: string[];
  checks: CheckResult[];
  /** The restore point tagged with this drill's outcome, or why none was (absent in drills that predate tagging). */
  testedPoint?: TestedPoint;
  /** Webhooks of the power-on plan the drill left out (no `runInDrill: true`). */
  skippedWebhooks: string[];
  kept: { forMs: number; endedBy: string };
  cleanup: DrillCleanup;
}
