import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import type { SiteEvent, VirtualDisk, Vm } from '../provider';
import { readJson, writeJsonAtomically } from './persistent-json';

export interface PersistedState {
  vms: Record<string, Vm>;
  disks: Record<string, VirtualDisk>;
  events: SiteEvent[];
  nextEvent: number;
  /** Per VM, the journal sequence up to which its replicator has acknowledged (stored elsewhere). */
  journalAcks?: Record<string, number>;
}

/** What one save changed: each named VM and disk as it is now (null: gone), the new events, changed acknowledgements. */
export interface StateChange {
  vms: Record<string, Vm | null>;
  disks: Record<string, VirtualDisk | null>;
  events: SiteEvent[];
  nextEvent: number;
  journalAcks?: Record<string, number>;
}

/**
 * A site's state on disk: a snapshot (`state.json`, replaced atomically) and the changes since,
 * one JSON line per save appended to `changes.jsonl`. A save costs what it changed, not the size
 * of the site: rewriting the whole document at every change made a 10,000-VM site spend most of
 * its time writing it. Once the changes outgrow the snapshot they are folded into a new one. A
 * line cut short by a crash was never acknowledged (callers answer after the append) and is
 * ignored; replaying a line twice (a crash between a new snapshot and the log's truncation) sets
 * the same values again, and events already in the snapshot are skipped by sequence.
 */
export class SiteStateFile {
  private readonly changesFile: string;
  private changes?: number;
  private changesBytes = 0;
  private snapshotBytes = 0;

  constructor(
    private readonly stateFile: string,
    private readonly eventsKept: number,
  ) {
    this.changesFile = stateFile.replace(/\.json$/, '') + '.changes.jsonl';
  }

  load(): PersistedState {
    const state = readJson<PersistedState>(this.stateFile, () => ({ vms: {}, disks: {}, events: [], nextEvent: 1 }));
    if (existsSync(this.changesFile)) {
      for (const line of readFileSync(this.changesFile, 'utf8').split('\n')) {
        let change: StateChange;
        try {
          change = JSON.parse(line) as StateChange;
        } catch {
          break;
        }
        apply(state, change, this.eventsKept);
      }
    }
    // Whatever was replayed goes into a fresh snapshot: the log starts empty.
    this.compact(state);
    return state;
  }

  append(state: PersistedState, change: StateChange): void {
    const line = Buffer.from(`${JSON.stringify(change)}\n`);
    this.changes ??= openSync(this.changesFile, 'a');
    writeSync(this.changes, line);
    this.changesBytes += line.length;
    if (this.changesBytes > Math.max(4 * 1024 * 1024, 2 * this.snapshotBytes)) this.compact(state);
  }

  close(): void {
    if (this.changes !== undefined) closeSync(this.changes);
    this.changes = undefined;
  }

  private compact(state: PersistedState): void {
    writeJsonAtomically(this.stateFile, state);
    this.snapshotBytes = statSync(this.stateFile).size;
    this.changes ??= openSync(this.changesFile, 'a');
    ftruncateSync(this.changes, 0);
    this.changesBytes = 0;
  }
}

function apply(state: PersistedState, change: StateChange, eventsKept: number): void {
  for (const [name, vm] of Object.entries(change.vms)) {
    if (vm) state.vms[name] = vm;
    else delete state.vms[name];
  }
  for (const [id, disk] of Object.entries(change.disks)) {
    if (disk) state.disks[id] = disk;
    else delete state.disks[id];
  }
  const known = state.events.at(-1)?.sequence ?? 0;
  state.events.push(...change.events.filter((e) => e.sequence > known));
  if (state.events.length > eventsKept) state.events.splice(0, state.events.length - eventsKept);
  state.nextEvent = Math.max(state.nextEvent, change.nextEvent);
  if (change.journalAcks) state.journalAcks = { ...state.journalAcks, ...change.journalAcks };
}
