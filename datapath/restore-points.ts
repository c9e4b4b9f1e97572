import { restorePointId } from './keys';
import { planRestore, readChain, resolveChain } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import {
  parseRecord,
  pinSchema,
  RECORD_FORMAT_VERSION,
  restorePointSchema,
  testedSchema,
  type DomainDisk,
  type PinRecord,
  type RehydrationTarget,
  type RestorePoint,
  type TestedRecord,
  type VmMetadata,
} from './records';

/**
 * A restore point is a log position, so it is consistent across every VM of the domain by
 * construction: one log orders all their writes. Its id is its position, which makes creating
 * it idempotent (a retried activity finds the point it already made).
 */
export async function createRestorePoint(
  store: ObjectStore,
  ownership: Ownership,
  input: { reason: RestorePoint['reason']; label?: string; vms: VmMetadata[]; disks?: DomainDisk[]; now: number },
): Promise<RestorePoint> {
  // Refuses while an initial sync is unfinished: a point there would name an image that does not exist.
  await planRestore(store, ownership, { kind: 'latest' });
  const chain = await resolveChain(store, ownership);
  const last = chain.at(-1);
  if (!last) throw new Error(`domain ${ownership.domain} has no replicated writes yet; no restore point can be made`);
  let entries = 0;
  let timestamp = input.now;
  let lastJournalSequence = 0;
  for await (const { segment } of readChain(store, [last], 1)) {
    entries = segment.entries.length;
    timestamp = segment.entries.at(-1)?.timestamp ?? input.now;
    lastJournalSequence = segment.lastSequence;
  }
  // Checked again at the chosen position: a disk sync or resync whose marker was written before
  // that segment (after the first check) makes the position unrestorable.
  await planRestore(store, ownership, { kind: 'position', position: { epoch: last.epoch, segment: last.segment, entries } });
  const id = restorePointId(last.epoch, last.segment, entries);
  const point: RestorePoint = {
    formatVersion: RECORD_FORMAT_VERSION,
    id,
    domain: ownership.domain,
    position: { epoch: last.epoch, segment: last.segment, entries },
    lastJournalSequence,
    timestamp,
    createdAt: input.now,
    reason: input.reason,
    ...(input.label !== undefined ? { label: input.label } : {}),
    vms: input.vms,
    ...(input.disks ? { disks: input.disks } : {}),
  };
  const key = ownership.keys.point(id);
  if (await store.createIfAbsent(key, JSON.stringify(point), 'application/json')) return point;
  return parseRecord(restorePointSchema, key, (await store.get(key))!);
}

export async function listRestorePoints(store: ObjectStore, ownership: Ownership): Promise<RestorePoint[]> {
  const { keys } = await store.list(ownership.keys.pointsPrefix());
  // A point garbage collection deletes between the listing and the read is gone, not an error.
  const points = await Promise.all(
    keys.map(async (key) => {
      const body = await store.get(key);
      return body === undefined ? undefined : parseRecord(restorePointSchema, key, body);
    }),
  );
  return points.filter((point): point is RestorePoint => point !== undefined);
}

export interface PointTags {
  pin?: PinRecord;
  /** Every drill that rebuilt the domain to the point, oldest first. */
  tested: TestedRecord[];
}

/** The pins and drill results of every point that has any, by point id. */
export async function readPointTags(store: ObjectStore, ownership: Ownership): Promise<Map<string, PointTags>> {
  const prefix = ownership.keys.pointTagsPrefix();
  const { keys } = await store.list(prefix);
  const tags = new Map<string, PointTags>();
  await Promise.all(
    keys.map(async (key) => {
      const body = await store.get(key);
      // Unpinned or collected since the listing.
      if (!body) return;
      const id = key.slice(prefix.length, key.indexOf('/', prefix.length));
      const entry = tags.get(id) ?? { tested: [] };
      tags.set(id, entry);
      if (key === ownership.keys.pointPin(id)) entry.pin = parseRecord(pinSchema, key, body);
      else entry.tested.push(parseRecord(testedSchema, key, body));
    }),
  );
  for (const entry of tags.values()) entry.tested.sort((a, b) => a.at - b.at);
  return tags;
}

export async function readRestorePoint(store: ObjectStore, ownership: Ownership, id: string): Promise<RestorePoint | undefined> {
  const key = ownership.keys.point(id);
  const body = await store.get(key);
  return body ? parseRecord(restorePointSchema, key, body) : undefined;
}

/** Pinning again only says who pinned it last. */
export async function pinRestorePoint(store: ObjectStore, ownership: Ownership, id: string, pin: { pinnedBy: string; now: number }): Promise<PinRecord> {
  const record: PinRecord = { formatVersion: RECORD_FORMAT_VERSION, pinnedBy: pin.pinnedBy, pinnedAt: pin.now };
  await store.put(ownership.keys.pointPin(id), JSON.stringify(record), 'application/json');
  return record;
}

export async function unpinRestorePoint(store: ObjectStore, ownership: Ownership, id: string): Promise<void> {
  await store.delete([ownership.keys.pointPin(id)]);
}

/** Create-if-absent per drill: a repeated activity finds the record its first attempt wrote. */
export async function recordTested(store: ObjectStore, ownership: Ownership, id: string, tested: Omit<TestedRecord, 'formatVersion'>): Promise<TestedRecord> {
  const key = ownership.keys.pointTested(id, tested.drill);
  const record: TestedRecord = { formatVersion: RECORD_FORMAT_VERSION, ...tested };
  if (await store.createIfAbsent(key, JSON.stringify(record), 'application/json')) return record;
  return parseRecord(testedSchema, key, (await store.get(key))!);
}

/**
 * The restore point a rehydration to `target` rebuilt exactly, if one exists: the point at that
 * position, or, for an instant, the newest point at or before it when no write after the point
 * was acknowledged by then (a rehydration to an instant stops at the first write after it).
 */
export async function pointAtTarget(store: ObjectStore, ownership: Ownership, target: RehydrationTarget): Promise<RestorePoint | undefined> {
  if (target.kind === 'position') {
    const { epoch, segment, entries } = target.position;
    return readRestorePoint(store, ownership, restorePointId(epoch, segment, entries));
  }
  if (target.kind !== 'instant') return undefined;
  const candidate = (await listRestorePoints(store, ownership))
    .filter((p) => p.timestamp <= target.at)
    .sort((a, b) => a.position.epoch - b.position.epoch || a.position.segment - b.position.segment || a.position.entries - b.position.entries)
    .at(-1);
  if (!candidate) return undefined;
  const { position } = candidate;
  const after = await resolveChain(store, ownership, { epoch: position.epoch, segment: position.segment });
  for await (const { link, segment } of readChain(store, after, 2)) {
    const first = link.epoch === position.epoch && link.segment === position.segment ? position.entries : 0;
    const next = segment.entries[first];
    if (next) return next.timestamp > target.at ? candidate : undefined;
  }
  return candidate;
}
