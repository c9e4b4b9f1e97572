import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeLines, endLines, progressLines, type OperationView } from '../../cli/progress';

const view = (status: string, progress: OperationView['progress'], result?: OperationView['result']): OperationView => ({ workflowId: 'failover/demo/t', status, progress, ...(result ? { result } : {}) });

describe('the command line\'s progress', () => {
  it('draws the phase, the steps done, the VMs by state and the bytes rehydrated with their rate', () => {
    const lines = progressLines(
      view('RUNNING', { phase: 'rehydrate disks', steps: [{ name: 'a', state: 'done' }, { name: 'b', state: 'running' }], vms: [{ name: 'x', state: 'rehydrating' }, { name: 'y', state: 'rehydrating' }, { name: 'z', state: 'shutDown' }], bytesRehydrated: 3 * 1024 * 1024, rtoSoFarMs: 4200 }),
      2 * 1024 * 1024,
      10,
    );
    assert.deepEqual(lines, [
      'failover/demo/t  RUNNING  rehydrate disks',
      'steps 1/2 done   VMs: 2 rehydrating, 1 shutDown   RTO so far 4.2 s',
      'rehydrated [###-------] 3.0 MiB at 2.0 MiB/s',
    ]);
  });
  it('tells what changed as plain lines: a new phase, steps done or failed', () => {
    const before = view('RUNNING', { phase: 'shut down', steps: [{ name: 'shut down', state: 'running' }] });
    const after = view('RUNNING', { phase: 'rehydrate', steps: [{ name: 'shut down', state: 'done', durationMs: 1500 }, { name: 'check', state: 'failed', durationMs: 10, detail: 'no site' }] });
    assert.deepEqual(changeLines(before, after, new Date('2026-11-30T07:00:05Z')), ['07:00:05 phase: rehydrate', '07:00:05 done: shut down (1.5 s)', '07:00:05 FAILED: check (0.0 s): no site']);
    assert.deepEqual(changeLines(after, after, new Date()), [], 'nothing changed, nothing said');
  });
  it('exits 0 only for a success, and 1 for an abort, a cancel or a failed drill', () => {
    assert.equal(endLines(view('COMPLETED', {}, { outcome: 'succeeded', rtoMs: 24100, rpoMs: 0 })).exitCode, 0);
    assert.deepEqual(endLines(view('COMPLETED', {}, { outcome: 'succeeded', rtoMs: 24100, rpoMs: 0 })).lines, ['failover/demo/t: COMPLETED (succeeded)', 'RTO 24.1 s, RPO 0.0 s']);
    assert.equal(endLines(view('FAILED', {})).exitCode, 1);
    assert.equal(endLines(view('CANCELLED', {})).exitCode, 1);
    assert.equal(endLines(view('COMPLETED', {}, { outcome: 'succeeded-with-failures' })).exitCode, 1);
    assert.equal(endLines(view('COMPLETED', {}, { outcome: 'succeeded', drill: { outcome: 'failed', failedBecause: ['check x failed'] } })).exitCode, 1);
  });
});
