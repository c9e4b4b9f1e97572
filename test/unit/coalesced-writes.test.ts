import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { coalesceWrites, type DiskWrite } from '../../datapath/coalesced-writes';

describe('coalesceWrites', () => {
  it('gives the bytes of the writes applied in order, touching nothing they do not cover', () => {
    for (let round = 0; round < 50; round++) {
      const disks = { a: Buffer.alloc(64 * 1024, 7), b: Buffer.alloc(16 * 1024, 7) };
      const writes: DiskWrite[] = [];
      for (let i = 0; i < 200; i++) {
        const diskId = i % 3 === 0 ? 'b' : 'a';
        const data = randomBytes(1 + Math.floor(Math.random() * 2048));
        writes.push({ diskId, offset: Math.floor(Math.random() * (disks[diskId].length - data.length)), data });
      }
      const expected = { a: Buffer.from(disks.a), b: Buffer.from(disks.b) };
      for (const w of writes) w.data.copy(expected[w.diskId as 'a' | 'b'], w.offset);
      const runs = coalesceWrites(writes);
      for (const run of runs) run.data.copy(disks[run.diskId as 'a' | 'b'], run.offset);
      assert.ok(disks.a.equals(expected.a) && disks.b.equals(expected.b), `round ${round}`);
      for (const diskId of ['a', 'b']) {
        const mine = runs.filter((r) => r.diskId === diskId);
        for (let i = 1; i < mine.length; i++) assert.ok(mine[i - 1].offset + mine[i - 1].data.length < mine[i].offset, 'runs neither overlap nor touch');
      }
    }
  });
});
