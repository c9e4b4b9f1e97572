import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { deflateSync, inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createApp } from '../../api/app';
import { COMPRESS_FROM_BYTES, COMPRESSED_ENCODING, InflatesTooLarge, MAX_INFLATED_BYTES, PayloadCompression } from '../../common/payload-compression';
import { createLogger } from '../../common/logger';

const codec = new PayloadCompression();
const encodingOf = (p: Payload) => Buffer.from(p.metadata?.encoding ?? []).toString();
/** A batch of VMs' specs as an operation's history holds it: the same keys and most values again for every VM. */
const vmSpecs = (count: number) =>
  defaultPayloadConverter.toPayload({
    vms: Array.from({ length: count }, (_, i) => ({ spec: { name: `vm-${i}`, cpus: 2, memoryMiB: 4096, placement: { cluster: 'cluster-b1', datastore: 'ds-b-ssd' }, nics: [{ network: 'dr-app', ip: `10.64.${i >> 8}.${i & 255}` }] } })),
  });
const compressed = (whole: Buffer) => ({ metadata: { encoding: Buffer.from(COMPRESSED_ENCODING) }, data: deflateSync(whole) });

describe('payload compression (common/payload-compression.ts)', () => {
  it('stores a large payload compressed, in the Go SDK ZlibCodec format, and gives it back as it was', async () => {
    const payload = vmSpecs(300);
    const [stored] = await codec.encode([payload]);
    assert.equal(encodingOf(stored), COMPRESSED_ENCODING);
    assert.ok(stored.data!.length * 10 < payload.data!.length, `${payload.data!.length} bytes stored as ${stored.data!.length}`);
    // The Go SDK's ZlibCodec: zlib over the whole payload in protobuf, its metadata inside.
    const whole = temporal.api.common.v1.Payload.decode(inflateSync(stored.data!));
    assert.equal(Buffer.from(whole.metadata.encoding).toString(), 'json/plain');
    const [back] = await codec.decode([stored]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(back), defaultPayloadConverter.fromPayload(payload));
  });

  it('leaves small payloads, payloads that do not compress and payloads of other encodings as they are', async () => {
    const small = vmSpecs(1);
    assert.ok(small.data!.length < COMPRESS_FROM_BYTES);
    const random = { metadata: { encoding: Buffer.from('binary/plain') }, data: randomBytes(COMPRESS_FROM_BYTES * 2) };
    const encrypted = { metadata: { encoding: Buffer.from('binary/encrypted') }, data: Buffer.from('sealed') };
    assert.deepEqual(await codec.encode([small, random]), [small, random]);
    assert.deepEqual(await codec.decode([small, random, encrypted]), [small, random, encrypted], 'histories from before compression replay as they are');
    const [once] = await codec.encode([vmSpecs(300)]);
    assert.deepEqual(await codec.encode([once]), [once], 'a compressed payload is not compressed again');
  });

  it('refuses a payload that inflates beyond its limit or does not inflate, naming why', async () => {
    const bomb = compressed(Buffer.alloc(4 * 1024 * 1024));
    assert.ok(bomb.data.length < 8 * 1024);
    await assert.rejects(new PayloadCompression(undefined, 1024 * 1024).decode([bomb]), (error: unknown) => error instanceof InflatesTooLarge && /more than 1048576 bytes/.test(error.message));
    await assert.rejects(codec.decode([{ metadata: { encoding: Buffer.from(COMPRESSED_ENCODING) }, data: Buffer.from('not zlib') }]), /does not inflate/);
    await assert.rejects(codec.decode([{ metadata: { encoding: Buffer.from(COMPRESSED_ENCODING) } }]), /without data/);
  });
});

describe('the API\'s remote codec for the Temporal Web UI (POST /codec/decode, /codec/encode)', () => {
  let server: Server;
  let url: string;
  const log = createLogger('api-test', new Writable({ write: (_chunk, _enc, done) => done() }));
  const asJson = (p: Payload) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(p.data ?? []).toString('base64') });
  const post = (path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

  before(async () => {
    const app = createApp({ log, tokens: { tokens: [] }, healthChecks: [], routers: [] });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  it('decodes what workers stored and encodes as they do, without a token, answering the browser\'s CORS preflight', async () => {
    const plain = vmSpecs(300);
    const [stored] = await codec.encode([plain]);
    const small = vmSpecs(1);
    const decoded = await post('/codec/decode', { payloads: [asJson(stored), asJson(small)] });
    assert.equal(decoded.status, 200);
    assert.equal(decoded.headers.get('access-control-allow-origin'), '*');
    const { payloads } = (await decoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    assert.deepEqual(payloads, [asJson(plain), asJson(small)]);

    const encoded = (await (await post('/codec/encode', { payloads: [asJson(plain)] })).json()) as { payloads: Array<{ metadata: Record<string, string> }> };
    assert.equal(Buffer.from(encoded.payloads[0].metadata.encoding, 'base64').toString(), COMPRESSED_ENCODING);

    const preflight = await fetch(`${url}/codec/decode`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /x-namespace/);
  });

  it('answers bad input with a 4xx naming it: not base64, not zlib, a zip bomb, not JSON', async () => {
    const notBase64 = await post('/codec/decode', { payloads: [{ metadata: { encoding: 'not base64!' } }] });
    assert.equal(notBase64.status, 400);
    assert.match(JSON.stringify(await notBase64.json()), /payloads\.0\.metadata\.encoding/);

    const notZlib = await post('/codec/decode', { payloads: [asJson({ metadata: { encoding: Buffer.from(COMPRESSED_ENCODING) }, data: Buffer.from('not zlib') })] });
    assert.equal(notZlib.status, 400);
    assert.match(((await notZlib.json()) as { detail: string }).detail, /payload 0 cannot be decoded/);

    // 16 payloads that inflate to 8 MiB each: over what one request may inflate to.
    const bomb = asJson(compressed(Buffer.from(temporal.api.common.v1.Payload.encode({ data: Buffer.alloc(8 * 1024 * 1024) }).finish())));
    const bombs = await post('/codec/decode', { payloads: Array.from({ length: MAX_INFLATED_BYTES / (8 * 1024 * 1024) + 1 }, () => bomb) });
    assert.equal(bombs.status, 413);

    const text = await post('/codec/decode', 'payloads', { 'content-type': 'text/plain' });
    assert.equal(text.status, 415);
    const malformed = await post('/codec/decode', '{"payloads": [', { 'content-type': 'application/json' });
    assert.equal(malformed.status, 400);
  });
});
