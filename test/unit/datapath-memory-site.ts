import { siteError, type CreateDiskSpec, type JournalBatch, type JournalEntry, type ReadJournalOptions, type VirtualDisk } from '../../sites/provider';
import type { ObjectStore } from '../../datapath/object-store';
import type { Ownership } from '../../datapath/ownership';
import { replicate, type JournalSource, type ReplicationProgress } from '../../datapath/replicator';
import type { TargetDisks } from '../../datapath/rehydrate';
import { SegmentWriter } from '../../datapath/segment-writer';
import type { ReplicationMemory } from '../../datapath/replication-memory';

/** The disk and journal part of a site, in memory, for unit tests of the data path. */
export class MemorySite implements JournalSource, TargetDisks {
  readonly disks = new Map<string, Buffer>();
  readonly journal: JournalEntry[] = [];
  private sequence = 0;
  private trimmedUpTo = 0;

  async createDisk(spec: CreateDiskSpec): Promise<VirtualDisk> {
    if (!this.disks.has(spec.id)) this.disks.set(spec.id, Buffer.alloc(spec.sizeBytes));
    return Promise.resolve({ id: spec.id, datastore: spec.datastore, sizeBytes: spec.sizeBytes, protected: spec.protected });
  }

  /** As a site answers: DiskNotFound for a disk it does not have. */
  async getDisk(id: string): Promise<VirtualDisk> {
    const disk = this.disks.get(id);
    if (!disk) throw siteError('DiskNotFound', `no disk ${id}`);
    return Promise.resolve({ id, datastore: 'ds', sizeBytes: disk.length, protected: false });
  }

  async readDisk(diskId: string, offset: number, length: number): Promise<Buffer> {
    return Promise.resolve(Buffer.from(this.disk(diskId).subarray(offset, offset + length)));
  }

  async writeDisk(diskId: string, offset: number, data: Buffer): Promise<void> {
    data.copy(this.disk(diskId), offset);
    return Promise.resolve();
  }

  /** A guest write: lands on the disk and in the journal. */
  guestWrite(vm: string, diskId: string, offset: number, data: Buffer, timestamp: number): JournalEntry {
    data.copy(this.disk(diskId), offset);
    const entry = { sequence: ++this.sequence, timestamp, vm, diskId, offset, data: Buffer.from(data) };
    this.journal.push(entry);
    return entry;
  }

  async readJournal({ afterSequence, vms, maxEntries = Infinity, maxBytes = Infinity }: ReadJournalOptions): Promise<JournalBatch> {
    const entries: JournalEntry[] = [];
    let bytes = 0;
    for (const entry of this.journal) {
      if (entry.sequence <= afterSequence || (vms && !vms.includes(entry.vm))) continue;
      if (entries.length >= maxEntries || (entries.length > 0 && bytes + entry.data.length > maxBytes)) break;
      entries.push(entry);
      bytes += entry.data.length;
    }
    return Promise.resolve({ entries, lastSequence: this.sequence, firstRetainedSequence: this.trimmedUpTo + 1 });
  }

  async trimJournal(upToSequence: number): Promise<void> {
    this.trimmedUpTo = Math.max(this.trimmedUpTo, upToSequence);
    this.journal.splice(0, this.journal.findIndex((e) => e.sequence > upToSequence) === -1 ? this.journal.length : this.journal.findIndex((e) => e.sequence > upToSequence));
    return Promise.resolve();
  }

  private disk(diskId: string): Buffer {
    const disk = this.disks.get(diskId);
    if (!disk) throw new Error(`no disk ${diskId}`);
    return disk;
  }
}

export interface DrainOptions {
  epoch: number;
  /** The site writing, as the owner of `epoch`. */
  site: string;
  cursor: number;
  vms: string[];
  maxEntries: number;
  maxBytes: number;
  /** Trim the journal as segments are stored, as protection does (benchmarks); default: keep it. */
  trimJournal?: boolean;
  /** The writer's `SegmentWriterOptions.inlineMaxBytes`: how large a segment is still written at its key as it is. */
  inlineMaxBytes?: number;
  /** The worker's memory the replicator shares (`SegmentWriterOptions.memory`). */
  memory?: ReplicationMemory;
}

/** Replicates what `source`'s journal holds now, after `cursor`, into the domain's log. */
export function drainJournal(store: ObjectStore, ownership: Ownership, source: MemorySite, o: DrainOptions): Promise<ReplicationProgress> {
  let drainedUpTo = o.cursor;
  return replicate({
    source,
    writer: new SegmentWriter(store, ownership, o.epoch, o.site, { ...(o.inlineMaxBytes === undefined ? {} : { inlineMaxBytes: o.inlineMaxBytes }), ...(o.memory ? { memory: o.memory } : {}) }),
    vms: o.vms,
    cursor: o.cursor,
    maxEntries: o.maxEntries,
    maxBytes: o.maxBytes,
    idlePollMs: 1,
    trimJournal: o.trimJournal ?? false,
    onSegment: (progress) => {
      drainedUpTo = progress.cursor;
    },
    shouldStop: () => (source.journal.at(-1)?.sequence ?? 0) <= drainedUpTo,
  });
}
