import type { PointInTime } from '../activities/handover';
import type { RunbookInInput } from './phases/runbook';
import type { OperationVmState } from './vm-state';

export interface RestoreInput {
  domain: string;
  /** The site that owns the domain, where it is restored in place (it stays the owner). */
  site: string;
  /** Its name (the restore reads it: `phases/runbook.ts`), or the validated runbook as stored: its power-on plan at `site` starts the restored VMs. */
  runbook: RunbookInInput;
  runbookVersion: number;
  /** A restore point or an instant inside the protection window. */
  pointInTime: PointInTime;
  /** Only these VMs are restored; the others keep running untouched. Absent: every VM of the point. */
  vms?: string[];
  /** Must repeat the domain's name: a restore overwrites the VMs' disks. */
  confirm: string;
  requestedBy: string;
  /** When the restore was requested: RTO and RPO are measured from here. */
  declaredAt: number;
}

/** What a restore reports besides RTO and RPO. */
export interface RestoreReport {
  site: string;
  /** The state the restore replaced, kept as a restore point: restoring to it undoes the restore. */
  savedPoint: { id: string; timestamp: number };
  /** The ownership epoch the domain left and the one its protection resumed in. */
  epochs: { before: number; after: number };
  /** Each VM of the domain: restored (and how it ended up) or left untouched, and why. */
  vms: Array<{ vm: string; restored: true; state?: OperationVmState } | { vm: string; restored: false; why: string }>;
}
