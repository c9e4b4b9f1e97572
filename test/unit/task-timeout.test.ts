import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { operationTaskTimeoutMs } from '../../workflows/task-timeout';

describe('an operation\'s workflow task timeout', () => {
  it("is Temporal's default of 10 s up to 2,500 VMs, 4 ms per VM above, and at most the server's 120 s", () => {
    assert.deepEqual(
      [1, 1_200, 2_500, 2_501, 10_000, 20_000, 30_000, 100_000].map(operationTaskTimeoutMs),
      [10_000, 10_000, 10_000, 10_004, 40_000, 80_000, 120_000, 120_000],
    );
  });
});
