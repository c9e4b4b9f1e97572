import { z } from 'zod';

/**
 * The JSON objects of a domain's container. Each carries `formatVersion`; a reader refuses a
 * version it does not know instead of guessing.
 */
export const RECORD_FORMAT_VERSION = 1;

const version = z.literal(RECORD_FORMAT_VERSION);

/** A place in the log: segment `afterSequence` of `epoch`, entries [0, entries) of it. */
export const positionSchema = z.object({
  epoch: z.number().int().positive(),
  segment: z.number().int().nonnegative(),
  entries: z.number().int().nonnegative(),
});
export type LogPosition = z.infer<typeof positionSchema>;

export const diskSchema = z.object({ vm: z.string(), diskId: z.string(), sizeBytes: z.number().int().positive() });
export type DomainDisk = z.infer<typeof diskSchema>;

export const vmMetadataSchema = z.object({
  name: z.string(),
  cpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  diskIds: z.array(z.string()),
  nics: z.array(
    z.object({
      network: z.string(),
      ip: z.object({ address: z.string(), prefix: z.number().int(), gateway: z.string().optional(), dns: z.array(z.string()) }).optional(),
    }),
  ),
  metadata: z.record(z.string(), z.string()),
  /** Where the VM stands at the site that recorded it (absent in records written before it was kept). */
  placement: z.object({ datacenter: z.string(), cluster: z.string(), resourcePool: z.string().optional(), datastore: z.string() }).optional(),
});
export type VmMetadata = z.infer<typeof vmMetadataSchema>;

/** `members/<digest>.json`: a protection's members as of one change of them. */
export const membersSchema = z.array(vmMetadataSchema);

export const manifestSchema = z.object({
  formatVersion: version,
  domain: z.string(),
  protectedSite: z.string(),
  disks: z.array(diskSchema),
  vms: z.array(vmMetadataSchema),
  /** Restore points and log older than this may be compacted away. */
  protectionWindowMs: z.number().int().positive(),
  updatedAt: z.number().int(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const ownershipSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  site: z.string(),
  claimedAt: z.number().int(),
  kind: z.enum(['initial', 'takeover', 'handover']),
  /**
   * Random per claim: a claimer whose create was answered "already exists" (its first put went
   * through, the answer was lost, the retried put found the object) knows the object as its own.
   * Absent in records written before it.
   */
  claimId: z.string().optional(),
});
export type OwnershipRecord = z.infer<typeof ownershipSchema>;

/**
 * Where the previous epoch's log ends for readers: its segments up to and including
 * `lastSegment` belong to the chain; later ones (a fenced writer's late puts) do not.
 */
export const handoffSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  previousEpoch: z.number().int().nonnegative(),
  lastSegment: z.number().int().nonnegative().nullable(),
  sealedAt: z.number().int(),
});
export type HandoffRecord = z.infer<typeof handoffSchema>;

export const restorePointSchema = z.object({
  formatVersion: version,
  id: z.string(),
  domain: z.string(),
  /** Consistent across all VMs: one log position covers every disk of the domain. */
  position: positionSchema,
  /** Journal sequence of the last write the point includes, at the site that owned `position.epoch`. */
  lastJournalSequence: z.number().int().nonnegative(),
  /** Acknowledgement time of the last write the point includes (or of the point when none). */
  timestamp: z.number().int(),
  createdAt: z.number().int(),
  reason: z.enum(['policy', 'on-demand']),
  /** The operator's words for an on-demand point (e.g. "before the upgrade"). */
  label: z.string().optional(),
  vms: z.array(vmMetadataSchema),
  /** The domain's disks when the point was made (from the manifest); absent in points made before membership could change. */
  disks: z.array(diskSchema).optional(),
});
export type RestorePoint = z.infer<typeof restorePointSchema>;
/**
 * A point as a protection answers when it takes one: without its VMs and disks, which at 10,000
 * VMs are over the 2 MB a Temporal payload may be. The point itself is read from the store.
 */
export type RestorePointSummary = Omit<RestorePoint, 'vms' | 'disks'>;

/** An operator's pin: garbage collection keeps the point (and what rebuilding it needs) until it is unpinned. */
export const pinSchema = z.object({
  formatVersion: version,
  pinnedBy: z.string(),
  pinnedAt: z.number().int(),
});
export type PinRecord = z.infer<typeof pinSchema>;

/** A drill that rebuilt the domain to this point, and how its checks came out. */
export const testedSchema = z.object({
  formatVersion: version,
  drill: z.string(),
  workflowId: z.string(),
  at: z.number().int(),
  outcome: z.enum(['passed', 'failed']),
});
export type TestedRecord = z.infer<typeof testedSchema>;

/**
 * The intent of an initial sync: the epoch's log is complete only from `cursor` on, so until the
 * base of (epoch, cursor) is committed no target in this epoch can be rebuilt.
 */
export const syncIntentSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  cursor: z.number().int().nonnegative(),
  site: z.string(),
  createdAt: z.number().int(),
});
export type SyncIntent = z.infer<typeof syncIntentSchema>;

/**
 * A committed base: every disk of the domain as of log position (epoch, cursor), as the non-zero
 * chunks listed here (each its own checksummed object). `initial-sync` bases are copied from
 * live disks, so they equal the domain only once the log is applied up to `consistentFrom`.
 */
export const baseSchema = z.object({
  formatVersion: version,
  id: z.string(),
  domain: z.string(),
  epoch: z.number().int().positive(),
  cursor: z.number().int().nonnegative(),
  kind: z.enum(['initial-sync', 'compaction']),
  chunkBytes: z.number().int().positive(),
  disks: z.array(diskSchema.extend({ chunks: z.array(z.number().int().nonnegative()) })),
  /** Null: exact at (epoch, cursor). Else the first log position at which base + log is exact. */
  consistentFrom: positionSchema.nullable(),
  /** Instant targets from this time on may start here: every write the image may hold was acknowledged by then. */
  timestamp: z.number().int(),
  createdAt: z.number().int(),
});
export type BaseRecord = z.infer<typeof baseSchema>;

/**
 * Bitmap mode: the domain's writes after journal cursor `segment` of `epoch` were not logged one
 * by one; a resync segment at `segment` holds the dirty regions read back from the disks. Written
 * (`start`) before anything is left out; `done` adds where base + log is exact again. Targets from
 * `firstSkippedAt` / the resync segment until then are refused.
 */
export const resyncSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  segment: z.number().int().nonnegative(),
  /** Acknowledgement time of the first write that was left out. */
  firstSkippedAt: z.number().int(),
  createdAt: z.number().int(),
  consistentFrom: positionSchema.optional(),
  /** Instants from here on are exact again. */
  consistentAt: z.number().int().optional(),
});
export type ResyncRecord = z.infer<typeof resyncSchema>;

/** The dirty regions collected in bitmap mode, and how far the journal was drained into them. */
export const dirtyRegionsSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  segment: z.number().int().nonnegative(),
  drainedTo: z.number().int().nonnegative(),
  regionBytes: z.number().int().positive(),
  /** Per disk id, the indexes of dirty regions, ascending. */
  regions: z.record(z.string(), z.array(z.number().int().nonnegative())),
});
export type DirtyRegions = z.infer<typeof dirtyRegionsSchema>;

/**
 * A running reader's claim on the store until `expiresAt`. A rehydration names `base`: garbage
 * collection keeps it and every segment after it (everything, while `base` is undefined: the
 * reader has not planned yet). A log follower that has applied segments names `position` instead:
 * the segments after it are kept, those at or before it and every base are not needed by it.
 * (A reader that predates `position` sees such a lease as unplanned and keeps everything.)
 */
export const leaseSchema = z.object({
  formatVersion: version,
  holder: z.string(),
  /** The base the reader started from; null: from zeros, so the whole log. */
  base: z.string().nullable().optional(),
  /** The last segment a follower has applied. */
  position: z.object({ epoch: z.number().int().positive(), segment: z.number().int().nonnegative() }).optional(),
  expiresAt: z.number().int(),
});
export type Lease = z.infer<typeof leaseSchema>;

/** A disk's contents in one digest: its size and the SHA-256 of each non-zero region, in order (see disk-fingerprint.ts). */
export const diskFingerprintSchema = z.object({ diskId: z.string(), sizeBytes: z.number().int().positive(), sha256: z.string() });
export type DiskFingerprint = z.infer<typeof diskFingerprintSchema>;

/**
 * Where a site's disks stood when the domain left it: the log position they hold (the end of
 * the epoch's chain the site owned) and, when the leaving site could read its disks (planned),
 * their fingerprints. A forced departure is recorded by the new owner, which cannot see the old
 * disks: `fingerprints` is null and a check derives them from base + log at `position`.
 */
export const departureSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  site: z.string(),
  kind: z.enum(['planned', 'forced']),
  position: positionSchema,
  /** The journal sequence (at `site`) of the last write at `position`. */
  journalCursor: z.number().int().nonnegative(),
  disks: z.array(diskSchema),
  fingerprints: z.array(diskFingerprintSchema).nullable(),
  /** The VMs as the site left them (configuration, networks, placement): what a failback rebuilds a VM missing there from. */
  vms: z.array(vmMetadataSchema).optional(),
  recordedAt: z.number().int(),
});
export type DepartureRecord = z.infer<typeof departureSchema>;

/**
 * The image the disks of `epoch`'s owner held when its log began at journal cursor `cursor`:
 * they were rehydrated to `from`, and nothing wrote to them before journaling started. A delta
 * may then skip the epoch's base: `from` plus the epoch's log is its image.
 */
export const arrivalSchema = z.object({
  formatVersion: version,
  epoch: z.number().int().positive(),
  site: z.string(),
  from: positionSchema,
  cursor: z.number().int().nonnegative(),
  recordedAt: z.number().int(),
});
export type ArrivalRecord = z.infer<typeof arrivalSchema>;

export function parseRecord<T>(schema: z.ZodType<T>, key: string, body: Buffer): T {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new Error(`object ${key} is not JSON: ${(error as Error).message}`);
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new Error(`object ${key} does not match its format: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return result.data;
}

/** What a rehydration rebuilds up to: a position in the log, an instant, or the end of the log. */
export type RehydrationTarget = { kind: 'position'; position: LogPosition } | { kind: 'instant'; at: number } | { kind: 'latest' };
