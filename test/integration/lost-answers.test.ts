/**
 * Creates whose answer was lost after the store acted (the flaky store of issue 17): the S3 SDK
 * retries the put, and the retry of a create-if-absent is refused because the first one made the
 * object. What the caller created must still count as its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { TokenStore } from '../../api/tokens';
import { hashToken } from '../../api/auth';
import { createLogger } from '../../common/logger';
import { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { rehydrate } from '../../datapath/rehydrate';
import { SegmentWriter } from '../../datapath/segment-writer';
import { useTestStack } from '../harness/stack';
import { MemorySite } from '../unit/datapath-memory-site';

/** Each create under `under` is made, then answered as the retry after a lost answer is: "already exists". */
class LostAnswers extends ObjectStore {
  constructor(
    base: ObjectStore,
    private readonly under: string,
  ) {
    super(base.s3, base.settings);
  }

  override async createIfAbsent(key: string, body: Buffer | string, contentType?: string): Promise<boolean> {
    if (!key.includes(this.under)) return super.createIfAbsent(key, body, contentType);
    await super.createIfAbsent(key, body, contentType);
    return super.createIfAbsent(key, body, contentType);
  }
}

describe('creates whose answer was lost after the store made the object', () => {
  const { store } = useTestStack();

  it('a claim of ownership wins, seals its handover, and another claimer of the epoch still loses', async () => {
    const ownership = new Ownership(new LostAnswers(store, '/ownership/'), 'lost-answers');
    const initial = await ownership.claim('primary');
    assert.deepEqual([initial.won, initial.epoch, initial.owner.site], [true, 1, 'primary']);
    // A log end no segment is at: only the winner's seal records it (a reader's late seal finds no segment).
    const handover = await ownership.release(1, 'recovery', 42);
    assert.deepEqual([handover.won, handover.epoch, handover.owner.kind], [true, 2, 'handover']);
    assert.equal((await ownership.handoff(2)).lastSegment, 42, 'the winner sealed the handover where it said the log ends');
    const late = await new Ownership(store, 'lost-answers').claim('primary', { fromEpoch: 1 });
    assert.deepEqual([late.won, late.epoch, late.owner.site], [false, 2, 'recovery']);
  });

  it('a large segment is in the log once, its upload kept, when its reference was created but answered as taken', async () => {
    const ownership = new Ownership(store, 'lost-segment-answer');
    await ownership.claim('primary');
    const writer = new SegmentWriter(new LostAnswers(store, '/log/'), ownership, 1, 'primary', { inlineMaxBytes: 16 });
    const data = randomBytes(4096);
    const written = await writer.put(0, [{ sequence: 1, timestamp: 1, vm: 'db-1', diskId: 'db-1-disk-0', offset: 0, data }], 1);
    assert.equal(written.created, true, 'the 412 answered its own reference');
    const target = new MemorySite();
    await rehydrate({ store, ownership, target, disks: [{ vm: 'db-1', diskId: 'db-1-disk-0', sizeBytes: 4096 }], datastore: 'ds', upTo: { kind: 'latest' } });
    assert.ok(target.disks.get('db-1-disk-0')!.equals(data), 'the bytes it refers to were not removed as a loser\'s');
  });

  it('an API token is issued and admitted, and a second token of the same name is still refused', async () => {
    const tokens = new TokenStore(new LostAnswers(store, '/tokens/'), createLogger('test', new Writable({ write: (_chunk, _encoding, done) => done() })));
    const issued = await tokens.issue('ci-bot', 'operator', 'admin');
    assert.ok(issued, 'the name was free: the token is issued, not refused as taken');
    assert.deepEqual(await tokens.lookup(hashToken(issued.token)), { name: 'ci-bot', role: 'operator' });
    assert.equal(await tokens.issue('ci-bot', 'viewer', 'admin'), undefined);
  });
});
