/**
 * Several processes, one truth: two API processes (api/server.ts) on one store, as behind a load
 * balancer (a token issued through one works on the other, a revocation through one is refused by
 * the other at its next request, each lists the audit records of both), and a worker process's
 * liveness probe as an orchestrator would use it. One stack for both: it is most of the time.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generateToken, hashToken } from '../../api/auth';
import { COMPILED_PROGRAMS_VARIABLE } from '../../common/programs';
import type { AuditRecord } from '../../api/audit';
import type { ListedToken } from '../../api/tokens';
import { freePort } from '../../stack/ports';
import { startApiProcess, type ApiProcess } from '../harness/api-processes';
import { runCli } from '../harness/cli';
import { eventually } from '../harness/eventually';
import { useFixture, useTestStack } from '../harness/stack';
import { TestWorkers } from '../harness/workers';

interface Call {
  token?: string;
  method?: string;
  body?: unknown;
  requestId?: string;
}

async function call(api: ApiProcess, route: string, { token, method = 'GET', body, requestId }: Call = {}) {
  const response = await fetch(`${api.url}${route}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(requestId ? { 'x-request-id': requestId } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, requestId: response.headers.get('x-request-id'), text, json: () => JSON.parse(text) as Record<string, unknown> };
}

describe('several processes on one store: API tokens and the audit trail shared by two API processes, a worker\'s liveness probe', () => {
  const admin = { name: 'bootstrap-admin', role: 'admin' as const, token: generateToken() };
  const storage = useTestStack();
  const apis = useFixture(
    'two API processes',
    async () => {
      const file = path.join(storage.stack.dir, 'api-tokens.json');
      writeFileSync(file, JSON.stringify({ tokens: [{ name: admin.name, role: admin.role, sha256: hashToken(admin.token) }] }), { mode: 0o600 });
      // Both seed the same file at once: the name's create-if-absent decides, both admit it.
      const [a, b] = await Promise.all([startApiProcess(storage.stack, 'api-a', { DR_API_TOKENS_FILE: file }), startApiProcess(storage.stack, 'api-b', { DR_API_TOKENS_FILE: file })]);
      return { a, b };
    },
    async ({ a, b }) => {
      await Promise.all([a.child.stop(), b.child.stop()]);
    },
  );
  let operatorToken = '';
  const dr = (api: ApiProcess, token: string, ...args: string[]) => runCli({ url: api.url, token }, ...args);

  it('a token issued through one process works on the other at once, is shown once, and the store keeps only its hash', async () => {
    const issued = await call(apis.a, '/tokens', { token: admin.token, method: 'POST', body: { name: 'ci-bot', role: 'operator' }, requestId: 'issue-ci-bot' });
    assert.equal(issued.status, 201, issued.text);
    assert.equal(issued.requestId, 'issue-ci-bot');
    const shown = issued.json();
    operatorToken = String(shown.token);
    assert.match(operatorToken, /^dr_[\w-]{32}$/);
    assert.deepEqual({ name: shown.name, role: shown.role, createdBy: shown.createdBy }, { name: 'ci-bot', role: 'operator', createdBy: admin.name });
    assert.equal(shown.sha256, undefined);

    assert.equal((await call(apis.b, '/runbooks', { token: operatorToken })).status, 200, 'the other process knows the token');
    const again = await call(apis.b, '/tokens', { token: admin.token, method: 'POST', body: { name: 'ci-bot', role: 'viewer' } });
    assert.equal(again.status, 409, again.text);
    const badRole = await call(apis.b, '/tokens', { token: admin.token, method: 'POST', body: { name: 'x', role: 'root' } });
    assert.equal(badRole.status, 400);
    assert.equal((badRole.json().errors as Array<{ path: string }>)[0].path, 'role');
    assert.equal((await call(apis.b, '/tokens', { token: operatorToken, method: 'POST', body: { name: 'mine', role: 'admin' }, requestId: 'refused-by-role' })).status, 403);

    const { keys } = await storage.store.list('');
    assert.ok(keys.includes(`control/token-hashes/${hashToken(operatorToken)}.json`), keys.join('\n'));
    for (const key of keys) {
      const body = (await storage.store.get(key))!.toString('utf8');
      assert.ok(!body.includes(operatorToken) && !body.includes(admin.token), `${key} holds a token in clear`);
    }

    const listed = await eventually('the operator token’s last use is recorded', async () => {
      const answer = await call(apis.a, '/tokens', { token: admin.token });
      assert.equal(answer.status, 200, answer.text);
      assert.doesNotMatch(answer.text, /[0-9a-f]{64}/, 'no hash is shown');
      const tokens = answer.json().tokens as ListedToken[];
      return tokens.find((t) => t.name === 'ci-bot')?.lastUsedAt ? tokens : undefined;
    });
    assert.deepEqual(
      listed.map((t) => [t.name, t.role, t.createdBy]),
      [
        [admin.name, 'admin', 'DR_API_TOKENS_FILE'],
        ['ci-bot', 'operator', admin.name],
      ],
    );
    assert.equal((await call(apis.a, '/tokens', { token: operatorToken })).status, 403, 'only admins list tokens');
  });

  it('a token revoked through one process is refused by the other at its next request; the name can be issued anew', async () => {
    assert.equal((await call(apis.a, '/runbooks', { token: operatorToken })).status, 200);
    const revoked = await call(apis.b, '/tokens/ci-bot', { token: admin.token, method: 'DELETE', requestId: 'revoke-ci-bot' });
    assert.equal(revoked.status, 200, revoked.text);
    const refused = await call(apis.a, '/runbooks', { token: operatorToken });
    assert.equal(refused.status, 401, 'refused at once by the process that did not revoke it');
    assert.equal((await call(apis.b, '/runbooks', { token: operatorToken })).status, 401);
    assert.equal((await call(apis.a, '/tokens/ci-bot', { token: admin.token, method: 'DELETE' })).status, 404);

    const reissued = await call(apis.a, '/tokens', { token: admin.token, method: 'POST', body: { name: 'ci-bot', role: 'viewer' } });
    assert.equal(reissued.status, 201, reissued.text);
    assert.equal((await call(apis.b, '/runbooks', { token: String(reissued.json().token) })).status, 200);
    assert.equal((await call(apis.b, '/runbooks', { token: operatorToken })).status, 401, 'the old token stays refused');
    const listed = (await call(apis.b, '/tokens', { token: admin.token })).json().tokens as ListedToken[];
    assert.equal(listed.find((t) => t.name === 'ci-bot')?.role, 'viewer');
  });

  it('each process lists the audit records of both: who, what, target, request id, outcome; refusals too', async () => {
    const failover = await call(apis.b, '/domains/alpha/failover', { token: admin.token, method: 'POST', body: { type: 'sideways' }, requestId: 'failover-alpha' });
    assert.equal(failover.status, 400, failover.text);
    const generated = await call(apis.a, '/tokens/nobody', { token: admin.token, method: 'DELETE' });
    assert.match(generated.requestId ?? '', /^[0-9a-f-]{36}$/, 'a request id is made when the client sends none');

    const wanted = ['issue-ci-bot', 'refused-by-role', 'revoke-ci-bot', 'failover-alpha', generated.requestId];
    for (const api of [apis.a, apis.b]) {
      const entries = await eventually('every record is listed', async () => {
        const answer = await call(api, '/audit', { token: admin.token });
        assert.equal(answer.status, 200, answer.text);
        const listed = answer.json().entries as AuditRecord[];
        return wanted.every((id) => listed.some((e) => e.requestId === id)) ? listed : undefined;
      });
      assert.ok(
        entries.every((e) => e.method !== 'GET'),
        'reads are not recorded',
      );
      const byId = (id: string) => entries.find((e) => e.requestId === id)!;
      assert.deepEqual(
        { ...byId('issue-ci-bot'), time: undefined },
        { time: undefined, requestId: 'issue-ci-bot', who: { name: admin.name, role: 'admin' }, method: 'POST', route: '/tokens', path: '/tokens', target: { token: 'ci-bot' }, status: 201 },
      );
      assert.deepEqual([byId('refused-by-role').who.name, byId('refused-by-role').status], ['ci-bot', 403]);
      assert.deepEqual([byId('revoke-ci-bot').route, byId('revoke-ci-bot').target, byId('revoke-ci-bot').status], ['/tokens/:name', { token: 'ci-bot' }, 200]);
      assert.deepEqual([byId('failover-alpha').target, byId('failover-alpha').status], [{ domain: 'alpha' }, 400]);
      assert.equal(byId(generated.requestId!).status, 404);
      const times = entries.map((e) => e.time);
      assert.deepEqual(times, [...times].sort(), 'oldest first');
    }

    const alpha = (await call(apis.a, '/audit?domain=alpha', { token: admin.token })).json();
    assert.deepEqual((alpha.entries as AuditRecord[]).map((e) => e.requestId), ['failover-alpha']);
    const first = (await call(apis.b, '/audit?limit=1', { token: admin.token })).json();
    assert.equal((first.entries as AuditRecord[]).length, 1);
    assert.equal(first.more, true);
    const future = (await call(apis.b, `/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { token: admin.token })).json();
    assert.deepEqual(future.entries, []);
  });

  it('refuses a malformed audit query naming the parameter, non-admins, and a malformed X-Request-Id', async () => {
    for (const [query, parameter] of [
      ['limit=0', 'limit'],
      ['limit=many', 'limit'],
      ['since=yesterday', 'since'],
      ['domain=Not_A_Domain', 'domain'],
      ['colour=red', 'colour'],
    ]) {
      const answer = await call(apis.a, `/audit?${query}`, { token: admin.token });
      assert.equal(answer.status, 400, `${query}: ${answer.text}`);
      assert.equal((answer.json().errors as Array<{ path: string }>)[0].path, parameter, answer.text);
      assert.match(String(answer.json().detail), new RegExp(`"${parameter}"`));
    }
    const reader = (await call(apis.a, '/tokens', { token: admin.token, method: 'POST', body: { name: 'reader', role: 'operator' } })).json();
    assert.equal((await call(apis.b, '/audit', { token: String(reader.token) })).status, 403);
    const malformed = await call(apis.b, '/runbooks', { token: admin.token, requestId: 'no spaces/or slashes' });
    assert.equal(malformed.status, 400);
    assert.equal((malformed.json().errors as Array<{ path: string }>)[0].path, 'X-Request-Id');
  });

  it('the command line issues, lists and revokes tokens and reads the trail', async () => {
    const created = await dr(apis.a, admin.token, 'tokens', 'create', 'nightly-drill', '--role', 'operator');
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.split('\n')[0];
    assert.equal((await call(apis.b, '/runbooks', { token })).status, 200, created.stdout);

    // Each command is a process of its own: those that do not depend on each other run together.
    const [listed, trail] = await Promise.all([dr(apis.b, admin.token, 'tokens', 'list'), dr(apis.a, admin.token, 'audit', '--domain', 'alpha')]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^NAME\s+ROLE\s+CREATED\s+BY\s+LAST USED$/m);
    assert.match(listed.stdout, new RegExp(`^nightly-drill\\s+operator\\s+\\S+\\s+${admin.name}\\s`, 'm'));
    assert.equal(trail.code, 0, trail.stderr);
    const [header, ...lines] = trail.stdout.trimEnd().split('\n');
    assert.match(header, /^TIME\s+WHO\s+ROLE\s+CALL\s+TARGET\s+STATUS\s+REQUEST ID$/);
    assert.equal(lines.length, 1, trail.stdout);
    assert.match(lines[0], new RegExp(`^\\S+Z\\s+${admin.name}\\s+admin\\s+POST /domains/:domain/failover\\s+domain:alpha\\s+400\\s+failover-alpha$`));

    const [revoked, unknown] = await Promise.all([dr(apis.b, admin.token, 'tokens', 'revoke', 'nightly-drill'), dr(apis.a, admin.token, 'tokens', 'revoke', 'nobody')]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await call(apis.a, '/runbooks', { token })).status, 401);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404 Not found: no token named "nobody"/);
  });

  it('a worker process answers its liveness probe 200 while it polls; after SIGTERM, 503 or no answer, then it is gone', async () => {
    const port = await freePort();
    const workers = new TestWorkers(storage.stack, 'no site');
    // From its TypeScript source, as docs/deployment.md runs it: every other test runs the compiled programs.
    const worker = await workers.orchestration({ DR_WORKER_HEALTH_PORT: String(port), [COMPILED_PROGRAMS_VARIABLE]: '' });
    try {
      assert.match(readFileSync(`/proc/${worker.pid}/cmdline`, 'utf8'), /worker\/main\.ts/);
      const running = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(running.status, 200);
      assert.deepEqual(await running.json(), { status: 'ok', state: 'RUNNING' });

      const stopped = worker.stop(30_000);
      const answers: Array<number | 'refused'> = [];
      while (!worker.hasExited()) {
        answers.push(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 'refused' as const));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await stopped;
      assert.equal(await worker.exited, 0, 'a clean stop');
      // A probe sent before the signal reached the worker may still see it running; after that, never again.
      const firstNotRunning = answers.findIndex((a) => a !== 200);
      assert.ok(firstNotRunning >= 0, `the probe never stopped answering 200: ${answers.join(' ')}`);
      assert.ok(answers.slice(firstNotRunning).every((a) => a !== 200), answers.join(' '));
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'nothing listens once the worker is gone');
    } finally {
      await workers.stopAll();
    }
  });
});
