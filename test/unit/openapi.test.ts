/**
 * The OpenAPI document against the app the API process serves: every route documented and every
 * documented route served, each route's role as its guard says, the document valid OpenAPI 3.1,
 * and its readable page served from this process alone.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { createApp } from '../../api/app';
import { apiMetrics } from '../../api/metrics';
import { apiRoutes } from '../../api/openapi/api-routes';
import { openApiPath } from '../../api/openapi/document';
import { DOCS_ASSETS } from '../../api/openapi/openapi-router';
import { apiRouters } from '../../api/routers';
import { createLogger } from '../../common/logger';
import type { ObjectStore } from '../../datapath/object-store';
import type { RunbookStore } from '../../runbooks/store';
import { AuditTrail } from '../../api/audit';
import { TokenStore } from '../../api/tokens';
import { get } from 'node:http';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('OpenAPI document of the API process', () => {
  // Routers read their clients only when a request comes: stand-ins are enough to build them.
  const log = createLogger('openapi-test', new Writable({ write: (_chunk, _encoding, done) => done() }));
  const client = { options: { namespace: 'default' } } as unknown as Client;
  const app = createApp({
    log,
    tokens: { tokens: [] },
    healthChecks: [],
    routers: apiRouters({ client, runbooks: {} as RunbookStore, store: {} as ObjectStore, sites: new Map(), inventoryFor: () => Promise.resolve(undefined), log, tokens: new TokenStore({} as ObjectStore, log), audit: new AuditTrail({} as ObjectStore), metricsRouter: apiMetrics({ client, store: {} as ObjectStore, runbooks: {} as RunbookStore, log, sites: [] }).router }),
  });
  let server: Server;
  let url: string;
  let document: { openapi: string; paths: Record<string, Record<string, { 'x-required-role'?: string; security: unknown[] }>> };

  before(async () => {
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await fetch(`${url}/openapi.json`);
    assert.equal(res.status, 200);
    document = (await res.json()) as typeof document;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('documents every route the app serves, and no route it does not serve', () => {
    const { routes, documentedOnly } = apiRoutes(app);
    assert.ok(routes.length > 30, `only ${routes.length} routes found: the router walk misses routers`);
    assert.deepEqual(routes.filter((r) => !r.doc).map((r) => `${r.method.toUpperCase()} ${r.path}`), [], 'routes without a doc (write one next to the route: doc.<method>(path, {...}))');
    assert.deepEqual(documentedOnly, [], 'docs of routes that are not served');
    const served = new Set(routes.map((r) => `${r.method} ${openApiPath(r.path)}`));
    const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).filter((k) => METHODS.includes(k)).map((method) => `${method} ${path}`));
    assert.deepEqual([...documented].sort(), [...served].sort());
  });

  it('names the role each route\'s guard demands, and no token for health and the document', () => {
    for (const route of apiRoutes(app).routes) {
      const operation = document.paths[openApiPath(route.path)][route.method];
      assert.equal(operation['x-required-role'], route.role, `${route.method} ${route.path}`);
    }
    assert.equal(document.paths['/domains/{domain}/failover'].post['x-required-role'], 'operator');
    assert.equal(document.paths['/runbooks'].get['x-required-role'], 'viewer');
    for (const open of ['/healthz', '/openapi.json', '/docs']) assert.deepEqual(document.paths[open].get.security, [], open);
  });

  it('says on every route that a malformed X-Request-Id is refused with 400, as the app does before routing', async () => {
    const operations = Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).filter(([method]) => METHODS.includes(method)).map(([method, operation]) => ({ where: `${method} ${path}`, operation: operation as unknown as { parameters: Array<{ name: string; in: string }>; responses: Record<string, unknown> } })));
    for (const { where, operation } of operations) {
      assert.ok(operation.parameters.some((p) => p.in === 'header' && p.name === 'X-Request-Id'), where);
      assert.ok(operation.responses['400'], where);
    }
    const res = await fetch(`${url}/healthz`, { headers: { 'x-request-id': 'not valid' } });
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  });

  it('is valid OpenAPI 3.1', async () => {
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const validator = new Validator();
    const result = await validator.validate(document);
    assert.equal(validator.version, '3.1');
    assert.deepEqual(result.errors ?? [], []);
    assert.ok(result.valid);
  });

  it('serves /docs as a page whose scripts and styles are all served here', async () => {
    const page = await fetch(`${url}/docs`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /url: '\/openapi.json'/);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.length >= 2, html);
    for (const asset of assets) {
      assert.ok(asset.startsWith(`${DOCS_ASSETS}/`), `${asset} is not served here`);
      const res = await fetch(`${url}${asset}`);
      assert.equal(res.status, 200, asset);
      assert.ok((await res.arrayBuffer()).byteLength > 0, asset);
    }
    assert.equal((await fetch(`${url}${DOCS_ASSETS}/nothing.js`)).status, 404);
  });

  it('documents the 304 a conditional GET gets when its copy is current (the full-size fuzz sent If-None-Match: * to /docs)', async () => {
    // node:http, not fetch: fetch adds Cache-Control: no-cache to a conditional request, which the server must then answer in full.
    const conditionalGet = (path: string) => new Promise<number>((resolve, reject) => get(`${url}${path}`, { headers: { 'if-none-match': '*' } }, (res) => resolve(res.resume().statusCode!)).on('error', reject));
    for (const path of ['/docs', '/openapi.json']) {
      assert.equal(await conditionalGet(path), 304, path);
      const responses = (document.paths[path].get as unknown as { responses: Record<string, { content?: unknown }> }).responses;
      assert.ok(responses['304'] && responses['304'].content === undefined, `${path} documents a 304 without a body`);
    }
  });
});
