import type { PointInTime } from '../activities/handover';
import type { CommitPolicy } from './commit-window-messages';
import type { HandoverType } from './operation-messages';
import type { RunbookInInput } from './phases/runbook';

export interface FailoverInput {
  domain: string;
  type: HandoverType;
  /** The runbook's name (the failover reads it: `phases/runbook.ts`), or the validated runbook as stored; the operation's history records exactly what it ran. */
  runbook: RunbookInInput;
  runbookVersion: number;
  /** A restore point or an instant inside the protection window; absent: the latest consistent point. */
  pointInTime?: PointInTime;
  requestedBy: string;
  /** When the disaster (or the move) was declared: RTO and RPO are measured from here. */
  declaredAt: number;
  /** Forced failover only: must repeat the domain's name, confirming that the primary is lost. */
  forcedConfirmation?: string;
  /** Keeps the failover open for a commit or a rollback; absent: committed as it succeeds. */
  commit?: CommitPolicy;
  /** Planned only: once committed, the original disks at the primary follow the recovery site's log (a continuous failback). */
  continuousFailback?: boolean;
}

