import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { RequestHandler, Router } from 'express';
import { createApp } from '../../api/app';
import { hashToken, type Role } from '../../api/auth';
import { createLogger, type Logger } from '../../common/logger';
import type { SiteService } from '../../sites/launch';
import { checkingAnswers } from './openapi-responses';
import { prepareTestSites, type SiteInput, type TestSites } from './sites';
import { startTestStack, testStorage, useFixture, type TestStorage } from './stack';
import { TestWorkers } from './workers';

/** What the end-to-end tests stand on: real servers, a primary and a recovery site, and worker processes on demand. */
export interface Testbed extends TestStorage {
  sites: TestSites;
  /** The started sites of those names (they follow a restart through `sites.start`). */
  primary: SiteService;
  recovery: SiteService;
  workers: TestWorkers;
  /** Stops everything it started, also after a failed test. */
  stop(): Promise<void>;
}

export interface TestbedOptions {
  definitions?: SiteInput[];
  /** The sites to start; by default primary and recovery. */
  sites?: string[];
  /** Worker processes to start: `orchestration` and names of started sites (their site worker). */
  workers?: string[];
}

export async function startTestbed(options: TestbedOptions = {}): Promise<Testbed> {
  const stack = await startTestStack();
  let sites: TestSites | undefined;
  let workers: TestWorkers | undefined;
  const stop = async () => {
    await workers?.stopAll();
    await sites?.stopAll();
    await stack.stop();
  };
  try {
    const started = await prepareTestSites(stack.dir, options.definitions);
    sites = started;
    await started.startAll(options.sites ?? ['primary', 'recovery']);
    const running = new TestWorkers(stack, started.token);
    workers = running;
    await Promise.all((options.workers ?? []).map((name) => (name === 'orchestration' ? running.orchestration() : running.site(started.site(name), name))));
    return {
      ...testStorage(stack),
      sites: started,
      get primary() {
        return started.site('primary');
      },
      get recovery() {
        return started.site('recovery');
      },
      workers: running,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The testbed for the tests of a describe block, with the worker processes `options.workers` running before the first test. */
export function useTestbed(options: TestbedOptions = {}): Testbed {
  return useFixture('the testbed', () => startTestbed(options), (bed) => bed.stop());
}

export interface TestServer {
  server: Server;
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
}

async function listenOnLoopback(listener: RequestListener): Promise<TestServer> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const closeServer = ({ server }: TestServer) => new Promise<void>((resolve) => server.close(() => resolve()));

/** An HTTP server on a free loopback port for the tests of a describe block. */
export function useHttpServer(listener: RequestListener): TestServer {
  return useFixture('the HTTP server', () => listenOnLoopback(listener), closeServer);
}

export interface ApiPrincipal {
  name: string;
  role: Role;
  token: string;
}

export interface TestApiOptions {
  /** Who may call it, with their tokens in clear. */
  principals: ApiPrincipal[];
  /** The feature routers under test, built when the API starts (after the fixtures declared before it). */
  routers: (log: Logger) => Router[];
  /** Collects what the API logs, one JSON line each; otherwise the log goes nowhere. */
  logLines?: string[];
  /** Sees every request first, as in the API process (`AppOptions.httpMetrics`). */
  httpMetrics?: RequestHandler;
}

/**
 * The product's HTTP API (`api/app.ts`) with the given routers, for the tests of a describe block.
 * Each test fails when an answer it got is not as the API's OpenAPI document describes it.
 */
export function useTestApi({ principals, routers, logLines, httpMetrics }: TestApiOptions): TestServer {
  const undocumented: string[] = [];
  // The API answers an unknown error with a bare 500 and logs it: a test that met one shows what was logged.
  const unhandled: string[] = [];
  afterEach(() => {
    assert.deepEqual(unhandled.splice(0), [], 'errors the API answered with 500');
    assert.deepEqual(undocumented.splice(0), [], 'answers that GET /openapi.json does not describe');
  });
  const start = () => {
    const log = createLogger(
      'test-api',
      new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          const line = chunk.toString();
          logLines?.push(line);
          if (line.includes('"unhandled API error"')) unhandled.push(line);
          done();
        },
      }),
    );
    const app = createApp({
      log,
      tokens: { tokens: principals.map((p) => ({ name: p.name, role: p.role, sha256: hashToken(p.token) })) },
      healthChecks: [],
      routers: routers(log),
      ...(httpMetrics ? { httpMetrics } : {}),
    });
    return listenOnLoopback(checkingAnswers(app, undocumented));
  };
  return useFixture('the API', start, closeServer);
}
