import { ApplicationFailure } from '@temporalio/common';

/**
 * Every failure type the product raises, and whether retrying can heal it. Activities throw them
 * through `failure()`, which sets retryability from here; workflows pass `CANNOT_HEAL` as their
 * retry policies' non-retryable types (a failure crossing a worker boundary keeps only its type).
 * Operators see these names in the Web UI and in reports, so each says what went wrong.
 */
export const FAILURES = {
  // What a site answers (sites/provider.ts SITE_ERROR_STATUS).
  VmNotFound: { heals: false, meaning: 'the site has no VM of that name' },
  DiskNotFound: { heals: false, meaning: 'the site has no disk of that id' },
  NameConflict: { heals: false, meaning: 'a resource of that name exists at the site and is not ours to reuse' },
  UnknownPlacement: { heals: false, meaning: 'the datacenter, cluster, resource pool, datastore or network is not in the site inventory' },
  InvalidRequest: { heals: false, meaning: 'the site refused the request as malformed' },
  RangeOutOfDisk: { heals: false, meaning: 'a read or write past the end of a disk' },
  DatastoreFull: { heals: false, meaning: 'the datastore named has no space left for the write: free space on it, or place the VMs on another datastore, and run the operation again' },
  Unauthorized: { heals: false, meaning: 'the site refused the worker credentials' },
  GuestShutdownTimeout: { heals: false, meaning: 'the guest did not shut down within the runbook timeout' },
  InvalidPowerState: { heals: true, meaning: 'the VM is in a power state that does not allow the request yet' },
  SiteUnavailable: { heals: true, meaning: 'the site does not answer; it is retried until it does' },
  PowerOnRefused: { heals: false, meaning: 'the site refused to power a VM on: its metadata holds a mark the request said it must not (a split-brain\'s deactivation)' },
  WriteFenced: { heals: false, meaning: 'the site refused a data-path write: a later attempt of the same work has written the disk since (this attempt was given up on while frozen or cut off), or the disk belongs to a running VM' },
  // The storage site and the replication log (datapath/).
  StaleEpoch: { heals: false, meaning: 'another site holds a newer ownership epoch: this writer is fenced' },
  NotOwner: { heals: false, meaning: 'the site does not own the domain the request needs it to own' },
  DomainOwnedElsewhere: { heals: false, meaning: 'the domain is protected from another site' },
  ObjectStoreAccessDenied: { heals: false, meaning: 'the object store refused the site worker\'s S3 credentials for a bucket and key (revoked, rotated, a policy changed): protection records it and tries again every 30 s until they are valid' },
  CorruptSegment: { heals: false, meaning: 'a log segment or base chunk fails its checksum or format' },
  NoManifest: { heals: false, meaning: 'the storage site holds no manifest for the domain: it was never protected there' },
  NoDirtyRegions: { heals: false, meaning: 'bitmap mode left no dirty regions to resync' },
  UnknownRestorePoint: { heals: false, meaning: 'the domain has no restore point of that id' },
  OutsideProtectionWindow: { heals: false, meaning: 'the requested instant is older than the protection window' },
  TargetNotRestorable: { heals: false, meaning: 'the requested point lies where no consistent image exists (inside a sync or resync, or before the oldest data)' },
  JournalGap: { heals: false, meaning: 'the site journal was trimmed past the replication cursor: writes are missing from the log' },
  DeltaNotApplicable: { heals: false, meaning: 'the disks a site left behind cannot take a delta (no known position, or the disk set or log changed since): fail back by full rehydration' },
  NoProtection: { heals: false, meaning: 'no protection of the domain runs at the site that owns it: a restore cannot keep the state it would replace' },
  ProtectionNotLogging: { heals: true, meaning: 'protection is not logging every write yet (initial sync, bitmap mode, a disk sync): a restore point follows once it is' },
  ReplicationBehind: { heals: true, meaning: 'protection is resyncing after bitmap mode; the drain waits for it' },
  // Runbooks and operations (workflows/).
  ConfirmationRequired: { heals: false, meaning: 'a forced operation was not confirmed by repeating the domain name' },
  NoConflict: { heals: false, meaning: 'the domain has no split-brain conflict open to resolve' },
  ConflictNotResolved: { heals: false, meaning: 'a VM of the domain is still active at the returning site after a resolution deactivated the stale copies' },
  OriginalVmRunning: { heals: false, meaning: 'an original VM runs at the site a failback returns to (a split-brain not resolved yet): failback would rewrite its disks under it' },
  VmInactive: { heals: false, meaning: 'the VM was deactivated after a split-brain and must not run until it is reactivated' },
  SiteOwnsDomain: { heals: false, meaning: 'the site a permanent failover retires owns the domain or is its new primary: nothing of the domain is removed there' },
  AlreadyOwned: { heals: false, meaning: 'the site the operation moves the domain to owns it already' },
  NoRecoverySite: { heals: false, meaning: 'the runbook names no recovery site for the domain (a permanent failover named none): it is protected to the storage site only' },
  NotADrillResource: { heals: false, meaning: 'a drill cleanup was asked to remove something whose name does not carry a drill prefix: it never removes production' },
  UnknownVm: { heals: false, meaning: 'the VM is not in the restore point, or not registered at the site that owns the domain' },
  UnknownRunbook: { heals: false, meaning: 'the runbook version an operation runs by is not in the runbook store' },
  RunbookMismatch: { heals: false, meaning: 'the runbook does not describe the VMs or networks being recovered' },
  RunbookStepAborted: { heals: false, meaning: 'a runbook step or VM failed under the abort policy, or an operator aborted it' },
  ApprovalTimedOut: { heals: false, meaning: 'nobody approved the step within its timeout' },
  ApprovalRejected: { heals: false, meaning: 'an approver rejected the step' },
  HeartbeatTimeout: { heals: false, meaning: 'the guest did not heartbeat within the runbook timeout' },
  SecretNotFound: { heals: false, meaning: 'a webhook names a secret the worker does not have' },
  WebhookUnreachable: { heals: true, meaning: 'the webhook endpoint did not answer' },
  WebhookUnexpectedStatus: { heals: true, meaning: 'the webhook answered with another status than the runbook expects' },
} as const satisfies Record<string, { heals: boolean; meaning: string }>;

export type FailureType = keyof typeof FAILURES;

/** The types a retry policy must not retry. */
export const CANNOT_HEAL: FailureType[] = (Object.keys(FAILURES) as FailureType[]).filter((type) => !FAILURES[type].heals);

export function isFailureType(type: string): type is FailureType {
  return type in FAILURES;
}

export function canHeal(type: string): boolean {
  return type in FAILURES ? FAILURES[type as FailureType].heals : true;
}

/** A failure of a catalogued type, retryable as the catalogue says. */
export function failure(type: FailureType, message: string, details?: unknown[]): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: !FAILURES[type].heals, ...(details ? { details } : {}) });
}
