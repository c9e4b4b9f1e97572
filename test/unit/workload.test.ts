import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockContent, writeLength, type WorkloadSettings } from '../../sites/workload';

describe('the guest workload', () => {
  const settings: WorkloadSettings = { writesPerSecond: 1, blockSize: 4096, maxBlockSize: 1024 * 1024, pattern: 'random', seed: 'unit' };

  it('writes blockSize times each power of two up to maxBlockSize, about as often each, the same for the same write number', () => {
    const counts = new Map<number, number>();
    for (let n = 1; n <= 9_000; n++) counts.set(writeLength(settings, n), (counts.get(writeLength(settings, n)) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [4, 8, 16, 32, 64, 128, 256, 512, 1024].map((k) => k * 1024));
    for (const [size, count] of counts) assert.ok(count > 800 && count < 1200, `${size}: ${count} of 9000`);
    assert.equal(writeLength(settings, 17), writeLength({ ...settings }, 17));
  });

  it('writes blockSize only without maxBlockSize', () => {
    const { maxBlockSize: _, ...fixed } = settings;
    for (let n = 1; n <= 100; n++) assert.equal(writeLength(fixed, n), 4096);
  });

  it('derives the bytes from the seed and write number alone, as many as asked, and different for another write', () => {
    const a = blockContent('unit', 1, 1024 * 1024);
    assert.equal(a.length, 1024 * 1024);
    assert.ok(a.equals(blockContent('unit', 1, 1024 * 1024)));
    assert.ok(a.subarray(0, 4096).equals(blockContent('unit', 1, 4096)), 'a shorter write is a prefix of a longer one');
    assert.ok(!a.subarray(0, 4096).equals(blockContent('unit', 2, 4096)));
    assert.ok(!a.subarray(0, 4096).equals(blockContent('other', 1, 4096)));
  });
});
