import path from 'node:path';
import { mkdirSync } from 'node:fs';
import {
  siteError,
  type CreateDiskSpec,
  type DiskWriteOptions,
  type GuestHeartbeat,
  type GuestProbe,
  type GuestProbeResult,
  type Inventory,
  type JournalBatch,
  type Placement,
  type PowerOnAnswer,
  type PowerOnOptions,
  type ReadJournalOptions,
  type ReconfigureSpec,
  type RegisterVmSpec,
  type RocvaSpec,
  type ShutdownOutcome,
  type SiteEvent,
  type SiteProvider,
  type VirtualDisk,
  type Vm,
} from '../provider';
import { DiskFiles } from './disk-files';
import { Journal } from './journal';
import { SiteStateFile, type PersistedState } from './site-state-file';

export interface SimulatedSiteOptions {
  name: string;
  dataDir: string;
  inventory: Omit<Inventory, 'site'>;
  /** Time from power-on until the guest heartbeats. */
  bootMs: number;
  /** Time a guest takes to shut down when asked. */
  shutdownMs: number;
}

const EVENTS_KEPT = 20_000;
/** The largest chunk `allocatedChunks` scans by: it holds one in memory. */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** The longest a journal read is held for a write (`ReadJournalOptions.waitMs`): a request must not outlast its client's patience. */
export const MAX_JOURNAL_WAIT_MS = 10_000;

interface JournalWaiter {
  vms?: Set<string>;
  wake: () => void;
}

/**
 * A small vCenter: inventory, VMs, power and guest heartbeats, appliances and disks holding real
 * bytes, and the changed-block journal. State is a JSON document replaced atomically after every
 * change, so a killed site restarts with the same VMs, power states and journal.
 */
export class SimulatedSite implements SiteProvider {
  readonly site: string;
  /** Staged disaster: guests ignore shutdown requests. */
  hangGuestShutdown = false;
  private readonly state: PersistedState;
  private pendingSave?: Promise<void>;
  private readonly stateFile: SiteStateFile;
  /** What changed since the last save: written as one line of the state's change log. */
  private readonly unsaved = { vms: new Set<string>(), disks: new Set<string>(), acks: new Set<string>(), eventsFrom: 0 };
  private readonly disks: DiskFiles;
  private readonly journal: Journal;
  /** Per datastore: its definition's capacity, or what the admin API set since the site started. */
  private readonly capacity: Map<string, number>;
  /** Which VM holds each attached disk: every guest write and registration asks, and a scan of all VMs made a 10,000-VM site quadratic. */
  private readonly diskHolders = new Map<string, string>();
  /** Journal reads held until a write of their VMs arrives (`ReadJournalOptions.waitMs`). */
  private readonly journalWaiters = new Set<JournalWaiter>();
  /** `<disk>:<fence>` of each writer refused, so that its refusal is one event, not one per write. */
  private readonly fencedWriters = new Set<string>();

  constructor(private readonly options: SimulatedSiteOptions) {
    this.site = options.name;
    this.capacity = new Map(options.inventory.datastores.map((d) => [d.name, d.capacityBytes]));
    mkdirSync(options.dataDir, { recursive: true });
    this.stateFile = new SiteStateFile(path.join(options.dataDir, 'state.json'), EVENTS_KEPT);
    this.state = this.stateFile.load();
    for (const vm of Object.values(this.state.vms)) this.attach(vm.name, vm.diskIds);
    this.unsaved.eventsFrom = this.state.nextEvent;
    this.disks = new DiskFiles(options.dataDir);
    this.journal = new Journal(path.join(options.dataDir, 'journal'));
  }

  private attach(vm: string, diskIds: string[]): void {
    for (const id of diskIds) this.diskHolders.set(id, vm);
  }

  private detach(diskIds: string[]): void {
    for (const id of diskIds) this.diskHolders.delete(id);
  }

  /** The first VM other than `except` that holds one of `diskIds`. */
  private holderOf(diskIds: string[], except?: string): string | undefined {
    return diskIds.map((id) => this.diskHolders.get(id)).find((holder) => holder !== undefined && holder !== except);
  }

  close(): void {
    for (const waiter of this.journalWaiters) waiter.wake();
    this.disks.closeAll();
    this.journal.close();
    this.stateFile.close();
  }

  /**
   * Group commit: every change made in this turn of the event loop is written as one line of the
   * state's change log, and each caller answers only after it, so a killed site never acknowledged
   * a change it lost, and a thousand concurrent registrations append one line, not a thousand.
   */
  private save(): Promise<void> {
    this.pendingSave ??= new Promise((resolve, reject) => {
      setImmediate(() => {
        this.pendingSave = undefined;
        try {
          this.saveChanges();
          resolve();
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    return this.pendingSave;
  }

  private saveChanges(): void {
    const { vms, disks, acks, eventsFrom } = this.unsaved;
    this.stateFile.append(this.state, {
      vms: Object.fromEntries([...vms].map((name) => [name, this.state.vms[name] ?? null])),
      disks: Object.fromEntries([...disks].map((id) => [id, this.state.disks[id] ?? null])),
      events: this.state.events.filter((e) => e.sequence >= eventsFrom),
      nextEvent: this.state.nextEvent,
      ...(acks.size > 0 ? { journalAcks: Object.fromEntries([...acks].map((vm) => [vm, this.state.journalAcks?.[vm] ?? 0])) } : {}),
    });
    vms.clear();
    disks.clear();
    acks.clear();
    this.unsaved.eventsFrom = this.state.nextEvent;
  }

  /** How many changes to VMs and disks the site has made (each is recorded as an event): what a reader may cache its views against. */
  get changes(): number {
    return this.state.nextEvent;
  }

  /** Every change of state is recorded as an event naming what it changed: that is also what the next save writes. */
  private record(type: string, vm?: string, detail?: Record<string, unknown>): void {
    if (vm) this.unsaved.vms.add(vm);
    if (typeof detail?.disk === 'string') this.unsaved.disks.add(detail.disk);
    this.state.events.push({ sequence: this.state.nextEvent++, at: Date.now(), type, ...(vm ? { vm } : {}), ...(detail ? { detail } : {}) });
    if (this.state.events.length > EVENTS_KEPT) this.state.events.splice(0, this.state.events.length - EVENTS_KEPT);
  }

  private vm(name: string): Vm {
    const vm = this.state.vms[name];
    if (!vm) throw siteError('VmNotFound', `VM "${name}" does not exist at site ${this.site}`);
    return vm;
  }

  private disk(id: string): VirtualDisk {
    const disk = this.state.disks[id];
    if (!disk) throw siteError('DiskNotFound', `disk "${id}" does not exist at site ${this.site}`);
    return disk;
  }

  private checkPlacement(p: Placement): void {
    const inv = this.options.inventory;
    const missing = [
      !inv.datacenters.includes(p.datacenter) && `datacenter "${p.datacenter}"`,
      !inv.clusters.some((c) => c.name === p.cluster && c.datacenter === p.datacenter) && `cluster "${p.cluster}" in ${p.datacenter}`,
      p.resourcePool !== undefined && !inv.resourcePools.some((r) => r.name === p.resourcePool && r.cluster === p.cluster) && `resource pool "${p.resourcePool}" in ${p.cluster}`,
      !inv.datastores.some((d) => d.name === p.datastore) && `datastore "${p.datastore}"`,
    ].filter(Boolean);
    if (missing.length > 0) throw siteError('UnknownPlacement', `site ${this.site} has no ${missing.join(', ')}`);
  }

  private checkNetworks(networks: string[]): void {
    const unknown = networks.filter((n) => !this.options.inventory.networks.includes(n));
    if (unknown.length > 0) throw siteError('UnknownPlacement', `site ${this.site} has no network ${unknown.map((n) => `"${n}"`).join(', ')}`);
  }

  inventory(): Promise<Inventory> {
    return Promise.resolve({ site: this.site, ...this.options.inventory, datastores: this.options.inventory.datastores.map((d) => ({ name: d.name, capacityBytes: this.capacity.get(d.name)! })) });
  }

  /** Each datastore's capacity and the bytes its thin disks have allocated. */
  datastoreUsage(): Array<{ name: string; capacityBytes: number; usedBytes: number }> {
    return [...this.capacity].map(([name, capacityBytes]) => ({ name, capacityBytes, usedBytes: this.disks.usedBytes(name) }));
  }

  /** A staged full (or freed) datastore: false when the site has no datastore of that name. */
  setDatastoreCapacity(name: string, capacityBytes: number): boolean {
    if (!this.capacity.has(name)) return false;
    this.capacity.set(name, capacityBytes);
    return true;
  }

  /**
   * Disks are thin: a write may allocate up to its length. One that might not fit is refused whole,
   * before it is journaled, as a datastore out of space fails the write (ENOSPC) rather than store part of it.
   */
  private checkSpace(disk: VirtualDisk, length: number): void {
    const capacity = this.capacity.get(disk.datastore) ?? Infinity;
    const free = Math.max(0, capacity - this.disks.usedBytes(disk.datastore));
    if (length > free) {
      throw siteError('DatastoreFull', `datastore "${disk.datastore}" at site ${this.site} is full: a write of ${length} bytes to disk "${disk.id}" needs more than the ${free} bytes free of its ${capacity}`);
    }
  }

  listVms(): Promise<Vm[]> {
    return Promise.resolve(Object.values(this.state.vms).sort((a, b) => a.name.localeCompare(b.name)));
  }

  getVm(name: string): Promise<Vm> {
    return Promise.resolve(this.vm(name));
  }

  registerVm(spec: RegisterVmSpec): Promise<Vm> {
    const kind = spec.kind ?? 'vm';
    const existing = this.state.vms[spec.name];
    if (existing) {
      if (existing.kind !== kind) throw siteError('NameConflict', `"${spec.name}" already exists at site ${this.site} as a ${existing.kind}`);
      return Promise.resolve(existing);
    }
    this.checkPlacement(spec.placement);
    this.checkNetworks(spec.nics.map((n) => n.network));
    for (const id of spec.diskIds) this.disk(id);
    const holder = this.holderOf(spec.diskIds);
    if (holder) throw siteError('NameConflict', `a disk of "${spec.name}" is already attached to "${holder}"`);
    const vm: Vm = {
      name: spec.name,
      kind,
      cpus: spec.cpus,
      memoryMiB: spec.memoryMiB,
      placement: spec.placement,
      ...(spec.storagePolicy ? { storagePolicy: spec.storagePolicy } : {}),
      nics: spec.nics,
      diskIds: spec.diskIds,
      powerState: 'poweredOff',
      metadata: spec.metadata ?? {},
    };
    this.state.vms[spec.name] = vm;
    this.attach(vm.name, vm.diskIds);
    this.record('VmRegistered', spec.name, { kind });
    return this.save().then(() => vm);
  }

  unregisterVm(name: string, options: { deleteDisks?: boolean } = {}): Promise<void> {
    const vm = this.state.vms[name];
    if (!vm) return Promise.resolve();
    if (vm.powerState !== 'poweredOff') throw siteError('InvalidPowerState', `VM "${name}" is powered on; power it off before unregistering`);
    delete this.state.vms[name];
    this.detach(vm.diskIds);
    if (options.deleteDisks) for (const id of vm.diskIds) this.removeDisk(id);
    this.record('VmUnregistered', name, { deleteDisks: Boolean(options.deleteDisks) });
    return this.save();
  }

  reconfigureVm(name: string, changes: ReconfigureSpec): Promise<Vm> {
    const vm = this.vm(name);
    const onlyDisks = Object.keys(changes).every((key) => key === 'diskIds');
    if (vm.powerState !== 'poweredOff' && !onlyDisks) throw siteError('InvalidPowerState', `VM "${name}" must be powered off to be reconfigured (only disks can be added or removed while it runs)`);
    if (changes.diskIds) {
      for (const id of changes.diskIds) this.disk(id);
      const holder = this.holderOf(changes.diskIds, name);
      if (holder) throw siteError('NameConflict', `a disk for "${name}" is already attached to "${holder}"`);
    }
    if (changes.nics) this.checkNetworks(changes.nics.map((n) => n.network));
    if (changes.storagePolicy !== undefined && !this.options.inventory.storagePolicies.includes(changes.storagePolicy)) {
      throw siteError('UnknownPlacement', `site ${this.site} has no storage policy "${changes.storagePolicy}"`);
    }
    this.detach(vm.diskIds);
    Object.assign(vm, changes);
    this.attach(name, vm.diskIds);
    this.record('VmReconfigured', name, { ...changes });
    return this.save().then(() => vm);
  }

  powerOn(name: string, { unlessMetadata = {} }: PowerOnOptions = {}): Promise<PowerOnAnswer> {
    const vm = this.vm(name);
    if (vm.powerState === 'poweredOn') return Promise.resolve({ vm, alreadyOn: true });
    const marks = Object.entries(unlessMetadata);
    if (marks.length > 0 && marks.every(([key, value]) => vm.metadata[key] === value)) {
      return Promise.reject(siteError('PowerOnRefused', `"${name}" is marked ${marks.map(([key, value]) => `${key}=${value}`).join(', ')}: not powered on`));
    }
    for (const id of vm.diskIds) this.disk(id);
    vm.powerState = 'poweredOn';
    vm.poweredOnAt = Date.now();
    this.record('VmPoweredOn', name);
    return this.save().then(() => ({ vm, alreadyOn: false }));
  }

  async shutdownGuest(name: string, timeoutMs: number): Promise<ShutdownOutcome> {
    const vm = this.vm(name);
    if (vm.powerState === 'poweredOff') return 'alreadyOff';
    this.record('GuestShutdownRequested', name, { timeoutMs });
    await this.save();
    if (this.hangGuestShutdown || this.options.shutdownMs > timeoutMs) {
      await new Promise((r) => setTimeout(r, timeoutMs));
      this.record('GuestShutdownTimedOut', name, { timeoutMs });
      await this.save();
      throw siteError('GuestShutdownTimeout', `the guest of "${name}" did not shut down within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, this.options.shutdownMs));
    if (vm.powerState === 'poweredOn') {
      vm.powerState = 'poweredOff';
      delete vm.poweredOnAt;
      this.record('VmPoweredOff', name, { by: 'guest' });
      await this.save();
    }
    return 'shutDown';
  }

  powerOff(name: string): Promise<Vm> {
    const vm = this.vm(name);
    if (vm.powerState === 'poweredOff') return Promise.resolve(vm);
    vm.powerState = 'poweredOff';
    delete vm.poweredOnAt;
    this.record('VmPoweredOff', name, { by: 'hard power-off' });
    return this.save().then(() => vm);
  }

  guestHeartbeat(name: string): Promise<GuestHeartbeat> {
    return Promise.resolve(this.booted(this.vm(name)) ? 'green' : 'gray');
  }

  private booted(vm: Vm): boolean {
    return vm.powerState === 'poweredOn' && vm.poweredOnAt !== undefined && Date.now() - vm.poweredOnAt >= this.options.bootMs;
  }

  /**
   * A simulated guest listens on the services its metadata lists (`guestServices`, e.g.
   * `tcp:5432,http:80`) once it has booted; an HTTP service answers 200 on every path and accepts
   * TCP connections too. Recovered and drilled VMs keep the metadata, and so their services.
   */
  probeGuest(name: string, probe: GuestProbe): Promise<GuestProbeResult> {
    const vm = this.vm(name);
    if (!this.booted(vm)) return Promise.resolve({ answered: false, detail: vm.powerState === 'poweredOn' ? 'the guest is still booting' : 'the VM is powered off' });
    const services = (vm.metadata.guestServices ?? '').split(',').filter(Boolean);
    const http = services.includes(`http:${probe.port}`);
    if (probe.kind === 'http') return Promise.resolve(http ? { answered: true, status: 200, detail: `GET ${probe.path} answered 200` } : { answered: false, detail: `no HTTP service on port ${probe.port}` });
    return Promise.resolve(http || services.includes(`tcp:${probe.port}`) ? { answered: true, detail: `port ${probe.port} accepted the connection` } : { answered: false, detail: `port ${probe.port} refused the connection` });
  }

  async deployRocva(spec: RocvaSpec): Promise<Vm> {
    const { externalReplication, internal, management } = spec.networks;
    const vm = await this.registerVm({
      name: spec.name,
      kind: 'rocva',
      cpus: 4,
      memoryMiB: 8192,
      placement: spec.placement,
      nics: [{ network: externalReplication }, { network: internal }, { network: management }],
      diskIds: [],
      metadata: { role: 'recovery appliance' },
    });
    return (await this.powerOn(vm.name)).vm;
  }

  async destroyRocva(name: string): Promise<void> {
    const vm = this.state.vms[name];
    if (!vm) return;
    if (vm.kind !== 'rocva') throw siteError('NameConflict', `"${name}" is a ${vm.kind}, not a recovery appliance`);
    await this.powerOff(name);
    await this.unregisterVm(name);
  }

  createDisk(spec: CreateDiskSpec): Promise<VirtualDisk> {
    const existing = this.state.disks[spec.id];
    if (existing) {
      if (existing.sizeBytes !== spec.sizeBytes || existing.datastore !== spec.datastore) {
        throw siteError('NameConflict', `disk "${spec.id}" exists with ${existing.sizeBytes} bytes on ${existing.datastore}`);
      }
      return Promise.resolve(existing);
    }
    if (!this.options.inventory.datastores.some((d) => d.name === spec.datastore)) throw siteError('UnknownPlacement', `site ${this.site} has no datastore "${spec.datastore}"`);
    this.disks.create(spec.datastore, spec.id, spec.sizeBytes);
    const disk: VirtualDisk = { id: spec.id, datastore: spec.datastore, sizeBytes: spec.sizeBytes, protected: spec.protected };
    this.state.disks[spec.id] = disk;
    this.record('DiskCreated', undefined, { disk: spec.id, sizeBytes: spec.sizeBytes });
    return this.save().then(() => disk);
  }

  listDisks(): Promise<VirtualDisk[]> {
    return Promise.resolve(Object.values(this.state.disks).sort((a, b) => a.id.localeCompare(b.id)));
  }

  getDisk(id: string): Promise<VirtualDisk> {
    return Promise.resolve(this.disk(id));
  }

  private removeDisk(id: string): void {
    const disk = this.state.disks[id];
    if (!disk) return;
    this.disks.remove(disk.datastore, id);
    delete this.state.disks[id];
    this.record('DiskDeleted', undefined, { disk: id });
  }

  deleteDisk(id: string): Promise<void> {
    const holder = this.diskHolders.get(id);
    if (holder) throw siteError('NameConflict', `disk "${id}" is attached to "${holder}"`);
    this.removeDisk(id);
    return this.save();
  }

  setDiskProtection(id: string, isProtected: boolean): Promise<{ disk: VirtualDisk; journalSequence: number }> {
    const disk = this.disk(id);
    if (disk.protected !== isProtected) {
      disk.protected = isProtected;
      this.record(isProtected ? 'DiskProtected' : 'DiskUnprotected', undefined, { disk: id });
    }
    const journalSequence = this.journal.lastSequence;
    return this.save().then(() => ({ disk, journalSequence }));
  }

  private checkRange(disk: VirtualDisk, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > disk.sizeBytes) {
      throw siteError('RangeOutOfDisk', `range ${offset}+${length} is outside disk "${disk.id}" (${disk.sizeBytes} bytes)`);
    }
  }

  readDisk(diskId: string, offset: number, length: number): Promise<Buffer> {
    const disk = this.disk(diskId);
    this.checkRange(disk, offset, length);
    return Promise.resolve(this.disks.read(disk.datastore, diskId, offset, length));
  }

  async allocatedChunks(diskId: string, chunkBytes: number): Promise<number[]> {
    const disk = this.disk(diskId);
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 4096 || chunkBytes > MAX_CHUNK_BYTES || chunkBytes % 4096 !== 0) {
      throw siteError('InvalidRequest', `chunkBytes must be a multiple of 4096 from 4096 to ${MAX_CHUNK_BYTES}, not ${chunkBytes}`);
    }
    try {
      return await this.disks.nonZeroChunks(disk.datastore, diskId, disk.sizeBytes, chunkBytes);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw siteError('DiskNotFound', `disk "${diskId}" was removed while its chunks were listed`);
      throw error;
    }
  }

  writeDisk(diskId: string, offset: number, data: Buffer, { fence }: DiskWriteOptions = {}): Promise<void> {
    const fenceTaken = fence !== undefined && this.takeFence(diskId, fence);
    this.guestWrite(diskId, offset, data);
    // A new fence is on file before the write is acknowledged: a site restarted after it still refuses the superseded writer.
    return fenceTaken ? this.save() : Promise.resolve();
  }

  /**
   * A data-path writer's fence checked against the disk's (DiskWriteOptions): true when the disk
   * takes it as its newest. Each refused writer is recorded once per disk, not once per write.
   */
  private takeFence(diskId: string, fence: number): boolean {
    const disk = this.disk(diskId);
    const holder = this.diskHolders.get(diskId);
    const running = holder !== undefined && this.state.vms[holder]?.powerState === 'poweredOn' ? holder : undefined;
    const superseded = disk.writeFence !== undefined && fence < disk.writeFence;
    if (superseded || running) {
      const refusal = `${diskId}:${fence}`;
      if (!this.fencedWriters.has(refusal)) {
        this.fencedWriters.add(refusal);
        this.record('DiskWriteFenced', running, { disk: diskId, fence, ...(disk.writeFence !== undefined ? { diskFence: disk.writeFence } : {}), why: superseded ? 'superseded' : 'vmRunning' });
      }
      throw siteError(
        'WriteFenced',
        superseded
          ? `site ${this.site} refused the write: a later writer (fence ${disk.writeFence}) has written disk "${diskId}" since this one (fence ${fence}) began, which was superseded`
          : `site ${this.site} refused the write: disk "${diskId}" belongs to "${running}", which is running: only its guest writes it`,
      );
    }
    if (fence === disk.writeFence) return false;
    disk.writeFence = fence;
    this.unsaved.disks.add(diskId);
    return true;
  }

  /**
   * The one write path, for guests (the workload) and API writers alike: journaled first when the
   * disk is protected, so replication sees every acknowledged write. Returns the journal position
   * (sequence 0 for unprotected disks) and the acknowledgement time.
   */
  guestWrite(diskId: string, offset: number, data: Buffer): { sequence: number; timestamp: number } {
    const disk = this.disk(diskId);
    this.checkRange(disk, offset, data.length);
    this.checkSpace(disk, data.length);
    const timestamp = Date.now();
    let sequence = 0;
    if (disk.protected) {
      const holder = this.diskHolders.get(diskId) ?? '';
      sequence = this.journal.append(holder, diskId, offset, data, timestamp);
      for (const waiter of this.journalWaiters) if (!waiter.vms || waiter.vms.has(holder)) waiter.wake();
    }
    this.disks.write(disk.datastore, diskId, offset, data);
    return { sequence, timestamp };
  }

  async readJournal(options: ReadJournalOptions): Promise<JournalBatch> {
    const deadline = Date.now() + Math.min(options.waitMs ?? 0, MAX_JOURNAL_WAIT_MS);
    for (;;) {
      const batch = this.journal.read(options);
      const remaining = deadline - Date.now();
      if (batch.entries.length > 0 || remaining <= 0) return batch;
      await this.nextJournalWrite(options.vms, remaining);
    }
  }

  /** Resolves at the next journaled write of one of `vms` (of any VM without them), or after `ms`. */
  private nextJournalWrite(vms: string[] | undefined, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter: JournalWaiter = {
        vms: vms && new Set(vms),
        wake: () => {
          clearTimeout(timer);
          this.journalWaiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.wake, ms);
      this.journalWaiters.add(waiter);
    });
  }

  trimJournal(upToSequence: number, vms?: string[]): Promise<void> {
    if (!vms) {
      this.journal.trim(upToSequence);
      return Promise.resolve();
    }
    const acks = (this.state.journalAcks ??= {});
    for (const vm of vms) {
      acks[vm] = Math.max(acks[vm] ?? 0, upToSequence);
      this.unsaved.acks.add(vm);
    }
    // Entries are shared by every protected VM of the site: free only what all of their replicators have.
    const protectedVms = Object.values(this.state.vms).filter((vm) => vm.diskIds.some((id) => this.state.disks[id]?.protected));
    const upTo = Math.min(upToSequence, ...protectedVms.map((vm) => acks[vm.name] ?? 0));
    this.journal.trim(upTo);
    return this.save();
  }

  events(afterSequence = 0): Promise<SiteEvent[]> {
    return Promise.resolve(this.state.events.filter((e) => e.sequence > afterSequence));
  }
}
