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
