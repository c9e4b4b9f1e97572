/**
 * Runs `work` over `items` with at most `limit` at a time; the first failure rejects. Pure (no I/O,
 * no clocks), so workflow code uses it too, to bound how many activities it has in flight.
 */
export async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(lanes);
}
