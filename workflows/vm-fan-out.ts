import { forEachLimited } from '../common/parallel';

/**
 * Per-VM steps of an operation run at most this many at a time: Temporal refuses a workflow task
 * that leaves more than 2,000 activities pending, and a site serves a bounded number of calls at
 * once anyway.
 */
export const VM_STEPS_IN_FLIGHT = 100;

/** Runs a per-VM step over `items`, VM_STEPS_IN_FLIGHT at a time, passing each item's position. */
export function forEachVm<T>(items: T[], work: (item: T, index: number) => Promise<void>): Promise<void> {
  return forEachLimited(
    items.map((item, index) => ({ item, index })),
    VM_STEPS_IN_FLIGHT,
    ({ item, index }) => work(item, index),
  );
}

/**
 * VMs per batch activity of a per-VM step: the operation's history grows by one activity per
 * batch, not per VM (Temporal ends a workflow whose history passes 51,200 events, some thousands
 * of VMs with an activity per VM and step).
 */
export const VMS_PER_BATCH = 100;

/** Batches of a step run at most this many at a time; their VMs' calls, VMS_IN_FLIGHT_PER_BATCH each. */
export const VM_BATCHES_IN_FLIGHT = 10;

/**
 * Runs a per-VM step over `items` in batches of VMS_PER_BATCH, `inFlight` at a time, passing each
 * batch and its range for the Web UI (`101–200 of 1000`).
 */
export function forEachBatch<T>(items: T[], work: (batch: T[], range: string) => Promise<void>, inFlight = VM_BATCHES_IN_FLIGHT): Promise<void> {
  const batches = Array.from({ length: Math.ceil(items.length / VMS_PER_BATCH) }, (_, i) => i * VMS_PER_BATCH);
  return forEachLimited(batches, inFlight, (first) => {
    const batch = items.slice(first, first + VMS_PER_BATCH);
    const last = first + batch.length;
    return work(batch, `${first + 1 === last ? last : `${first + 1}–${last}`} of ${items.length}`);
  });
}
