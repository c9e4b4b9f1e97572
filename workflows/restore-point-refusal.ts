/**
 * When a protection can take a restore point, in one place: its restore-point update refuses with
 * these words, its policy skips a point on them, and the API asks them before it starts a restore.
 * A point needs the end of the log to be restorable: every write logged (no initial sync, bitmap
 * or resync), no disk still being copied into the log, and at least one write replicated.
 */

/** The part of a protection's status (ProtectStatus) that decides it. */
export interface RestorePointReadiness {
  mode: string;
  cursor: number;
  diskSync?: { disks: readonly string[]; copiedDisks: number };
}

/**
 * Why no restore point can be taken now, as the predicate of a sentence whose subject is the
 * protection ("protection of epoch 3 is in its initial sync ... "), or undefined when one can.
 * `initialSyncProgress`: how far the initial sync has got, when the caller knows.
 */
export function whyNoRestorePoint(status: RestorePointReadiness, initialSyncProgress?: string): string | undefined {
  if (status.mode === 'initial-sync') return `is in its initial sync${initialSyncProgress ? ` (${initialSyncProgress})` : ''} and takes restore points only once it is finished`;
  if (status.mode !== 'log') return `is in ${status.mode} mode (replication fell behind) and takes restore points only once every write is logged again`;
  if (status.diskSync) return `is copying new disks into its log (${status.diskSync.copiedDisks} of ${status.diskSync.disks.length} copied) and takes restore points only once the log covers them`;
  if (status.cursor === 0) return 'has replicated no write yet and takes restore points only once it has';
  return undefined;
}
