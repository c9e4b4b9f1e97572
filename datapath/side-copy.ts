import { z } from 'zod';
import type { JournalBatch, ReadJournalOptions } from '../sites/provider';
import { DomainKeys, padSequence, trailingNumber } from './keys';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { parseRecord, RECORD_FORMAT_VERSION } from './records';
import { decodeSegment, encodeSegment, type BlockWrite } from './segment-codec';
import { readSegmentObject } from './segment-objects';

/**
 * A side copy: the writes a fenced site's stale VMs made that are not in the domain's log (after
 * the position its epoch was sealed at), exported from that site's journal when a split-brain is
 * resolved. They are kept under `domains/<d>/side-copies/<name>/` in the log's own segment format
 * (checksummed, compressed) and a record written last, and never enter the domain's chain: no
 * reader of the log lists this prefix. An operator can read them to salvage data by hand.
 */
export const sideCopySchema = z.object({
  formatVersion: z.literal(RECORD_FORMAT_VERSION),
  domain: z.string(),
  name: z.string(),
  site: z.string(),
  vms: z.array(z.string()),
  /** The site's last epoch of ownership, sealed when another site took the domain. */
  fencedEpoch: z.number().int().positive(),
  /** Journal sequence (at `site`) the copy starts after: where the sealed chain ends (later with `journalGap`). */
  afterSequence: z.number().int().nonnegative(),
  /** The journal had trimmed writes after `afterSequence` already: the copy starts later than the fence. */
  journalGap: z.boolean(),
  /** Journal sequence the copy ends at (the stale VMs were off by then). */
  lastSequence: z.number().int().nonnegative(),
  segments: z.array(z.string()),
  entries: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  createdAt: z.number().int(),
});
export type SideCopyRecord = z.infer<typeof sideCopySchema>;

export class SideCopyKeys {
  readonly root: string;

  constructor(prefix: string, domain: string, name: string) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new Error(`invalid side copy name "${name}"`);
    this.root = `${new DomainKeys(prefix, domain).root}side-copies/${name}/`;
  }

  record(): string {
    return `${this.root}side-copy.json`;
  }
  segment(afterSequence: number): string {
    return `${this.root}segments/${padSequence(afterSequence)}`;
  }
}

/**
 * Where the domain's chain ends for `site`'s writes: the site's last epoch before the current
 * owner's, and the journal sequence its sealed log ends at (undefined when that epoch wrote no
 * segment: then everything the site's journal still holds of the domain is outside the chain).
 */
export async function fencePosition(store: ObjectStore, ownership: Ownership, site: string): Promise<{ fencedEpoch: number; cursor?: number }> {
  const epochs = await ownership.epochs();
  for (const epoch of epochs.slice(0, -1).reverse()) {
    if ((await ownership.read(epoch)).site !== site) continue;
    const { lastSegment } = await ownership.handoff(epoch + 1);
    if (lastSegment === null) return { fencedEpoch: epoch };
    const key = ownership.keys.segment(epoch, lastSegment);
    const body = await readSegmentObject(store, key);
    if (!body) throw new Error(`segment ${key} sealed the log of epoch ${epoch} but is missing`);
    return { fencedEpoch: epoch, cursor: decodeSegment(key, body).lastSequence };
  }
  throw new Error(`site ${site} never owned domain ${ownership.domain} before its current epoch: it has no fenced writes`);
}

export interface ExportSideCopyInput {
  domain: string;
  name: string;
  site: string;
  vms: string[];
  fencedEpoch: number;
  /** Where the sealed chain ends in the site's journal; undefined: from the oldest entry it holds. */
  cursor?: number;
  readJournal: (options: ReadJournalOptions) => Promise<JournalBatch>;
  onSegment?: (written: { segments: number; entries: number; bytes: number }) => void;
}

const SEGMENT_BYTES = 8 * 1024 * 1024;

/**
 * Copies the journal entries of `vms` after `cursor` into segments of the side copy, then writes
 * its record. Every object is created only if absent and named by the journal position it starts
 * after, so a retry after a crash finds what the first attempt wrote. Call it once the VMs are off.
 */
export async function exportSideCopy(store: ObjectStore, input: ExportSideCopyInput): Promise<SideCopyRecord> {
  const keys = new SideCopyKeys(store.prefix, input.domain, input.name);
  const existing = await store.get(keys.record());
  if (existing) return parseRecord(sideCopySchema, keys.record(), existing);
  const first = await input.readJournal({ afterSequence: input.cursor ?? 0, vms: input.vms, maxEntries: 1 });
  const start = Math.max(input.cursor ?? 0, first.firstRetainedSequence - 1);
  const journalGap = input.cursor !== undefined && start > input.cursor;
  const end = first.lastSequence;
  const written = { segments: 0, entries: 0, bytes: 0 };
  const segments: string[] = [];
  for (let after = start; after < end; ) {
    const batch = await input.readJournal({ afterSequence: after, vms: input.vms, maxBytes: SEGMENT_BYTES });
    const entries: BlockWrite[] = batch.entries.filter((e) => e.sequence <= end);
    const last = entries.length > 0 && entries.length === batch.entries.length ? entries.at(-1)!.sequence : end;
    if (entries.length > 0) {
      const key = keys.segment(after);
      await store.createIfAbsent(key, encodeSegment({ epoch: input.fencedEpoch, afterSequence: after, lastSequence: last, entries }));
      segments.push(key);
      written.segments++;
      written.entries += entries.length;
      written.bytes += entries.reduce((sum, e) => sum + e.data.length, 0);
      input.onSegment?.(written);
    }
    after = last;
  }
  const record: SideCopyRecord = {
    formatVersion: RECORD_FORMAT_VERSION,
    domain: input.domain,
    name: input.name,
    site: input.site,
    vms: input.vms,
    fencedEpoch: input.fencedEpoch,
    afterSequence: start,
    journalGap,
    lastSequence: end,
    segments,
    entries: written.entries,
    bytes: written.bytes,
    createdAt: Date.now(),
  };
  if (!(await store.createIfAbsent(keys.record(), JSON.stringify(record), 'application/json'))) return (await readSideCopy(store, input.domain, input.name))!.record;
  return record;
}

/** A side copy's record and its writes in journal order; undefined when it does not exist (or is unfinished). */
export async function readSideCopy(store: ObjectStore, domain: string, name: string): Promise<{ record: SideCopyRecord; writes: BlockWrite[] } | undefined> {
  const keys = new SideCopyKeys(store.prefix, domain, name);
  const body = await store.get(keys.record());
  if (!body) return undefined;
  const record = parseRecord(sideCopySchema, keys.record(), body);
  const writes: BlockWrite[] = [];
  for (const key of record.segments) {
    const object = await store.getFramed(key);
    if (!object) throw new Error(`side copy ${name} of ${domain} lists segment ${key}, which is missing`);
    const segment = decodeSegment(key, object);
    if (segment.afterSequence !== trailingNumber(key)) throw new Error(`side copy segment ${key}: header does not match its key`);
    writes.push(...segment.entries);
  }
  return { record, writes };
}

/** Removes a side copy, finished or not (an aborted resolution's undo). */
export async function removeSideCopy(store: ObjectStore, domain: string, name: string): Promise<void> {
  const keys = new SideCopyKeys(store.prefix, domain, name);
  await store.delete((await store.list(keys.root)).keys);
}
