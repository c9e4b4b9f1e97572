import type { z } from 'zod';
import type { SiteProvider } from '../sites/provider';
import { SiteError } from '../sites/provider';
import { forEachLimited } from '../common/parallel';
import { expectedFingerprints, fingerprintDisks } from './disk-fingerprint';
import { trailingNumber } from './keys';
import { readChain, resolveChain } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { arrivalSchema, departureSchema, parseRecord, RECORD_FORMAT_VERSION, type ArrivalRecord, type DepartureRecord, type DomainDisk, type LogPosition } from './records';

/**
 * Departure and arrival records: what a failback needs to know to rehydrate only the log written
 * since the domain left a site. Both are create-if-absent, so a retry returns the first record.
 */

/** The end of the chain as it stands for epochs up to `epoch` (whose log ends at `lastSegment`), with the journal sequence of its last write. */
export async function chainEnd(store: ObjectStore, ownership: Ownership, epoch: number, lastSegment: number | null): Promise<{ position: LogPosition; journalCursor: number } | undefined> {
  const links = (await resolveChain(store, ownership)).filter((l) => l.epoch < epoch || (l.epoch === epoch && lastSegment !== null && l.segment <= lastSegment));
  const last = links.at(-1);
  if (!last) return undefined;
  for await (const { segment } of readChain(store, [last], 1)) {
    return { position: { epoch: last.epoch, segment: last.segment, entries: segment.entries.length }, journalCursor: segment.lastSequence };
  }
  return undefined;
}

async function createOrRead<T>(store: ObjectStore, key: string, record: T, schema: z.ZodType<T>): Promise<T> {
  if (await store.createIfAbsent(key, JSON.stringify(record), 'application/json')) return record;
  return parseRecord(schema, key, (await store.get(key))!);
}

export async function recordDeparture(store: ObjectStore, ownership: Ownership, record: Omit<DepartureRecord, 'formatVersion'>): Promise<DepartureRecord> {
  return createOrRead(store, ownership.keys.departure(record.epoch), { formatVersion: RECORD_FORMAT_VERSION, ...record }, departureSchema);
}

export async function recordArrival(store: ObjectStore, ownership: Ownership, record: Omit<ArrivalRecord, 'formatVersion'>): Promise<ArrivalRecord> {
  return createOrRead(store, ownership.keys.arrival(record.epoch), { formatVersion: RECORD_FORMAT_VERSION, ...record }, arrivalSchema);
}

/** The newest departure from `site`: where its disks were left. */
export async function latestDeparture(store: ObjectStore, ownership: Ownership, site: string): Promise<DepartureRecord | undefined> {
  const { keys } = await store.list(ownership.keys.departuresPrefix());
  for (const key of keys.reverse()) {
    const record = parseRecord(departureSchema, key, (await store.get(key))!);
    if (record.site === site) return record;
  }
  return undefined;
}

/** Disks whose size is asked of the site at once when a failback checks them. */
const DISKS_ASKED_AT_ONCE = 16;

const samePosition = (a: LogPosition, b: LogPosition) => a.epoch === b.epoch && a.segment === b.segment && a.entries === b.entries;

/**
 * Why the log after `departure` is not, by itself, the change since then (undefined: it is).
 * Each later epoch's log starts where its owner's disks were rehydrated to; only when that is
 * the end of the chain before it (recorded by its arrival) does its log alone carry on from the
 * departure image, and only while its log still starts at the arrival's cursor (not compacted).
 */
export async function logOnlyLineage(store: ObjectStore, ownership: Ownership, departure: DepartureRecord): Promise<string | undefined> {
  const epochs = (await ownership.epochs()).filter((e) => e > departure.epoch);
  let end = departure.position;
  for (const epoch of epochs) {
    const { keys } = await store.list(ownership.keys.logPrefix(epoch));
    // An epoch that wrote nothing (the failback's own, before its protection starts) changes nothing.
    if (keys.length === 0) continue;
    const body = await store.get(ownership.keys.arrival(epoch));
    if (!body) return `epoch ${epoch} recorded no arrival: which image its log starts from is unknown`;
    const arrival = parseRecord(arrivalSchema, ownership.keys.arrival(epoch), body);
    if (!samePosition(arrival.from, end)) {
      return `epoch ${epoch} started from epoch ${arrival.from.epoch} segment ${arrival.from.segment} entry ${arrival.from.entries}, not from the end of the log before it (epoch ${end.epoch} segment ${end.segment} entry ${end.entries})`;
    }
    if (trailingNumber(keys[0]) !== arrival.cursor) return `the log of epoch ${epoch} no longer starts at its arrival (journal cursor ${arrival.cursor}): it was compacted`;
    const next = epochs.find((e) => e > epoch);
    const sealed = next === undefined ? null : (await ownership.handoff(next)).lastSegment;
    const tail = await chainEnd(store, ownership, epoch, next === undefined ? trailingNumber(keys.at(-1)!) : sealed);
    if (tail) end = tail.position;
  }
  return undefined;
}

export type DeltaBaseCheck =
  | { usable: true; departure: DepartureRecord; from: LogPosition; journalCursor: number; bytesRead: { disks: number; store: number } }
  | { usable: false; why: string; departure?: DepartureRecord; bytesRead: { disks: number; store: number } };

export interface CheckDeltaBaseOptions {
  store: ObjectStore;
  ownership: Ownership;
  /** The site failback goes to, with the disks it left behind. */
  site: string;
  target: Pick<SiteProvider, 'getDisk' | 'readDisk'>;
  /** The domain's disks now (the manifest's): a delta applies only to the same disk set. */
  disks: DomainDisk[];
  readConcurrency?: number;
  onProgress?: () => void | Promise<void>;
  /** What an earlier attempt of this check verified (its `onVerified`): those disks are not read again. */
  verified?: DeltaBaseVerified;
  /** Told each time more of the departure's disks, in its order, are known to read as they were left. */
  onVerified?: (verified: DeltaBaseVerified) => void;
}

/**
 * How far a check got: the first `disks` disks of the departure recorded at `recordedAt`, in its
 * order, read equal to their fingerprints at the departure position. Disks a failback finds are
 * not in use (their VMs are off and fenced), so a retry need not read them again: at 10,000 disks
 * the reads take minutes.
 */
export interface DeltaBaseVerified {
  departureRecordedAt: number;
  disks: number;
}

/**
 * May the disks `site` left behind take a delta? They must be there with their sizes, the disk
 * set unchanged, the log since the departure a pure continuation of it (see logOnlyLineage), and
 * their fingerprints equal to those at the departure position: the ones the leaving site read
 * (planned), or those base + log give (forced, where the old primary may hold unreplicated writes).
 */
export async function checkDeltaBase(options: CheckDeltaBaseOptions): Promise<DeltaBaseCheck> {
  const { store, ownership, target } = options;
  const bytesRead = { disks: 0, store: 0 };
  const departure = await latestDeparture(store, ownership, options.site);
  if (!departure) return { usable: false, why: `no departure from site ${options.site} was recorded`, bytesRead };
  const unusable = (why: string): DeltaBaseCheck => ({ usable: false, why, departure, bytesRead });
  const key = (d: DomainDisk) => `${d.diskId}:${d.sizeBytes}`;
  const recorded = new Set(departure.disks.map(key));
  if (options.disks.length !== departure.disks.length || !options.disks.every((d) => recorded.has(key(d)))) return unusable('the domain\'s disks changed since the departure');
  let changed: string | undefined;
  await forEachLimited(departure.disks, DISKS_ASKED_AT_ONCE, async (disk) => {
    if (changed) return;
    try {
      const found = await target.getDisk(disk.diskId);
      if (found.sizeBytes !== disk.sizeBytes) changed ??= `disk ${disk.diskId} has ${found.sizeBytes} bytes, not ${disk.sizeBytes}`;
      await options.onProgress?.();
    } catch (error) {
      if (error instanceof SiteError && error.code === 'DiskNotFound') changed ??= `disk ${disk.diskId} is gone from site ${options.site}`;
      else throw error;
    }
  });
  if (changed) return unusable(changed);
  const lineage = await logOnlyLineage(store, ownership, departure);
  if (lineage) return unusable(lineage);
  let expected = departure.fingerprints;
  if (!expected) {
    const derived = await expectedFingerprints(store, ownership, departure.disks, departure.position, { readConcurrency: options.readConcurrency ?? 4, onProgress: () => void options.onProgress?.() });
    bytesRead.store += derived.bytesRead;
    expected = derived.fingerprints;
  }
  const expectedOf = new Map(expected.map((e) => [e.diskId, e.sha256]));
  const alreadyVerified = options.verified?.departureRecordedAt === departure.recordedAt ? Math.min(options.verified.disks, departure.disks.length) : 0;
  const toRead = departure.disks.slice(alreadyVerified);
  const matched = new Array<boolean>(toRead.length).fill(false);
  let verifiedPrefix = 0;
  const actual = await fingerprintDisks(
    target,
    toRead,
    options.readConcurrency ?? 4,
    async (bytes) => {
      bytesRead.disks += bytes;
      await options.onProgress?.();
    },
    (index, fingerprint) => {
      matched[index] = expectedOf.get(fingerprint.diskId) === fingerprint.sha256;
      const before = verifiedPrefix;
      while (verifiedPrefix < matched.length && matched[verifiedPrefix]) verifiedPrefix++;
      if (verifiedPrefix > before) options.onVerified?.({ departureRecordedAt: departure.recordedAt, disks: alreadyVerified + verifiedPrefix });
    },
  );
  const differing = actual.filter((a) => expectedOf.get(a.diskId) !== a.sha256).map((a) => a.diskId);
  const shown = differing.length > 5 ? `${differing.slice(0, 5).join(', ')} and ${differing.length - 5} more` : differing.join(', ');
  if (differing.length > 0) return unusable(`disk(s) ${shown} differ from the ${departure.kind} departure position (epoch ${departure.position.epoch} segment ${departure.position.segment}): damaged, or written after it`);
  return { usable: true, departure, from: departure.position, journalCursor: departure.journalCursor, bytesRead };
}
