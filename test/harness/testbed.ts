import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Router } from 'express';
import { createApp } from '../../api/app';
import { hashToken, type Role } from '../../api/auth';
import { createLogger, type Logger } from '../../common/logger';
import type { SiteService } from '../../sites/launch';
import { prepareTestSites, type SiteInput, type TestSites } from './sites';
import { startTestStack, useFixture, type TestStack } from './stack';
import { TestWorkers } from './workers';

/** What the end-to-end tests stand on: real servers, a primary and a recovery site, and worker processes on demand. */
export interface Testbed {
  stack: TestStack;
  sites: TestSites;
  primary: SiteService;
  recovery: SiteService;
  workers: TestWorkers;
  /** Stops everything, also after a failed test. */
  stop(): Promise<void>;
}

export async function startTestbed(definitions?: SiteInput[]): Promise<Testbed> {
  const stack = await startTestStack();
  try {
    const sites = await prepareTestSites(stack.dir, definitions);
    const [primary, recovery] = await Promise.all([sites.start('primary'), sites.start('recovery')]);
    const workers = new TestWorkers(stack, sites.token);
    return {
      stack,
      sites,
      primary,
      recovery,
      workers,
      stop: async () => {
        await workers.stopAll();
        await Promise.all([primary.process.stop(), recovery.process.stop()]);
        await stack.stop();
      },
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
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
}

/** The product's HTTP API (`api/app.ts`) with the given routers, for the tests of a describe block. */
export function useTestApi({ principals, routers, logLines }: TestApiOptions): TestServer {
  const start = () => {
    const log = createLogger('test-api', new Writable({ write: (chunk: Buffer, _encoding, done) => (logLines?.push(chunk.toString()), done()) }));
    const app = createApp({
      log,
      tokens: { tokens: principals.map((p) => ({ name: p.name, role: p.role, sha256: hashToken(p.token) })) },
      healthChecks: [],
      routers: routers(log),
    });
    return listenOnLoopback(app);
  };
  return useFixture('the API', start, closeServer);
}
