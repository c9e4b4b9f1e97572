/** The check the integration tests run on every answer of their API: it refuses what the document does not describe. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import express from 'express';
import { z } from 'zod';
import { createApp } from '../../api/app';
import { requireRole } from '../../api/auth';
import { appDocument } from '../../api/openapi/openapi-router';
import { routeDocs } from '../../api/openapi/route-docs';
import { createLogger } from '../../common/logger';
import { answerChecker, type Answer } from '../harness/openapi-responses';

describe('answers checked against the OpenAPI document', () => {
  const router = express.Router();
  const doc = routeDocs(router);
  doc.get('/things/:id', { summary: 'a thing', responses: { 200: { description: 'the thing', content: { 'application/json': z.object({ id: z.string(), size: z.int() }) } } }, problems: [404] });
  router.get('/things/:id', requireRole('viewer'), () => undefined);
  doc.get('/things/:id/text', { summary: 'a thing as text', responses: { 200: { description: 'the text', content: { 'text/plain': null } } } });
  router.get('/things/:id/text', () => undefined);
  const app = createApp({ log: createLogger('test', new Writable({ write: (_c, _e, done) => done() })), tokens: { tokens: [] }, healthChecks: [], routers: [router] });
  const check = answerChecker(appDocument(app));
  const answer = (status: number, contentType: string, body: unknown, path = '/things/a%2Fb'): Answer => ({ method: 'GET', path, status, contentType, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) });

  it('passes answers as documented', () => {
    assert.equal(check(answer(200, 'application/json; charset=utf-8', { id: 'a/b', size: 3 })), undefined);
    assert.equal(check(answer(404, 'application/problem+json', { title: 'Not found', status: 404, detail: 'no thing' })), undefined);
    assert.equal(check(answer(401, 'application/problem+json', { title: 'Unauthorized', status: 401 })), undefined);
    assert.equal(check(answer(200, 'text/plain', 'hello', '/things/a/text')), undefined);
    assert.equal(check(answer(404, 'application/problem+json', { title: 'Not found', status: 404, detail: 'no route' }, '/nothing')), undefined);
    assert.equal(check({ ...answer(200, 'application/json', {}, '/healthz'), body: Buffer.from('{"status":"ok","checks":{}}') }), undefined);
  });

  it('refuses an undocumented status, content type, route or body', () => {
    assert.match(check(answer(500, 'application/problem+json', { title: 'Internal server error', status: 500 })) ?? '', /status 500 is not documented for GET \/things\/\{id\}/);
    assert.match(check(answer(403, 'application/problem+json', { title: 'Forbidden', status: 403 })) ?? '', /status 403 is not documented/);
    assert.match(check(answer(200, 'text/html', '<p>', '/things/a')) ?? '', /content type text\/html is not documented/);
    assert.match(check(answer(200, 'application/json', { id: 'a', size: 'big' })) ?? '', /does not match the documented schema: data\/size must be integer/);
    assert.match(check(answer(404, 'application/problem+json', { status: 404 })) ?? '', /must have required property 'title'/);
    assert.match(check(answer(200, 'application/json', {}, '/elsewhere')) ?? '', /no documented route/);
    assert.match(check({ ...answer(200, 'application/json', {}), body: Buffer.from('{') }) ?? '', /not JSON/);
  });
});
