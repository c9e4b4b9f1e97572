import { restorePointId } from './keys';
import { planRestore, readChain, resolveChain } from './log-chain';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { parseRecord, RECORD_FORMAT_VERSION, restorePointSchema, type DomainDisk, type RestorePoint, type VmMetadata } from './records';

/**
 * A restore point is a log position, so it is consistent across every VM of the domain by
 * construction: one log orders all their writes. Its id is its position, which makes creating
 * it idempotent (a retried activity finds the point it already made).
 */
export async function createRestorePoint(
  store: ObjectStore,
  ownership: Ownership,
  input: { reason: RestorePoint['reason']; vms: VmMetadata[]; disks?: DomainDisk[]; now: number },
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
    vms: input.vms,
    ...(input.disks ? { disks: input.disks } : {}),
  };
  const key = ownership.keys.point(id);
  if (await store.createIfAbsent(key, JSON.stringify(point), 'application/json')) return point;
  return parseRecord(restorePointSchema, key, (await store.get(key))!);
}

export async function listRestorePoints(store: ObjectStore, ownership: Ownership): Promise<RestorePoint[]> {
  const { keys } = await store.list(ownership.keys.pointsPrefix());
  return Promise.all(keys.map(async (key) => parseRecord(restorePointSchema, key, (await store.get(key))!)));
}
