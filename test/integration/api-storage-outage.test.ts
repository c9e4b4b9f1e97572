import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { API_S3_PATIENCE, createS3Client } from '../../common/s3';
import { ObjectStore } from '../../datapath/object-store';
import { RunbookStore } from '../../runbooks/store';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml } from '../fixtures/failover-domains';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

const DOMAIN = 'delta';

describe('the API while the object store stalls: a 503 naming S3 within seconds, never a hang or a 500, and nothing stored lost', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration', 'primary'] });
  const api = useTestApi({
    principals: [operator],
    // As api/server.ts makes them: the API's own patience with the store.
    routers: (log) => {
      const s3 = createS3Client(stack.s3Settings, API_S3_PATIENCE);
      const apiRunbooks = new RunbookStore(s3, stack.s3Settings);
      return [runbooksRouter({ store: apiRunbooks, log }), operationsRouter({ client: stack.client, runbooks: apiRunbooks, store: new ObjectStore(s3, stack.s3Settings), log })];
    },
  });
  before(async () => {
    await runbooks.put(DOMAIN, runbookYaml(DOMAIN, {}), 'test');
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 10, blockSize: 4096, pattern: 'random', seed: 'storage-outage' });
    await protectAtPrimary(stack.client, DOMAIN);
  });

  const call = async (method: string, path: string, body?: string) => {
    const started = Date.now();
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${operator.token}`, ...(body ? { 'content-type': 'application/yaml' } : {}) },
      ...(body ? { body } : {}),
    });
    return { status: res.status, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { detail?: string; versions?: unknown[] }, seconds: (Date.now() - started) / 1000 };
  };

  it('answers 503 naming the object store while it is paused, and as before once it answers', async () => {
    assert.equal((await call('GET', `/domains/${DOMAIN}`)).status, 200);
    const before = await call('GET', `/runbooks/${DOMAIN}`);
    assert.equal(before.status, 200);
    process.kill(stack.s3Process.pid, 'SIGSTOP');
    try {
      for (const [method, path, body] of [
        ['GET', `/domains/${DOMAIN}`],
        ['GET', `/runbooks/${DOMAIN}`],
        ['POST', '/runbooks', runbookYaml(DOMAIN, {}).replace('restorePointInterval: 1m', 'restorePointInterval: 2m')],
      ] as const) {
        const answer = await call(method, path, body);
        assert.equal(answer.status, 503, `${method} ${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.type, 'application/problem+json; charset=utf-8');
        assert.equal(answer.retryAfter, '10');
        assert.match(answer.body.detail ?? '', /object store \(S3\) does not answer/);
        assert.ok(answer.seconds < 15, `${method} ${path} answered after ${answer.seconds} s`);
      }
    } finally {
      process.kill(stack.s3Process.pid, 'SIGCONT');
    }
    assert.equal((await call('GET', `/domains/${DOMAIN}`)).status, 200);
    const after = await call('GET', `/runbooks/${DOMAIN}`);
    assert.equal(after.status, 200);
    // The submission refused during the outage may have reached the store before its answer was lost; nothing earlier is changed.
    assert.deepEqual(after.body.versions?.slice(0, before.body.versions?.length), before.body.versions);
  });
});
