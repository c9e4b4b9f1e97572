import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SiteStateFile, type PersistedState } from '../../sites/simulated/site-state-file';
import { siteVm } from '../fixtures/site-vms';

const vm = (name: string) => siteVm(name);

function fresh(): { file: string; store: SiteStateFile; state: PersistedState } {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'site-state-')), 'state.json');
  const store = new SiteStateFile(file, 5);
  return { file, store, state: store.load() };
}

describe('a simulated site state: snapshot plus appended changes', () => {
  it('reloads what each save appended, ignores a line cut short by a crash, and starts the log empty again', () => {
    const { file, store, state } = fresh();
    state.vms.a = vm('a');
    state.events.push({ sequence: 1, at: 1, type: 'VmRegistered', vm: 'a' });
    state.nextEvent = 2;
    store.append(state, { vms: { a: state.vms.a }, disks: {}, events: state.events.slice(0), nextEvent: 2 });
    state.vms.a.powerState = 'poweredOn';
    state.vms.b = vm('b');
    state.events.push({ sequence: 2, at: 2, type: 'VmPoweredOn', vm: 'a' }, { sequence: 3, at: 3, type: 'VmRegistered', vm: 'b' });
    state.nextEvent = 4;
    state.journalAcks = { a: 7 };
    store.append(state, { vms: { a: state.vms.a, b: state.vms.b }, disks: {}, events: state.events.slice(1), nextEvent: 4, journalAcks: { a: 7 } });
    delete state.vms.b;
    store.append(state, { vms: { b: null }, disks: {}, events: [], nextEvent: 4 });
    store.close();
    const changes = file.replace(/\.json$/, '.changes.jsonl');
    appendFileSync(changes, '{"vms": {"c": ');

    const reloaded = new SiteStateFile(file, 5).load();
    assert.deepEqual(Object.keys(reloaded.vms), ['a']);
    assert.equal(reloaded.vms.a.powerState, 'poweredOn');
    assert.deepEqual(reloaded.events.map((e) => e.sequence), [1, 2, 3]);
    assert.equal(reloaded.nextEvent, 4);
    assert.deepEqual(reloaded.journalAcks, { a: 7 });
    assert.equal(statSync(changes).size, 0, 'the replayed changes are folded into the snapshot');
    assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as PersistedState).vms.a.powerState, 'poweredOn');
  });

  it('replays a change already in the snapshot to the same state, and keeps only the newest events', () => {
    const { file, store, state } = fresh();
    for (let sequence = 1; sequence <= 8; sequence++) {
      state.vms[`v${sequence}`] = vm(`v${sequence}`);
      state.events.push({ sequence, at: sequence, type: 'VmRegistered', vm: `v${sequence}` });
      state.nextEvent = sequence + 1;
      store.append(state, { vms: { [`v${sequence}`]: state.vms[`v${sequence}`] }, disks: {}, events: [state.events.at(-1)!], nextEvent: sequence + 1 });
    }
    store.close();
    // As after a crash between a new snapshot and the truncation of the log: the snapshot has it all.
    const changes = readFileSync(file.replace(/\.json$/, '.changes.jsonl'), 'utf8');
    const once = new SiteStateFile(file, 5).load();
    appendFileSync(file.replace(/\.json$/, '.changes.jsonl'), changes);
    const twice = new SiteStateFile(file, 5).load();
    assert.deepEqual(twice, once);
    assert.equal(Object.keys(twice.vms).length, 8);
    assert.deepEqual(twice.events.map((e) => e.sequence), [4, 5, 6, 7, 8]);
  });
});
