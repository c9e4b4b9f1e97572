/** One write to a disk: where and what. */
export interface DiskWrite {
  diskId: string;
  offset: number;
  data: Buffer;
}

/**
 * Merges writes applied in order into non-overlapping runs per disk, later bytes winning, so that
 * a segment costs one target write per run instead of one per entry. Byte-exact: the runs cover
 * only bytes the writes cover, so nothing around them on the target is touched.
 */
export function coalesceWrites(writes: Iterable<DiskWrite>): DiskWrite[] {
  const byDisk = new Map<string, Array<{ offset: number; data: Buffer }>>();
  for (const write of writes) {
    let runs = byDisk.get(write.diskId);
    if (!runs) byDisk.set(write.diskId, (runs = []));
    addRun(runs, write.offset, write.data);
  }
  return [...byDisk].flatMap(([diskId, runs]) => runs.map((run) => ({ diskId, ...run })));
}

/** `runs` is sorted by offset, with neither overlaps nor touching neighbours. */
function addRun(runs: Array<{ offset: number; data: Buffer }>, offset: number, data: Buffer): void {
  const end = offset + data.length;
  let first = 0;
  let high = runs.length;
  // The first run that ends at or after `offset` (touching counts: it merges).
  while (first < high) {
    const middle = (first + high) >> 1;
    if (runs[middle].offset + runs[middle].data.length < offset) first = middle + 1;
    else high = middle;
  }
  let last = first;
  while (last < runs.length && runs[last].offset <= end) last++;
  const merged = runs.slice(first, last);
  if (merged.length === 0) {
    runs.splice(first, 0, { offset, data: Buffer.from(data) });
    return;
  }
  const start = Math.min(offset, merged[0].offset);
  const stop = Math.max(end, merged.at(-1)!.offset + merged.at(-1)!.data.length);
  const bytes = Buffer.alloc(stop - start);
  for (const run of merged) run.data.copy(bytes, run.offset - start);
  data.copy(bytes, offset - start);
  runs.splice(first, last - first, { offset: start, data: bytes });
}
