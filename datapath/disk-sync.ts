import type { SiteProvider } from '../sites/provider';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { parseRecord, RECORD_FORMAT_VERSION, resyncSchema, type DomainDisk, type LogPosition, type ResyncRecord } from './records';
import type { BlockWrite, Segment } from './segment-codec';

/**
 * A disk sync: the first copy of disks that joined a running protection (a new VM of the domain,
 * or a disk attached to a member VM). The copy rides in the replicator's own segments, after
 * their journal writes, a slice per segment, so every other disk keeps being logged write by
 * write and each segment still consumes journal sequences (its key stays unique). Until the log
 * covers every write made while the copy was read, base + log is not exact for the new disks:
 * the stretch is recorded with the resync records (`start` before the first slice is written,
 * `done` with where the log is exact again), which planning and log followers already honour.
 *
 * On a site where nothing at all is written, a slice would have no journal sequence to consume:
 * the sync then writes zero bytes to one of its disks, which journals an empty write (the data is
 * untouched, so no guest write can be lost to it) and gives the next segment its sequence.
 *
 * Copy entries carry sequence 0, which no journal write has (journal sequences start at 1): that
 * is how a replicator retried after a kill learns from the segments it adopts how far the copy got.
 */
export const DISK_SYNC_SEQUENCE = 0;

export interface DiskSyncState {
  disks: DomainDisk[];
  /** The disks before `disk`, and the bytes of it before `offset`, are copied into the log. */
  disk: number;
  offset: number;
  /** The cursor (segment key) where the stretch starts: its resync records are named by it. */
  startSegment?: number;
  /** The journal's last sequence read after the last copy read, and when: the log is exact once it covers it. */
  journalMark?: number;
  markedAt?: number;
  /** Base + log is exact again from here (the stretch's `done` record exists): the sync is finished. */
  consistentFrom?: LogPosition;
}

export class DiskSync {
  private readonly current: DiskSyncState;
  private markAfterCopy?: { journalMark: number; markedAt: number };

  constructor(
    private readonly store: ObjectStore,
    private readonly ownership: Ownership,
    private readonly epoch: number,
    private readonly source: Pick<SiteProvider, 'readDisk' | 'readJournal' | 'writeDisk'>,
    state: DiskSyncState,
    /** At most this many bytes of copy per segment. */
    private readonly bytesPerSegment: number,
    private readonly now: () => number,
  ) {
    this.current = { ...state };
  }

  get state(): DiskSyncState {
    return { ...this.current };
  }

  /** The copy or the end of its stretch is still to be logged: the replicator writes a segment even without journal writes of the domain. */
  get pending(): boolean {
    return this.current.consistentFrom === undefined;
  }

  private get copied(): boolean {
    return this.current.disk >= this.current.disks.length;
  }

  /**
   * The next slice of the copy for the segment at `cursor`. The stretch's `start` record is
   * created before the first slice can be written, so no reader ever plans a target inside it.
   */
  async nextSlice(cursor: number): Promise<BlockWrite[]> {
    if (this.copied) return [];
    if (this.current.startSegment === undefined) {
      const now = this.now();
      const marker: ResyncRecord = { formatVersion: RECORD_FORMAT_VERSION, epoch: this.epoch, segment: cursor, firstSkippedAt: now, createdAt: now };
      await this.store.createIfAbsent(this.ownership.keys.resync(this.epoch, cursor, 'start'), JSON.stringify(marker), 'application/json');
      this.current.startSegment = cursor;
    }
    const slice: BlockWrite[] = [];
    let bytes = 0;
    let { disk, offset } = this.current;
    while (disk < this.current.disks.length && bytes < this.bytesPerSegment) {
      const target = this.current.disks[disk];
      const length = Math.min(this.bytesPerSegment - bytes, target.sizeBytes - offset);
      const data = await this.source.readDisk(target.diskId, offset, length);
      slice.push({ sequence: DISK_SYNC_SEQUENCE, timestamp: this.now(), vm: target.vm, diskId: target.diskId, offset, data });
      bytes += length;
      offset += length;
      if (offset >= target.sizeBytes) [disk, offset] = [disk + 1, 0];
    }
    if (disk >= this.current.disks.length) {
      // Read after the last copy read: every write the copy can hold has a sequence up to the mark.
      this.markAfterCopy = { journalMark: (await this.source.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 })).lastSequence, markedAt: this.now() };
    }
    return slice;
  }

  /** The journal is idle: an empty write gives the next slice (or the end of the stretch) a sequence to consume. */
  async tick(): Promise<void> {
    const { disks, disk } = this.current;
    await this.source.writeDisk(disks[Math.min(disk, disks.length - 1)].diskId, 0, Buffer.alloc(0));
  }

  /**
   * Takes in the segment stored at its cursor, written now or by an earlier attempt (then its
   * copy entries say how far that attempt got), and records the end of the stretch once the log
   * covers the journal mark.
   */
  async logged(segment: Segment, created: boolean): Promise<void> {
    const copy = segment.entries.filter((entry) => entry.sequence === DISK_SYNC_SEQUENCE);
    const last = copy.at(-1);
    if (last) {
      this.current.startSegment ??= segment.afterSequence;
      const disk = this.current.disks.findIndex((d) => d.diskId === last.diskId);
      const end = last.offset + last.data.length;
      [this.current.disk, this.current.offset] = end >= this.current.disks[disk].sizeBytes ? [disk + 1, 0] : [disk, end];
    }
    if (this.copied && this.current.journalMark === undefined) {
      // An adopted last slice was read by an earlier attempt: a mark read now is later, so still safe.
      const mark = created && this.markAfterCopy ? this.markAfterCopy : { journalMark: (await this.source.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 })).lastSequence, markedAt: this.now() };
      Object.assign(this.current, mark);
    }
    if (this.current.journalMark !== undefined && this.pending && segment.lastSequence >= this.current.journalMark) {
      this.current.consistentFrom = await this.finish({ epoch: this.epoch, segment: segment.afterSequence, entries: segment.entries.length });
    }
  }

  private async finish(position: LogPosition): Promise<LogPosition> {
    const startKey = this.ownership.keys.resync(this.epoch, this.current.startSegment!, 'start');
    const doneKey = this.ownership.keys.resync(this.epoch, this.current.startSegment!, 'done');
    const start = parseRecord(resyncSchema, startKey, (await this.store.get(startKey))!);
    const record: ResyncRecord = { ...start, consistentFrom: position, consistentAt: this.current.markedAt! };
    await this.store.createIfAbsent(doneKey, JSON.stringify(record), 'application/json');
    // An earlier attempt's record wins: it was written first, and readers may have seen it.
    return parseRecord(resyncSchema, doneKey, (await this.store.get(doneKey))!).consistentFrom!;
  }
}
