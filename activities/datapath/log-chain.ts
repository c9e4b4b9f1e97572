import { DomainKeys, trailingNumber } from './keys';
import type { ObjectStore } from './object-store';
import type { Ownership } from './ownership';
import { decodeSegment, CorruptSegmentError, type Segment } from './segment-codec';

export interface ChainLink {
  epoch: number;
  segment: number;
  key: string;
}

/**
 * The segments readers apply, in order: each epoch's segments up to the handoff sealed by the
 * next epoch, then the current epoch's. Segments a fenced writer put after the handoff are not
 * in it.
 */
export async function resolveChain(store: ObjectStore, ownership: Ownership): Promise<ChainLink[]> {
  const keys = new DomainKeys(store.prefix, ownership.domain);
  const epochs = await ownership.epochs();
  const chain: ChainLink[] = [];
  for (const [index, epoch] of epochs.entries()) {
    const next = epochs[index + 1];
    const limit = next === undefined ? Infinity : ((await ownership.handoff(next)).lastSegment ?? -1);
    const { keys: segmentKeys } = await store.list(keys.logPrefix(epoch));
    for (const key of segmentKeys) {
      const segment = trailingNumber(key);
      if (segment <= limit) chain.push({ epoch, segment, key });
    }
  }
  return chain;
}

/**
 * Fetches and decodes the chain with `concurrency` GETs in flight, yielding segments in chain
 * order. Checks continuity inside each epoch (each segment starts where the previous ended), so
 * a missing segment stops the reader instead of leaving a silent gap.
 */
export async function* readChain(store: ObjectStore, chain: ChainLink[], concurrency: number): AsyncGenerator<{ link: ChainLink; segment: Segment }> {
  const inFlight: Array<Promise<Segment>> = [];
  let nextToFetch = 0;
  const fetch = async (link: ChainLink): Promise<Segment> => {
    const body = await store.get(link.key);
    if (!body) throw new CorruptSegmentError(link.key, 'listed but missing');
    const segment = decodeSegment(link.key, body);
    if (segment.epoch !== link.epoch || segment.afterSequence !== link.segment) throw new CorruptSegmentError(link.key, 'header does not match its key');
    return segment;
  };
  let previous: { link: ChainLink; segment: Segment } | undefined;
  for (let index = 0; index < chain.length; index++) {
    while (nextToFetch < chain.length && nextToFetch < index + concurrency) {
      const promise = fetch(chain[nextToFetch++]);
      // Failures surface when the segment's turn comes; until then they must not be unhandled.
      promise.catch(() => undefined);
      inFlight.push(promise);
    }
    const segment = await inFlight.shift()!;
    const link = chain[index];
    if (previous && previous.link.epoch === link.epoch && previous.segment.lastSequence !== segment.afterSequence) {
      throw new CorruptSegmentError(link.key, `gap in the log: previous segment ${previous.link.key} ends at ${previous.segment.lastSequence}`);
    }
    previous = { link, segment };
    yield previous;
  }
}
