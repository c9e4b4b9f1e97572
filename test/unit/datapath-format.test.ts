import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { BlockDigests, PendingWrites } from '../../datapath/disk-image';
import { CorruptBaseChunkError, decodeBaseChunk, decodeBaseChunkAsync, encodeBaseChunk } from '../../datapath/base-codec';
import { DomainKeys, parseBaseId, trailingNumber } from '../../datapath/keys';
import { CorruptSegmentError, decodeSegment, decodeSegmentAsync, encodeSegment, encodeSegmentAsync, type Segment } from '../../datapath/segment-codec';
import { inflatePayload, StoredBlockWriter, storedStreamBytes, unpackStoredBlocks } from '../../datapath/framing';
import { BufferPool } from '../../datapath/buffer-pool';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { isAllZeros } from '../../datapath/zeros';

function sampleSegment(): Segment {
  return {
    epoch: 3,
    afterSequence: 41,
    lastSequence: 44,
    entries: [
      { sequence: 42, timestamp: 1_700_000_000_000, vm: 'db-1', diskId: 'db-1-disk-0', offset: 4096, data: randomBytes(5000) },
      { sequence: 44, timestamp: 1_700_000_000_005, vm: 'app-1', diskId: 'app-1-disk-0', offset: 0, data: Buffer.alloc(8192, 7) },
    ],
  };
}

/**
 * A copy of `object` whose byte at `offset` is `value`, or `value` with its low bit flipped where
 * the byte already held it: the random data of a sample held the value once in 256 runs, and the
 * "damaged" copy was the original.
 */
function damagedAt(object: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(object);
  copy[offset] = copy[offset] === value ? value ^ 1 : value;
  return copy;
}

describe('datapath formats', () => {
  it('tells regions of zeros from regions with a byte written anywhere, at any length', () => {
    for (const length of [0, 1, 4096, 1024 * 1024, 3 * 1024 * 1024 + 5]) {
      assert.equal(isAllZeros(Buffer.alloc(length)), true, `${length} zeros`);
      for (const at of length > 0 ? [0, length >> 1, length - 1] : []) {
        const written = Buffer.alloc(length);
        written[at] = 1;
        assert.equal(isAllZeros(written), false, `${length} bytes with byte ${at} written`);
      }
    }
  });

  it('round-trips a segment and compresses repetitive data', () => {
    const segment = sampleSegment();
    const encoded = encodeSegment(segment);
    assert.ok(encoded.length < 5000 + 8192);
    assert.deepEqual(decodeSegment('k', encoded), segment);
  });

  it('stores an incompressible payload (deflate level 0) and compresses a compressible one, sync and on the thread pool alike', async () => {
    const random: Segment = { ...sampleSegment(), entries: [{ ...sampleSegment().entries[0], data: randomBytes(256 * 1024) }] };
    const repetitive: Segment = { ...sampleSegment(), entries: [{ ...sampleSegment().entries[0], data: Buffer.alloc(256 * 1024, 7) }] };
    for (const encoded of [encodeSegment(random), await encodeSegmentAsync(random)]) {
      assert.ok(encoded.length > 256 * 1024, 'stored, not deflated');
      assert.deepEqual(decodeSegment('k', encoded), random);
      assert.deepEqual(await decodeSegmentAsync('k', encoded), random);
    }
    assert.ok((await encodeSegmentAsync(repetitive)).length < 16 * 1024);
    assert.deepEqual(await decodeSegmentAsync('k', await encodeSegmentAsync(repetitive)), repetitive);
  });

  it('writes parts as stored blocks that zlib inflates to their concatenation, however they cross block boundaries', () => {
    for (const sizes of [[0], [1], [65_535], [65_536], [70_000, 1, 65_534, 200_000], [10, 0, 65_525, 5]]) {
      const parts = sizes.map((size) => randomBytes(size));
      const raw = Buffer.concat(parts);
      const stream = Buffer.alloc(storedStreamBytes(raw.length) + 3, 0xee);
      const writer = new StoredBlockWriter(stream, 3, raw.length);
      for (const part of parts) writer.write(part);
      const payload = stream.subarray(3);
      assert.ok(inflateRawSync(payload).equals(raw), `parts of ${sizes.join(', ')} bytes`);
      assert.ok(unpackStoredBlocks(payload, raw.length)?.equals(raw));
    }
  });

  it('encodes an incompressible segment of many writes straight into stored blocks, in a buffer it is given', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => ({ sequence: 100 + i, timestamp: 1_700_000_000_000 + i, vm: `vm-${i % 3}`, diskId: `vm-${i % 3}-disk-0`, offset: i * 4096, data: randomBytes(1 + ((i * 7919) % 70_000)) }));
    const segment: Segment = { epoch: 2, afterSequence: 99, lastSequence: 139, entries };
    const given: Buffer[] = [];
    const encoded = await encodeSegmentAsync(segment, (bytes) => {
      given.push(Buffer.alloc(bytes));
      return given[0];
    });
    assert.equal(encoded, given[0], 'the object is the buffer it was given');
    assert.deepEqual(decodeSegment('k', encoded), segment);
    assert.deepEqual(await decodeSegmentAsync('k', encoded), segment);
    // What the synchronous path writes through zlib decodes the same.
    assert.deepEqual(decodeSegment('k', encodeSegment(segment)), segment);
  });

  it('hands out its own buffers again once given back, never a buffer it did not make', () => {
    const pool = new BufferPool(8 * 1024 * 1024);
    const first = pool.take(3 * 1024 * 1024 + 5);
    pool.give(first);
    const again = pool.take(3 * 1024 * 1024);
    assert.equal(again.buffer, first.buffer, 'reused: same memory, any size up to what it holds');
    assert.equal(again.length, 3 * 1024 * 1024);
    pool.give(Buffer.alloc(4 * 1024 * 1024));
    assert.notEqual(pool.take(4 * 1024 * 1024).buffer, again.buffer);
    assert.equal(pool.take(1024).buffer === again.buffer, false, 'a buffer taken and not given back is not handed out twice');

    // Kept up to its bytes: 4 MiB + 4 MiB fit in 8 MiB, a third buffer given back is not kept.
    const held = [pool.take(4 * 1024 * 1024), pool.take(4 * 1024 * 1024), pool.take(4 * 1024 * 1024)];
    for (const buffer of held) pool.give(buffer);
    const reused = [pool.take(4 * 1024 * 1024), pool.take(4 * 1024 * 1024), pool.take(4 * 1024 * 1024)].map((b) => b.buffer);
    assert.deepEqual(reused.map((b) => held.some((h) => h.buffer === b)), [true, true, false]);
  });

  it('unpacks a payload of stored blocks as zlib inflates it, and leaves every other stream to zlib', async () => {
    for (const size of [0, 1, 65_535, 65_536, 300_000]) {
      const raw = randomBytes(size);
      const stored = deflateRawSync(raw, { level: 0 });
      assert.ok(unpackStoredBlocks(stored, size)?.equals(inflateRawSync(stored)), `${size} bytes`);
      assert.equal(unpackStoredBlocks(stored, size + 1), undefined, 'another length than the header says');
      assert.equal(unpackStoredBlocks(stored.subarray(0, stored.length - 1), size), undefined, 'cut short');
    }
    const compressed = deflateRawSync(Buffer.alloc(100_000, 7), { level: 1 });
    assert.equal(unpackStoredBlocks(compressed, 100_000), undefined);
    assert.ok((await inflatePayload(compressed, 100_000, (reason) => new Error(reason))).equals(Buffer.alloc(100_000, 7)));
    // LEN and NLEN that disagree: zlib, not the copy, decides, and says what is wrong.
    const damaged = Buffer.from(deflateRawSync(randomBytes(1000), { level: 0 }));
    damaged.writeUInt16LE(0, 3);
    assert.equal(unpackStoredBlocks(damaged, 1000), undefined);
    await assert.rejects(inflatePayload(damaged, 1000, (reason) => new Error(reason)), /cannot decompress/);
  });

  it('names the object for every kind of damage', async () => {
    const encoded = encodeSegment(sampleSegment());
    const damaged: Array<[string, Buffer]> = [
      ['truncated', encoded.subarray(0, encoded.length - 1)],
      ['truncated', encoded.subarray(0, 10)],
      ['bad magic', Buffer.concat([Buffer.from('ZZZZ'), encoded.subarray(4)])],
      ['checksum mismatch', damagedAt(encoded, 100, 1)],
      ['checksum mismatch', damagedAt(encoded, 12, 9)],
    ];
    for (const [reason, object] of damaged) {
      assert.throws(
        () => decodeSegment('dr/domains/demo/log/0000000001/0000000000000041', object),
        (error: unknown) => error instanceof CorruptSegmentError && error.message.includes('dr/domains/demo/log/0000000001/0000000000000041') && error.message.includes(reason),
      );
      await assert.rejects(decodeSegmentAsync('k', object), (error: unknown) => error instanceof CorruptSegmentError && error.message.includes(reason));
    }
  });

  it('refuses a future format version', () => {
    const encoded = Buffer.from(encodeSegment(sampleSegment()));
    encoded.writeUInt16BE(2, 4);
    assert.throws(() => decodeSegment('k', encoded), /unsupported format version 2/);
  });

  it('orders keys numerically by lexical listing', () => {
    const keys = new DomainKeys('dr/', 'demo');
    const sorted = [9, 10, 100, 2].map((n) => keys.segment(1, n)).sort();
    assert.deepEqual(sorted.map(trailingNumber), [2, 9, 10, 100]);
    assert.equal(keys.ownership(12), 'dr/domains/demo/ownership/0000000012');
    assert.throws(() => new DomainKeys('dr/', '../x'), /invalid domain/);
  });

  it('round-trips a base chunk and names the key for every kind of damage', async () => {
    const data = Buffer.concat([randomBytes(4096), Buffer.alloc(1024 * 1024 - 4096)]);
    const key = new DomainKeys('dr/', 'demo').baseChunk(new DomainKeys('dr/', 'demo').baseId(2, 77), 'db-1-disk-0', 3 * 1024 * 1024);
    assert.equal(key, 'dr/domains/demo/base/0000000002-0000000000000077/chunks/db-1-disk-0/0000000003145728');
    assert.deepEqual(parseBaseId('0000000002-0000000000000077'), { epoch: 2, cursor: 77 });
    const encoded = await encodeBaseChunk(3 * 1024 * 1024, data);
    assert.ok(encoded.length < 10_000, 'zeros compress');
    assert.ok(decodeBaseChunk(key, 3 * 1024 * 1024, encoded).equals(data));
    assert.ok((await decodeBaseChunkAsync(key, 3 * 1024 * 1024, encoded)).equals(data));
    const incompressible = randomBytes(1024 * 1024);
    assert.ok((await decodeBaseChunkAsync(key, 3 * 1024 * 1024, await encodeBaseChunk(3 * 1024 * 1024, incompressible))).equals(incompressible), 'stored blocks');
    const damaged: Array<[string, Buffer, number]> = [
      ['truncated', encoded.subarray(0, encoded.length - 1), 3 * 1024 * 1024],
      ['bad magic', Buffer.concat([Buffer.from('ZZZZ'), encoded.subarray(4)]), 3 * 1024 * 1024],
      ['checksum mismatch', damagedAt(encoded, 60, 7), 3 * 1024 * 1024],
      ['checksum mismatch', damagedAt(encoded, 9, 1), 3 * 1024 * 1024],
      ['does not match its key', encoded, 0],
    ];
    for (const [reason, object, offset] of damaged) {
      assert.throws(
        () => decodeBaseChunk(key, offset, object),
        (error: unknown) => error instanceof CorruptBaseChunkError && error instanceof CorruptSegmentError && error.message.includes(key) && error.message.includes(reason),
        reason,
      );
      await assert.rejects(decodeBaseChunkAsync(key, offset, object), (error: unknown) => error instanceof CorruptBaseChunkError && error.message.includes(reason), reason);
    }
  });

  it('keeps the last write per byte, completes blocks written in part from the target, and yields runs of whole blocks', () => {
    const pending = new PendingWrites('d', 3 * 4096 + 100);
    pending.apply(4000, Buffer.alloc(200, 1));
    pending.apply(4096, Buffer.alloc(10, 2));
    pending.apply(3 * 4096, Buffer.alloc(100, 3));
    assert.deepEqual(pending.partialBlocks(), [{ offset: 0, length: 4096 }, { offset: 4096, length: 4096 }]);
    pending.fill(0, Buffer.alloc(4096, 9));
    pending.fill(4096, Buffer.alloc(4096, 8));
    const runs = pending.take(1024 * 1024);
    assert.deepEqual(runs.map((r) => [r.offset, r.data.length]), [[0, 8192], [12288, 100]]);
    assert.deepEqual([runs[0].data[3999], runs[0].data[4000], runs[0].data[4095], runs[0].data[4096], runs[0].data[4106], runs[0].data[4199], runs[0].data[4200]], [9, 1, 1, 2, 1, 1, 8]);
    assert.deepEqual(pending.take(1024 * 1024), []);
    assert.throws(() => pending.apply(3 * 4096 + 50, Buffer.alloc(51)), /outside disk/);
  });

  it('yields a large write applied in order as one run, overwritten where a later write landed', () => {
    const pending = new PendingWrites('d', 64 * 4096);
    const data = randomBytes(40 * 4096);
    pending.apply(8 * 4096, data);
    pending.apply(20 * 4096, Buffer.alloc(4096, 1));
    const [run, ...rest] = pending.take(1024 * 1024);
    assert.deepEqual(rest, []);
    assert.equal(run.offset, 8 * 4096);
    assert.ok(run.data.equals(Buffer.concat([data.subarray(0, 12 * 4096), Buffer.alloc(4096, 1), data.subarray(13 * 4096)])));
  });

  it('keeps whole blocks as views of the write and copies one before a later write changes part of it', () => {
    const pending = new PendingWrites('d', 8 * 4096);
    const data = randomBytes(3 * 4096);
    const original = Buffer.from(data);
    pending.apply(4096, data);
    pending.apply(2 * 4096 + 10, Buffer.alloc(20, 7));
    pending.apply(3 * 4096, Buffer.alloc(4096, 9));
    const [run, ...rest] = pending.take(1024 * 1024);
    assert.deepEqual(rest, []);
    assert.ok(data.equals(original), 'the bytes given to apply are not changed');
    const expected = Buffer.concat([original.subarray(0, 4096 + 10), Buffer.alloc(20, 7), original.subarray(4096 + 30, 2 * 4096), Buffer.alloc(4096, 9)]);
    assert.equal(run.offset, 4096);
    assert.ok(run.data.equals(expected));
  });

  it('refuses to flush a block written in part before it is completed', () => {
    const pending = new PendingWrites('d', 8192);
    pending.apply(100, Buffer.alloc(10, 1));
    assert.throws(() => pending.take(1024 * 1024), /written in part/);
  });

  it('checks what is read back against a digest per written block, and reads back only those', () => {
    const digests = new BlockDigests('d', 4 * 1024 * 1024);
    digests.record({ offset: 4096, data: Buffer.alloc(8192, 5) });
    digests.record({ offset: 1024 * 1024 + 3 * 4096, data: Buffer.alloc(4096, 6) });
    assert.deepEqual(digests.spans(), [{ offset: 4096, length: 8192 }, { offset: 1024 * 1024 + 3 * 4096, length: 4096 }]);
    assert.equal(digests.verify(4096, Buffer.alloc(8192, 5), 't'), 8192);
    const damaged = Buffer.alloc(8192, 5);
    damaged[5000] = 0;
    assert.throws(() => digests.verify(4096, damaged, 't'), /disk t differs from the log in \[8192, 12288\)/);
    assert.ok(digests.holds(0, Buffer.alloc(4096, 1)), 'a block nothing was recorded for is not checked');
    assert.ok(!digests.holds(1, Buffer.alloc(4096, 1)));
    assert.throws(() => digests.record({ offset: 4 * 1024 * 1024, data: Buffer.alloc(4096) }), /outside disk/);
  });
});
