import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import express from 'express';
import { createApp } from '../../api/app';
import { generateToken, hashToken, type TokenLookup } from '../../api/auth';
import { createLogger } from '../../common/logger';
import { useHttpServer } from '../harness/testbed';

describe('authentication through a token lookup (the object store in the API process)', () => {
  const token = generateToken();
  let storeAnswers = true;
  const lookup: TokenLookup = (sha256) => {
    if (!storeAnswers) return Promise.reject(new Error('connect ECONNREFUSED 10.0.0.9:443'));
    return Promise.resolve(sha256 === hashToken(token) ? { name: 'ci-bot', role: 'viewer' } : undefined);
  };
  const router = express.Router();
  router.get('/whoami', (req, res) => void res.json({ name: req.principal?.name }));
  const log = createLogger('auth-test', new Writable({ write: (_c, _e, done) => done() }));
  const api = useHttpServer(createApp({ log, tokens: lookup, healthChecks: [], routers: [router] }));

  const whoami = (headers: Record<string, string> = {}) => fetch(`${api.url}/whoami`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  it('admits the token the lookup knows, and echoes a request id (the client’s, or a new one)', async () => {
    storeAnswers = true;
    const given = await whoami({ 'x-request-id': 'trace-42' });
    assert.equal(given.status, 200);
    assert.deepEqual(await given.json(), { name: 'ci-bot' });
    assert.equal(given.headers.get('x-request-id'), 'trace-42');
    assert.match((await whoami()).headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('refuses with 503 and Retry-After, never lets a request through, when the lookup cannot answer', async () => {
    storeAnswers = false;
    const refused = await whoami();
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    const problem = (await refused.json()) as { detail: string };
    assert.match(problem.detail, /cannot be checked now/);
    assert.doesNotMatch(problem.detail, /10\.0\.0\.9/, 'no internals');
  });
});
