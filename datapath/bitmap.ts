import type { SiteProvider } from '../sites/provider';
import { consistentPosition } from './base-image';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { dirtyRegionsSchema, parseRecord, RECORD_FORMAT_VERSION, resyncSchema, type DirtyRegions, type DomainDisk, type LogPosition, type ResyncRecord } from './records';
import type { JournalSource } from './replicator';
import type { BlockWrite } from './segment-codec';
import type { SegmentWriter } from './segment-writer';

/**
 * Bitmap mode (write throttling): when replication falls behind, the journal is drained into a
 * set of dirty regions instead of the log, so the site's journal stops growing; a resync then
 * reads those regions back from the disks into one resync segment, and log mode resumes after it.
 */
export const DIRTY_REGION_BYTES = 64 * 1024;
const MAX_ENTRY_BYTES = 1024 * 1024;

export interface TrackOptions {
  store: ObjectStore;
  ownership: Ownership;
  source: JournalSource;
  epoch: number;
  /** The last logged cursor: the resync segment will start here. */
  cursor: number;
  vms: string[];
  maxEntries: number;
  /** Stop once the journal holds at most this many writes after the drained position. */
  caughtUpWithin: number;
  trimJournal: boolean;
  now: () => number;
  onProgress: (regions: DirtyRegions) => void | Promise<void>;
  shouldStop: () => boolean;
}

/**
 * Drains the journal into dirty regions. The regions are stored (overwriting their object) before
 * the journal is trimmed, so a killed worker's retry continues from what is durable and no write
 * is forgotten. The resync marker is created before the first write is left out.
 */
export async function trackDirtyRegions(options: TrackOptions): Promise<DirtyRegions> {
  const { store, ownership, epoch, cursor } = options;
  const key = ownership.keys.dirtyRegions(epoch, cursor);
  const stored = await store.get(key);
  const regions: DirtyRegions = stored
    ? parseRecord(dirtyRegionsSchema, key, stored)
    : { formatVersion: RECORD_FORMAT_VERSION, epoch, segment: cursor, drainedTo: cursor, regionBytes: DIRTY_REGION_BYTES, regions: {} };
  let marked = (await store.get(ownership.keys.resync(epoch, cursor, 'start'))) !== undefined;
  while (!options.shouldStop()) {
    const batch = await options.source.readJournal({ afterSequence: regions.drainedTo, vms: options.vms, maxEntries: options.maxEntries });
    if (batch.entries.length === 0) break;
    if (!marked) {
      const marker: ResyncRecord = { formatVersion: RECORD_FORMAT_VERSION, epoch, segment: cursor, firstSkippedAt: batch.entries[0].timestamp, createdAt: options.now() };
      await store.createIfAbsent(ownership.keys.resync(epoch, cursor, 'start'), JSON.stringify(marker), 'application/json');
      marked = true;
    }
    const sets = new Map(Object.entries(regions.regions).map(([diskId, list]) => [diskId, new Set(list)]));
    for (const entry of batch.entries) {
      const set = sets.get(entry.diskId) ?? new Set<number>();
      for (let region = Math.floor(entry.offset / regions.regionBytes); region * regions.regionBytes < entry.offset + entry.data.length; region++) set.add(region);
      sets.set(entry.diskId, set);
    }
    regions.regions = Object.fromEntries([...sets].map(([diskId, set]) => [diskId, [...set].sort((a, b) => a - b)]));
    regions.drainedTo = batch.entries.at(-1)!.sequence;
    await store.put(key, JSON.stringify(regions), 'application/json');
    if (options.trimJournal) await options.source.trimJournal(regions.drainedTo);
    await options.onProgress(regions);
    if (batch.lastSequence - regions.drainedTo <= options.caughtUpWithin) break;
  }
  return regions;
}

export interface ResyncWritten {
  key: string;
  entries: number;
  bytes: number;
  /** The journal cursor log mode resumes from. */
  cursor: number;
  /** The journal's last sequence after the regions were read, and when: base + log is exact once the log covers it. */
  journalMark: number;
  markedAt: number;
}

/**
 * Reads the dirty regions from the disks and writes them as the resync segment (cursor ->
 * drainedTo). A retry adopts the segment an earlier attempt wrote; either copy is good, because
 * the writes after `drainedTo` that a read may already hold are logged after it anyway.
 */
export async function writeResyncSegment(options: {
  writer: SegmentWriter;
  source: Pick<SiteProvider, 'readDisk' | 'readJournal'>;
  regions: DirtyRegions;
  disks: DomainDisk[];
  now: () => number;
}): Promise<ResyncWritten> {
  const { regions } = options;
  const existing = await options.writer.existing(regions.segment);
  if (existing && existing.lastSequence !== regions.drainedTo) throw new Error(`segment ${options.writer.keyFor(regions.segment)} ends at ${existing.lastSequence}, not where bitmap mode drained to (${regions.drainedTo})`);
  let segment = existing;
  let bytes = 0;
  if (!segment) {
    const entries: BlockWrite[] = [];
    for (const disk of options.disks) {
      const dirty = regions.regions[disk.diskId] ?? [];
      let start = 0;
      while (start < dirty.length) {
        let end = start + 1;
        while (end < dirty.length && dirty[end] === dirty[end - 1] + 1 && (end - start + 1) * regions.regionBytes <= MAX_ENTRY_BYTES) end++;
        const offset = dirty[start] * regions.regionBytes;
        const length = Math.min((end - start) * regions.regionBytes, disk.sizeBytes - offset);
        const data = await options.source.readDisk(disk.diskId, offset, length);
        entries.push({ sequence: regions.drainedTo, timestamp: options.now(), vm: disk.vm, diskId: disk.diskId, offset, data });
        bytes += length;
        start = end;
      }
    }
    segment = (await options.writer.write(regions.segment, entries, regions.drainedTo)).segment;
  }
  const journalMark = (await options.source.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 })).lastSequence;
  return { key: options.writer.keyFor(regions.segment), entries: segment.entries.length, bytes, cursor: segment.lastSequence, journalMark, markedAt: options.now() };
}

/**
 * Waits (through `pending`) until the log after the resync covers the journal mark, then records
 * where base + log is exact again. Undefined while the replicator has not logged that far.
 */
export async function finishResync(
  store: ObjectStore,
  ownership: Ownership,
  journal: Pick<SiteProvider, 'readJournal'>,
  input: { epoch: number; segment: number; entries: number; cursor: number; vms: string[]; journalMark: number; markedAt: number },
): Promise<ResyncRecord | undefined> {
  const doneKey = ownership.keys.resync(input.epoch, input.segment, 'done');
  const done = await store.get(doneKey);
  if (done) return parseRecord(resyncSchema, doneKey, done);
  const position: LogPosition | null | undefined = await consistentPosition(store, ownership, journal, { epoch: input.epoch, cursor: input.cursor, vms: input.vms, journalMark: input.journalMark });
  if (position === undefined) return undefined;
  const startKey = ownership.keys.resync(input.epoch, input.segment, 'start');
  const start = parseRecord(resyncSchema, startKey, (await store.get(startKey))!);
  const record: ResyncRecord = {
    ...start,
    consistentFrom: position ?? { epoch: input.epoch, segment: input.segment, entries: input.entries },
    consistentAt: input.markedAt,
  };
  await store.createIfAbsent(doneKey, JSON.stringify(record), 'application/json');
  await store.delete([ownership.keys.dirtyRegions(input.epoch, input.segment)]);
  return parseRecord(resyncSchema, doneKey, (await store.get(doneKey))!);
}

/** Every resync of the domain, `done` merged into its start. */
export async function listResyncs(store: ObjectStore, ownership: Ownership): Promise<ResyncRecord[]> {
  const { keys } = await store.list(ownership.keys.resyncPrefix());
  const records = await Promise.all(keys.map(async (key) => parseRecord(resyncSchema, key, (await store.get(key))!)));
  const byStart = new Map<string, ResyncRecord>();
  for (const record of records) {
    const id = `${record.epoch}-${record.segment}`;
    byStart.set(id, { ...byStart.get(id), ...record });
  }
  return [...byStart.values()];
}
