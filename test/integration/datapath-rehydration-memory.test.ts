import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { forEachLimited } from '../../common/parallel';
import { Ownership } from '../../datapath/ownership';
import type { DomainDisk } from '../../datapath/records';
import type { BlockWrite } from '../../datapath/segment-codec';
import { SegmentWriter } from '../../datapath/segment-writer';
import { runRehydrationProcess } from '../harness/rehydration-process';
import { useTestStack } from '../harness/stack';

const MiB = 1024 * 1024;
const HEAP_LIMIT_MIB = 64;
const DISKS: DomainDisk[] = Array.from({ length: 4 }, (_, i) => ({ vm: 'vm-1', diskId: `big-${i}`, sizeBytes: 64 * MiB }));
const DOMAIN_MIB = DISKS.reduce((sum, d) => sum + d.sizeBytes, 0) / MiB;

describe('rehydration memory on real S3: a domain larger than the heap limit', () => {
  const { stack, store } = useTestStack();

  it(`rebuilds ${DOMAIN_MIB} MiB byte for byte in a process limited to a ${HEAP_LIMIT_MIB} MiB heap, with a peak RSS under the domain's size`, async (t) => {
    const ownership = new Ownership(store, 'memory');
    await ownership.claim('primary');
    const expected = new Map(DISKS.map((d) => [d.diskId, Buffer.alloc(d.sizeBytes)]));
    // Every byte written once in 1 MiB writes, then unaligned overwrites of 512 B..64 KiB (blocks written in part).
    const writes: Array<Omit<BlockWrite, 'sequence' | 'timestamp' | 'vm'>> = [];
    for (const disk of DISKS) for (let offset = 0; offset < disk.sizeBytes; offset += MiB) writes.push({ diskId: disk.diskId, offset, data: randomBytes(MiB) });
    for (let i = 0; i < 2_000; i++) {
      const disk = DISKS[i % DISKS.length];
      const length = 512 * randomInt(1, 129);
      writes.push({ diskId: disk.diskId, offset: 512 * randomInt((disk.sizeBytes - length) / 512), data: randomBytes(length) });
    }
    // Segments of about 2 MiB: what stays in memory is the reads in flight and two segments, whatever the domain's size.
    const segments: BlockWrite[][] = [];
    for (const [index, write] of writes.entries()) {
      if (index % 2 === 0) segments.push([]);
      segments.at(-1)!.push({ ...write, sequence: index + 1, timestamp: 1_000 + index, vm: 'vm-1' });
      write.data.copy(expected.get(write.diskId)!, write.offset);
    }
    const writer = new SegmentWriter(store, ownership, 1, 'primary');
    // Keys follow from the sequences, so the segments may be stored in any order.
    await forEachLimited(segments, 4, async (entries) => {
      await writer.write(entries[0].sequence - 1, entries, entries.at(-1)!.sequence);
    });

    const dir = mkdtempSync(path.join(tmpdir(), 'rehydration-memory-'));
    try {
      const result = runRehydrationProcess({ mode: 'rehydrate', s3: stack.s3Settings, domain: 'memory', disks: DISKS, keys: [], parallel: 8, dir, keepFiles: true }, [`--max-old-space-size=${HEAP_LIMIT_MIB}`]);
      for (const disk of DISKS) assert.ok(readFileSync(path.join(dir, `${disk.diskId}.img`)).equals(expected.get(disk.diskId)!), `disk ${disk.diskId} differs`);
      assert.equal(result.bytes, DOMAIN_MIB * MiB, 'every byte was read back against its digest');
      t.diagnostic(`peak RSS ${result.maxRssMiB} MiB, ${result.seconds.toFixed(1)} s`);
      assert.ok(result.maxRssMiB < DOMAIN_MIB, `peak RSS ${result.maxRssMiB} MiB`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
