/**
 * Where each object of a protected domain lives under the storage site's prefix. Numbers are
 * zero-padded so that a lexical S3 listing is numeric order.
 */
const EPOCH_DIGITS = 10;
const SEQUENCE_DIGITS = 16;

export function padEpoch(epoch: number): string {
  return String(epoch).padStart(EPOCH_DIGITS, '0');
}

export function padSequence(sequence: number): string {
  return String(sequence).padStart(SEQUENCE_DIGITS, '0');
}

/** A restore point's id: the log position it ends at (epoch, segment, entries of that segment). */
export function restorePointId(epoch: number, segment: number, entries: number): string {
  return `${padEpoch(epoch)}-${padSequence(segment)}-${entries}`;
}

/** What a restore point id looks like, e.g. 0000000001-0000000000000042-17: a request may name nothing else. */
export const RESTORE_POINT_ID = new RegExp(`^\\d{${EPOCH_DIGITS}}-\\d{${SEQUENCE_DIGITS}}-\\d{1,9}$`);

export class DomainKeys {
  readonly root: string;

  constructor(prefix: string, readonly domain: string) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(domain)) throw new Error(`invalid domain name "${domain}"`);
    this.root = `${prefix}domains/${domain}/`;
  }

  manifest(): string {
    return `${this.root}manifest.json`;
  }
  membersPrefix(): string {
    return `${this.root}members/`;
  }
  /** A protection's members as of one change, named by their digest: the workflow holds only the digest. */
  members(digest: string): string {
    return `${this.membersPrefix()}${digest}.json`;
  }
  ownershipPrefix(): string {
    return `${this.root}ownership/`;
  }
  ownership(epoch: number): string {
    return `${this.ownershipPrefix()}${padEpoch(epoch)}`;
  }
  handoff(epoch: number): string {
    return `${this.root}handoff/${padEpoch(epoch)}`;
  }
  logPrefix(epoch: number): string {
    return `${this.root}log/${padEpoch(epoch)}/`;
  }
  /** A segment is named by the journal cursor it starts after, so a re-run from that cursor names the same object. */
  segment(epoch: number, afterSequence: number): string {
    return `${this.logPrefix(epoch)}${padSequence(afterSequence)}`;
  }
  /** Where large segments' bytes are uploaded before the log refers to them: outside `log/`, so a listing of the log is the chain alone. */
  segmentDataPrefix(epoch: number): string {
    return `${this.root}log-data/${padEpoch(epoch)}/`;
  }
  /** One upload of a segment's bytes; `upload` tells apart the attempts of writers from the same cursor, of which the log refers to one. */
  segmentData(epoch: number, afterSequence: number, upload: string): string {
    return `${this.segmentDataPrefix(epoch)}${padSequence(afterSequence)}-${upload}`;
  }
  pointsPrefix(): string {
    return `${this.root}points/`;
  }
  point(id: string): string {
    return `${this.pointsPrefix()}${id}.json`;
  }
  /** What is said about restore points after they were made (pins, drill results): small objects of their own, so a point record is never rewritten. */
  pointTagsPrefix(): string {
    return `${this.root}point-tags/`;
  }
  pointTags(id: string): string {
    return `${this.pointTagsPrefix()}${id}/`;
  }
  pointPin(id: string): string {
    return `${this.pointTags(id)}pin.json`;
  }
  /** One record per drill, so that a repeated activity writes the same object. */
  pointTested(id: string, drill: string): string {
    return `${this.pointTags(id)}tested/${encodeURIComponent(drill)}.json`;
  }
  basesPrefix(): string {
    return `${this.root}base/`;
  }
  /** A base is named by the log position it images: epoch and the journal cursor its log continues after. */
  baseId(epoch: number, cursor: number): string {
    return `${padEpoch(epoch)}-${padSequence(cursor)}`;
  }
  /** Written last, create-if-absent: while it is missing the base does not exist for readers. */
  baseRecord(baseId: string): string {
    return `${this.basesPrefix()}${baseId}/base.json`;
  }
  /** The chunks of every disk of the base. */
  baseChunksRoot(baseId: string): string {
    return `${this.basesPrefix()}${baseId}/chunks/`;
  }
  baseChunksPrefix(baseId: string, diskId: string): string {
    return `${this.baseChunksRoot(baseId)}${encodeURIComponent(diskId)}/`;
  }
  baseChunk(baseId: string, diskId: string, offset: number): string {
    return `${this.baseChunksPrefix(baseId, diskId)}${padSequence(offset)}`;
  }
  /** The intent of an initial sync for an epoch, written before its copy starts. */
  syncIntent(epoch: number): string {
    return `${this.root}sync/${padEpoch(epoch)}.json`;
  }
  syncPrefix(): string {
    return `${this.root}sync/`;
  }
  resyncPrefix(): string {
    return `${this.root}resync/`;
  }
  /** A stretch of the log that bitmap mode left out and a resync segment fills: named by where it starts. */
  resync(epoch: number, segment: number, part: 'start' | 'done'): string {
    return `${this.resyncPrefix()}${padEpoch(epoch)}-${padSequence(segment)}${part === 'done' ? '.done' : ''}.json`;
  }
  /** The dirty regions bitmap mode collected (overwritten as it drains; the replicator's own state). */
  dirtyRegions(epoch: number, segment: number): string {
    return `${this.root}dirty/${padEpoch(epoch)}-${padSequence(segment)}.json`;
  }
  /** Where the disks of the site that owned `epoch` stood when the domain left it (one record per epoch, create-if-absent). */
  departure(epoch: number): string {
    return `${this.root}departures/${padEpoch(epoch)}.json`;
  }
  departuresPrefix(): string {
    return `${this.root}departures/`;
  }
  /** Which image the disks of `epoch`'s owner started from when its log began. */
  arrival(epoch: number): string {
    return `${this.root}arrivals/${padEpoch(epoch)}.json`;
  }
  leasesPrefix(): string {
    return `${this.root}leases/`;
  }
  /** What a running reader (a rehydration) needs kept; `holder` names it, e.g. its workflow and activity. */
  lease(holder: string): string {
    return `${this.leasesPrefix()}${encodeURIComponent(holder)}.json`;
  }
}

/** The epoch and cursor a base id names. */
export function parseBaseId(baseId: string): { epoch: number; cursor: number } {
  const match = /^(\d{10})-(\d{16})$/.exec(baseId);
  if (!match) throw new Error(`not a base id: ${baseId}`);
  return { epoch: Number(match[1]), cursor: Number(match[2]) };
}

export function domainsPrefix(prefix: string): string {
  return `${prefix}domains/`;
}

/** The journal cursor the segment whose bytes a `segmentData` key holds starts after. */
export function segmentDataPosition(key: string): number {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return trailingNumber(name.slice(0, name.indexOf('-')));
}

/** The number at the end of an epoch or segment key. */
export function trailingNumber(key: string): number {
  const value = Number(key.slice(key.lastIndexOf('/') + 1));
  if (!Number.isSafeInteger(value)) throw new Error(`not a numbered key: ${key}`);
  return value;
}
