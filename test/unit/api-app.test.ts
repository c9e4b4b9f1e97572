import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { Writable } from 'node:stream';
import { createApp } from '../../api/app';
import { generateToken, hashToken, requireRole } from '../../api/auth';
import { badRequest } from '../../api/problem';
import { createLogger } from '../../common/logger';

describe('API conventions: authentication, roles, problem+json', () => {
  const tokens = { viewer: generateToken(), operator: generateToken() };
  const logged: string[] = [];
  const log = createLogger('api-test', new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString()), done()) }));
  let server: Server;
  let url: string;
  let healthy = true;

  before(async () => {
    const router = express.Router();
    router.get('/things', (_req, res) => void res.json({ things: [] }));
    router.post('/things', requireRole('operator'), express.json({ limit: '1kb' }), (req, res) => {
      if (typeof (req.body as { name?: unknown }).name !== 'string') throw badRequest('body.name must be a string', { pointer: '/name' });
      res.status(201).json({ by: req.principal?.name });
    });
    router.get('/boom', () => {
      throw new Error('internal detail with secret=hunter2');
    });
    const app = createApp({
      log,
      tokens: {
        tokens: [
          { name: 'alice', role: 'viewer', sha256: hashToken(tokens.viewer) },
          { name: 'bob', role: 'operator', sha256: hashToken(tokens.operator) },
        ],
      },
      healthChecks: [
        {
          name: 'temporal',
          target: '127.0.0.1:1',
          check: () => (healthy ? Promise.resolve() : Promise.reject(new Error('connection refused'))),
        },
      ],
      routers: [router],
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${url}${path}`, { ...init, headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.headers as object) } });

  it('serves /healthz without a token and reports each dependency', async () => {
    healthy = true;
    const ok = await call('/healthz');
    assert.equal(ok.status, 200);
    healthy = false;
    const down = await call('/healthz');
    assert.equal(down.status, 503);
    const body = (await down.json()) as { checks: { temporal: { reachable: boolean; error: string; target: string } } };
    assert.equal(body.checks.temporal.reachable, false);
    assert.equal(body.checks.temporal.target, '127.0.0.1:1');
    assert.match(body.checks.temporal.error, /connection refused/);
  });

  it('answers 401 problem+json without a token or with an unknown one', async () => {
    for (const token of [undefined, 'dr_not-a-real-token']) {
      const res = await call('/things', token ? { token } : {});
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      const problem = (await res.json()) as { status: number; title: string };
      assert.equal(problem.status, 401);
    }
  });

  it('lets viewers read but not mutate; operators mutate and are recorded by name', async () => {
    assert.equal((await call('/things', { token: tokens.viewer })).status, 200);
    const forbidden = await call('/things', { method: 'POST', token: tokens.viewer, headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
    assert.equal(forbidden.status, 403);
    assert.match(((await forbidden.json()) as { detail: string }).detail, /needs the operator role; "alice" is a viewer/);
    const created = await call('/things', { method: 'POST', token: tokens.operator, headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
    assert.equal(created.status, 201);
    assert.deepEqual(await created.json(), { by: 'bob' });
  });

  it('turns malformed and oversized bodies into 4xx problems, never 500', async () => {
    const post = (body: string) => call('/things', { method: 'POST', token: tokens.operator, headers: { 'content-type': 'application/json' }, body });
    const malformed = await post('{"name": ');
    assert.equal(malformed.status, 400);
    const oversized = await post(JSON.stringify({ name: 'x'.repeat(5000) }));
    assert.equal(oversized.status, 413);
    assert.match(((await oversized.json()) as { detail: string }).detail, /exceeds the limit of 1024 bytes/);
    const invalid = await post('{"name": 5}');
    assert.equal(invalid.status, 400);
    assert.deepEqual(((await invalid.json()) as { pointer: string }).pointer, '/name');
  });

  it('hides internals of unexpected errors and keeps tokens out of the log', async () => {
    const res = await call('/boom', { token: tokens.viewer });
    assert.equal(res.status, 500);
    assert.doesNotMatch(await res.text(), /hunter2/);
    assert.equal((await call('/nowhere', { token: tokens.viewer })).status, 404);
    log.info({ headers: { authorization: `Bearer ${tokens.operator}` }, token: tokens.operator }, 'request');
    log.flush();
    assert.ok(logged.length > 0);
    for (const line of logged) assert.ok(!line.includes(tokens.operator), `token leaked: ${line}`);
  });
});
