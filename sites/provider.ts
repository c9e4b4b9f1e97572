/**
 * The site provider interface: the one contract through which activities act on a site. The
 * simulated site service implements it over HTTP (sites/client.ts); a vSphere REST or libvirt
 * provider would implement the same calls. Every mutating call is idempotent by name, so a
 * retried activity never creates a second VM, disk or appliance.
 */

export interface Inventory {
  site: string;
  datacenters: string[];
  clusters: Array<{ name: string; datacenter: string }>;
  resourcePools: Array<{ name: string; cluster: string }>;
  datastores: Array<{ name: string; capacityBytes: number }>;
  networks: string[];
  storagePolicies: string[];
}

export interface IpSettings {
  address: string;
  prefix: number;
  gateway?: string;
  dns: string[];
}

export interface Nic {
  network: string;
  ip?: IpSettings;
}

export interface VirtualDisk {
  /** Unique within the site; also the disk's file name on its datastore. */
  id: string;
  datastore: string;
  sizeBytes: number;
  /** Writes to a protected disk enter the changed-block journal that replication drains. */
  protected: boolean;
  /** The newest data-path writer's fence the disk has taken (`DiskWriteOptions.fence`); absent until one writes. */
  writeFence?: number;
}

export type PowerState = 'poweredOn' | 'poweredOff';
/** Guest tools heartbeat as vCenter shows it: green once the guest has booted, gray otherwise. */
export type GuestHeartbeat = 'green' | 'gray';
/** `vm`: a workload VM; `rocva`: a recovery appliance; `representation`: a placeholder VM that holds disks during rehydration. */
export type VmKind = 'vm' | 'rocva' | 'representation';

export interface Placement {
  datacenter: string;
  cluster: string;
  resourcePool?: string;
  datastore: string;
}

export interface RegisterVmSpec {
  name: string;
  kind?: VmKind;
  cpus: number;
  memoryMiB: number;
  placement: Placement;
  storagePolicy?: string;
  nics: Nic[];
  /** Disks that already exist on the site's datastores (created, or rehydrated into). */
  diskIds: string[];
  metadata?: Record<string, string>;
}

/** A registered VM as the site reports it. */
export interface Vm extends Required<Pick<RegisterVmSpec, 'kind' | 'metadata'>>, Omit<RegisterVmSpec, 'kind' | 'metadata'> {
  powerState: PowerState;
  /** Epoch ms of the last power-on; the guest heartbeats once the boot time has passed. */
  poweredOnAt?: number;
}

export interface PowerOnOptions {
  /**
   * Refused (`PowerOnRefused`) when the VM's metadata holds every one of these values (a running
   * VM answers `alreadyOn` whatever it holds: nothing changes). The check and the power-on are one
   * call, so nothing can mark the VM between them, and powering on a domain's VMs costs one round
   * trip each, not a read and then the power-on.
   */
  unlessMetadata?: Record<string, string>;
}

export interface PowerOnAnswer {
  vm: Vm;
  /** The VM was running before the call: nothing was done. */
  alreadyOn: boolean;
}

export interface ReconfigureSpec {
  cpus?: number;
  memoryMiB?: number;
  storagePolicy?: string;
  nics?: Nic[];
  /** The VM's disks from now on: a disk is attached by adding its id, detached by leaving it out (it stays on its datastore). */
  diskIds?: string[];
  /** The VM's metadata from now on, replacing what it had (e.g. `drState: inactive` after a split-brain). */
  metadata?: Record<string, string>;
}

export interface CreateDiskSpec {
  id: string;
  datastore: string;
  sizeBytes: number;
  protected: boolean;
}

export interface RocvaSpec {
  /** Deterministic per operation, e.g. `rocva-<domain>-<operation id hash>`. */
  name: string;
  placement: Placement;
  networks: { externalReplication: string; internal: string; management: string };
}

export interface JournalEntry {
  /** Site-wide and strictly increasing: the write order across all disks of a domain. */
  sequence: number;
  /** Epoch ms when the write was acknowledged to the guest. */
  timestamp: number;
  vm: string;
  diskId: string;
  offset: number;
  data: Buffer;
}

export interface JournalBatch {
  entries: JournalEntry[];
  /** Highest sequence written so far (for lag). */
  lastSequence: number;
  /** Lowest sequence still held (entries below were trimmed). */
  firstRetainedSequence: number;
  /** Bytes of the requested VMs' writes held after `afterSequence`, this batch's included: how far replication is behind, in bytes. */
  pendingBytes?: number;
}

export interface ReadJournalOptions {
  afterSequence: number;
  vms?: string[];
  maxBytes?: number;
  maxEntries?: number;
  /**
   * With nothing journaled after `afterSequence` for `vms`, the site may hold its answer up to this
   * long until a write of theirs arrives (a long poll): an idle domain's replicator then asks about
   * once per wait instead of ten times a second, and sees a write as soon as it is journaled.
   */
  waitMs?: number;
}

export interface SiteEvent {
  sequence: number;
  at: number;
  type: string;
  vm?: string;
  detail?: Record<string, unknown>;
}

/**
 * How a data-path writer (a rehydration, a follower, a delta) writes through the RocVA. Its
 * `fence` is the scheduled time of the activity attempt writing, from the Temporal server: an
 * attempt the server gave up on (a frozen or partitioned worker) and its retry both write the
 * disks, and the retry is always scheduled later. The site keeps the newest fence each disk has
 * taken and refuses an older one (`WriteFenced`), so a superseded attempt that wakes up cannot
 * undo its retry's writes; and it refuses any fenced write to a disk of a running VM, whose only
 * writer is its guest. Guests write without a fence.
 */
export interface DiskWriteOptions {
  fence?: number;
}

export type ShutdownOutcome = 'shutDown' | 'alreadyOff';

/** A probe of a guest's service from the site's side (a drill's checks): a TCP connect, or an HTTP GET. */
export type GuestProbe = { kind: 'tcp'; port: number } | { kind: 'http'; port: number; path: string };

export interface GuestProbeResult {
  /** The port accepted the connection (and, for HTTP, answered). */
  answered: boolean;
  /** HTTP: the status the guest answered with. */
  status?: number;
  /** What happened, in words for a report ("connection refused", "guest not running"). */
  detail: string;
}

export interface SiteProvider {
  readonly site: string;
  inventory(): Promise<Inventory>;

  listVms(): Promise<Vm[]>;
  getVm(name: string): Promise<Vm>;
  /** Idempotent by name: registering the same spec again returns the existing VM. */
  registerVm(spec: RegisterVmSpec): Promise<Vm>;
  /** Idempotent: unregistering a missing VM succeeds. Disks stay unless `deleteDisks`. */
  unregisterVm(name: string, options?: { deleteDisks?: boolean }): Promise<void>;
  /** A change of `diskIds` alone may happen while the VM runs (hot add / remove); any other change needs it powered off. */
  reconfigureVm(name: string, changes: ReconfigureSpec): Promise<Vm>;

  /** Accepts the target state: powering on a running VM succeeds (`alreadyOn`). */
  powerOn(name: string, options?: PowerOnOptions): Promise<PowerOnAnswer>;
  /** Graceful guest shutdown; fails with GuestShutdownTimeoutError when the guest does not stop in time. */
  shutdownGuest(name: string, timeoutMs: number): Promise<ShutdownOutcome>;
  powerOff(name: string): Promise<Vm>;
  guestHeartbeat(name: string): Promise<GuestHeartbeat>;
  /** One probe of a service in the guest; never throws for a service that does not answer (that is a result). */
  probeGuest(name: string, probe: GuestProbe): Promise<GuestProbeResult>;

  deployRocva(spec: RocvaSpec): Promise<Vm>;
  destroyRocva(name: string): Promise<void>;

  createDisk(spec: CreateDiskSpec): Promise<VirtualDisk>;
  getDisk(id: string): Promise<VirtualDisk>;
  /** Every disk on the site's datastores, attached or not. */
  listDisks(): Promise<VirtualDisk[]>;
  deleteDisk(id: string): Promise<void>;
  /**
   * Starts (or stops) journaling the disk's writes: a recovered disk becomes protected when
   * protection resumes at its new site. Idempotent; returns the journal's last sequence at the
   * switch, so the replicator starts right after it and misses no write.
   */
  setDiskProtection(id: string, isProtected: boolean): Promise<{ disk: VirtualDisk; journalSequence: number }>;
  readDisk(diskId: string, offset: number, length: number): Promise<Buffer>;
  /**
   * The offsets of the disk's `chunkBytes`-aligned chunks that may hold data, in order: a thin
   * disk's allocated areas, as vSphere's QueryChangedDiskAreas with change id "*" gives them. A
   * chunk not listed reads as zeros, so a copy of the whole disk reads only these.
   */
  allocatedChunks(diskId: string, chunkBytes: number): Promise<number[]>;
  writeDisk(diskId: string, offset: number, data: Buffer, options?: DiskWriteOptions): Promise<void>;

  readJournal(options: ReadJournalOptions): Promise<JournalBatch>;
  /**
   * The replicator's acknowledgement: the writes of `vms` up to here are durable elsewhere. The
   * site frees entries once every protected VM's replicator has acknowledged them, so domains
   * sharing the site's journal never lose each other's writes. Without `vms`: free up to here.
   */
  trimJournal(upToSequence: number, vms?: string[]): Promise<void>;

  events(afterSequence?: number): Promise<SiteEvent[]>;
}

/** Typed failures, as every provider reports them. `code` travels in the HTTP problem body. */
export class SiteError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = code;
  }
}

export const SITE_ERROR_STATUS = {
  VmNotFound: 404,
  DiskNotFound: 404,
  InvalidPowerState: 409,
  PowerOnRefused: 409,
  NameConflict: 409,
  GuestShutdownTimeout: 409,
  WriteFenced: 409,
  UnknownPlacement: 422,
  InvalidRequest: 400,
  RangeOutOfDisk: 416,
  DatastoreFull: 507,
  SiteUnavailable: 503,
} as const;
export type SiteErrorCode = keyof typeof SITE_ERROR_STATUS;

export function siteError(code: SiteErrorCode, message: string): SiteError {
  return new SiteError(code, message, SITE_ERROR_STATUS[code]);
}
