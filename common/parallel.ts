/**
 * Runs `work` over `items` with at most `limit` at a time. After the first failure no new item
 * starts, the items already running finish (so a caller that compensates after the failure never
 * races a late creation), and then the first failure rejects. Pure (no I/O, no clocks), so
 * workflow code uses it too, to bound how many activities it has in flight.
 */
export async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      try {
        await work(items[next++]);
      } catch (error) {
        failed ??= { error };
      }
    }
  });
  await Promise.all(lanes);
  if (failed) throw failed.error;
}

/** What a caller of a `limited` function may ask: `onWait` when its work must wait for a turn; `signal` to stop waiting. */
export interface TurnOptions {
  signal?: AbortSignal;
  onWait?: () => void;
}

/**
 * Runs each `work` given to the returned function with at most `limit` running at a time, in the
 * order they were given. One still waiting when `signal` aborts gives up its place and rejects
 * with the signal's reason, without running.
 */
export function limited(limit: number): <T>(work: () => Promise<T>, options?: TurnOptions) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (work, { signal, onWait } = {}) => {
    signal?.throwIfAborted();
    if (running >= limit) {
      onWait?.();
      await new Promise<void>((resolve, reject) => {
        const abandon = () => {
          const place = waiting.indexOf(admit);
          if (place >= 0) waiting.splice(place, 1);
          const reason: unknown = signal!.reason;
          reject(reason instanceof Error ? reason : new Error(String(reason)));
        };
        const admit = () => {
          signal?.removeEventListener('abort', abandon);
          resolve();
        };
        waiting.push(admit);
        signal?.addEventListener('abort', abandon, { once: true });
      });
    } else {
      running++;
    }
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter: `running` counts it still.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
