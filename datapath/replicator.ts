import type { SiteProvider } from '../sites/provider';
import type { SegmentWriter } from './segment-writer';

export type JournalSource = Pick<SiteProvider, 'readJournal' | 'trimJournal'>;

/** The journal no longer holds writes this replicator has not stored: only a resync can repair it. */
export class JournalGapError extends Error {
  constructor(cursor: number, firstRetained: number) {
    super(`journal entries after ${cursor} were trimmed (first retained ${firstRetained}) but are not in the log`);
    this.name = 'JournalGapError';
  }
}

export interface ReplicationProgress {
  /** Journal sequence up to which every write of the domain is in an acknowledged segment. */
  cursor: number;
  segmentsWritten: number;
  segmentsAdopted: number;
  /** Ack time minus write time of the newest write in the last segment. */
  lagMs: number;
  /** Journal writes (any domain of the site) not yet drained. */
  backlogEntries: number;
  lastSegmentKey?: string;
  /** The run stopped because replication fell behind the throttle: bitmap mode should take over from `cursor`. */
  throttled?: boolean;
}

/** Replication is behind when the journal holds more than this many writes after the cursor, or its oldest unlogged write is older than this. */
export interface Throttle {
  maxBacklogEntries: number;
  maxLagMs: number;
}

export interface ReplicateOptions {
  source: JournalSource;
  writer: SegmentWriter;
  vms: string[];
  cursor: number;
  maxEntries: number;
  maxBytes: number;
  idlePollMs: number;
  /** Acknowledges each stored segment to the site, which frees journal space once every domain sharing it has. */
  trimJournal: boolean;
  onSegment: (progress: ReplicationProgress) => void | Promise<void>;
  /** Without it replication never gives up on logging every write. */
  throttle?: Throttle;
  shouldStop: () => boolean;
  now?: () => number;
}

/**
 * Drains the site's changed-block journal into log segments. Each segment is named by the cursor
 * it starts after and only then acknowledged (cursor advanced, journal trimmed), so a replicator
 * restarted from any earlier cursor rewrites the same keys, adopts what is there, and leaves
 * neither a gap nor a duplicate.
 */
export async function replicate(options: ReplicateOptions): Promise<ReplicationProgress> {
  const now = options.now ?? Date.now;
  const progress: ReplicationProgress = { cursor: options.cursor, segmentsWritten: 0, segmentsAdopted: 0, lagMs: 0, backlogEntries: 0 };
  while (!options.shouldStop()) {
    const batch = await options.source.readJournal({
      afterSequence: progress.cursor,
      vms: options.vms,
      maxEntries: options.maxEntries,
      maxBytes: options.maxBytes,
    });
    progress.backlogEntries = Math.max(0, batch.lastSequence - progress.cursor);
    if (batch.firstRetainedSequence > progress.cursor + 1 && !(await options.writer.existing(progress.cursor))) {
      throw new JournalGapError(progress.cursor, batch.firstRetainedSequence);
    }
    const throttle = options.throttle;
    if (
      throttle &&
      batch.entries.length > 0 &&
      (progress.backlogEntries > throttle.maxBacklogEntries || now() - batch.entries[0].timestamp > throttle.maxLagMs) &&
      // A segment an earlier attempt wrote from here is adopted first: bitmap mode must start exactly where the log ends.
      !(await options.writer.existing(progress.cursor))
    ) {
      progress.lagMs = now() - batch.entries[0].timestamp;
      progress.throttled = true;
      return progress;
    }
    if (batch.entries.length === 0) {
      progress.lagMs = 0;
      await new Promise((resolve) => setTimeout(resolve, options.idlePollMs));
      continue;
    }
    const last = batch.entries.at(-1)!;
    const written = await options.writer.write(progress.cursor, batch.entries, last.sequence);
    const newest = written.segment.entries.at(-1);
    progress.cursor = written.segment.lastSequence;
    progress.lastSegmentKey = written.key;
    progress.lagMs = newest ? now() - newest.timestamp : 0;
    progress.backlogEntries = Math.max(0, batch.lastSequence - progress.cursor);
    if (written.created) progress.segmentsWritten++;
    else progress.segmentsAdopted++;
    if (options.trimJournal) await options.source.trimJournal(progress.cursor, options.vms);
    await options.onSegment({ ...progress });
  }
  return progress;
}
