import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { JournalBatch, JournalEntry, ReadJournalOptions } from '../provider';
import { readJson, writeJsonAtomically } from './persistent-json';

/**
 * The changed-block journal: every write to a protected disk, in acknowledgement order, with a
 * site-wide sequence. Stored as append-only segment files of length-prefixed records
 * (u32 header length, JSON header, data) and indexed in memory; a torn record at the end of the
 * newest segment (the process died mid-append) is cut off on open. Trimming deletes whole
 * segments once every entry in them has been acknowledged by the replicator.
 */
interface IndexEntry {
  sequence: number;
  timestamp: number;
  vm: string;
  diskId: string;
  offset: number;
  length: number;
  segment: number;
  position: number;
}

const SEGMENT_BYTES = 64 * 1024 * 1024;
const segmentName = (first: number) => `${String(first).padStart(16, '0')}.journal`;

export class Journal {
  private index: IndexEntry[] = [];
  private writeFd: number | undefined;
  private writeSegment = 0;
  private writePosition = 0;
  private trimmedUpTo = 0;
  private readonly readFds = new Map<number, number>();
  lastSequence = 0;

  private resumeSegment = false;

  constructor(private readonly folder: string) {
    mkdirSync(folder, { recursive: true });
    const segments = readdirSync(folder).filter((f) => f.endsWith('.journal')).sort();
    for (const name of segments) this.load(Number(name.slice(0, 16)));
    // The newest segment is never trimmed away and is named after its first sequence, so the
    // sequence survives restarts even when every entry was trimmed.
    if (segments.length > 0) this.lastSequence = Math.max(this.lastSequence, this.writeSegment - 1);
    this.resumeSegment = segments.length > 0;
    this.trimmedUpTo = readJson(this.stateFile, () => ({ trimmedUpTo: 0 })).trimmedUpTo;
    // Trimmed entries that share the live segment with newer ones stay in the file, not in the journal.
    this.index = this.index.slice(lowerBound(this.index, this.trimmedUpTo + 1));
  }

  private get stateFile(): string {
    return path.join(this.folder, 'trim.json');
  }

  private load(segment: number): void {
    const file = path.join(this.folder, segmentName(segment));
    const size = statSync(file).size;
    const fd = openSync(file, 'r+');
    let position = 0;
    const lengthBytes = Buffer.alloc(4);
    while (position + 4 <= size) {
      readSync(fd, lengthBytes, 0, 4, position);
      const headerLength = lengthBytes.readUInt32BE(0);
      if (position + 4 + headerLength > size) break;
      const headerBytes = Buffer.alloc(headerLength);
      readSync(fd, headerBytes, 0, headerLength, position + 4);
      let header: { s: number; t: number; v: string; d: string; o: number; l: number };
      try {
        header = JSON.parse(headerBytes.toString('utf8')) as typeof header;
      } catch {
        break;
      }
      const end = position + 4 + headerLength + header.l;
      if (end > size) break;
      this.index.push({ sequence: header.s, timestamp: header.t, vm: header.v, diskId: header.d, offset: header.o, length: header.l, segment, position: position + 4 + headerLength });
      this.lastSequence = header.s;
      position = end;
    }
    closeSync(fd);
    if (position < size) {
      // A torn append: keep what was whole.
      const truncateFd = openSync(file, 'r+');
      ftruncateSync(truncateFd, position);
      closeSync(truncateFd);
    }
    this.writeSegment = segment;
    this.writePosition = position;
  }

  append(vm: string, diskId: string, offset: number, data: Buffer, timestamp: number): number {
    if (this.writeFd === undefined || this.writePosition >= SEGMENT_BYTES) this.roll();
    const sequence = ++this.lastSequence;
    const header = Buffer.from(JSON.stringify({ s: sequence, t: timestamp, v: vm, d: diskId, o: offset, l: data.length }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length, 0);
    const record = Buffer.concat([length, header, data]);
    writeSync(this.writeFd!, record, 0, record.length, this.writePosition);
    this.index.push({ sequence, timestamp, vm, diskId, offset, length: data.length, segment: this.writeSegment, position: this.writePosition + 4 + header.length });
    this.writePosition += record.length;
    return sequence;
  }

  private roll(): void {
    if (this.writeFd !== undefined) closeSync(this.writeFd);
    if (this.resumeSegment && this.writePosition < SEGMENT_BYTES) {
      this.resumeSegment = false;
      this.writeFd = openSync(path.join(this.folder, segmentName(this.writeSegment)), 'r+');
      return;
    }
    this.resumeSegment = false;
    this.writeSegment = this.lastSequence + 1;
    this.writePosition = 0;
    this.writeFd = openSync(path.join(this.folder, segmentName(this.writeSegment)), 'w');
  }

  private readData(entry: IndexEntry): Buffer {
    let fd = this.readFds.get(entry.segment);
    if (fd === undefined) {
      fd = openSync(path.join(this.folder, segmentName(entry.segment)), 'r');
      this.readFds.set(entry.segment, fd);
    }
    const data = Buffer.alloc(entry.length);
    readSync(fd, data, 0, entry.length, entry.position);
    return data;
  }

  read({ afterSequence, vms, maxBytes = 8 * 1024 * 1024, maxEntries = 10_000 }: ReadJournalOptions): JournalBatch {
    const wanted = vms ? new Set(vms) : undefined;
    const entries: JournalEntry[] = [];
    let bytes = 0;
    let i = lowerBound(this.index, afterSequence + 1);
    for (; i < this.index.length && entries.length < maxEntries; i++) {
      const e = this.index[i];
      if (wanted && !wanted.has(e.vm)) continue;
      if (entries.length > 0 && bytes + e.length > maxBytes) break;
      entries.push({ sequence: e.sequence, timestamp: e.timestamp, vm: e.vm, diskId: e.diskId, offset: e.offset, data: this.readData(e) });
      bytes += e.length;
    }
    let pendingBytes = bytes;
    for (; i < this.index.length; i++) if (!wanted || wanted.has(this.index[i].vm)) pendingBytes += this.index[i].length;
    return { entries, lastSequence: this.lastSequence, firstRetainedSequence: this.trimmedUpTo + 1, pendingBytes };
  }

  trim(upToSequence: number): void {
    const upTo = Math.min(upToSequence, this.lastSequence);
    if (upTo <= this.trimmedUpTo) return;
    this.trimmedUpTo = upTo;
    writeJsonAtomically(this.stateFile, { trimmedUpTo: upTo });
    const cut = lowerBound(this.index, upTo + 1);
    const kept = this.index.slice(cut);
    const liveSegments = new Set(kept.map((e) => e.segment));
    liveSegments.add(this.writeSegment);
    for (const segment of new Set(this.index.slice(0, cut).map((e) => e.segment))) {
      if (liveSegments.has(segment)) continue;
      const fd = this.readFds.get(segment);
      if (fd !== undefined) closeSync(fd);
      this.readFds.delete(segment);
      rmSync(path.join(this.folder, segmentName(segment)), { force: true });
    }
    this.index = kept;
  }

  close(): void {
    if (this.writeFd !== undefined) closeSync(this.writeFd);
    for (const fd of this.readFds.values()) closeSync(fd);
    this.writeFd = undefined;
    this.readFds.clear();
  }
}

function lowerBound(index: IndexEntry[], sequence: number): number {
  let lo = 0;
  let hi = index.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (index[mid].sequence < sequence) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
