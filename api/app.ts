import express, { type RequestHandler, type Router } from 'express';
import type { Logger } from '../common/logger';
import { auditRecorder, type AuditTrail } from './audit';
import { requestIds } from './request-context';
import { authenticate, fixedTokens, type TokenFile, type TokenLookup } from './auth';
import { openApiRouter } from './openapi/openapi-router';
import { routeDocs } from './openapi/route-docs';
import { errorHandler, notFoundRoute } from './problem';
import { payloadCodecRouter } from './payload-codec';

export interface HealthCheck {
  name: string;
  /** Where the dependency is, shown to operators (never credentials). */
  target: string;
  check: () => Promise<void>;
}

export interface AppOptions {
  log: Logger;
  /** Who may call: a fixed set (tests, in-process APIs) or a lookup in the object store (api/tokens.ts). */
  tokens: TokenFile | TokenLookup;
  /** Where every authenticated mutating call is recorded; none: no trail (tests of other features). */
  audit?: AuditTrail;
  healthChecks: HealthCheck[];
  /** Feature routers; all of them sit behind authentication and decide roles per route. */
  routers: Router[];
  /** Sees every request first, health checks and refusals included (the HTTP metrics). */
  httpMetrics?: RequestHandler;
}

/** The HTTP API: unauthenticated health, API document and payload codec, everything else behind bearer tokens, errors as problem+json. */
export function createApp({ log, tokens, audit, healthChecks, routers, httpMetrics }: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestIds);
  if (httpMetrics) app.use(httpMetrics);

  const open = express.Router();
  routeDocs(open).get('/healthz', {
    summary: 'Whether the API reaches Temporal and the object store',
    responses: { 200: 'every dependency answers: `{status: "ok", checks: {<name>: {target, reachable}}}`', 503: 'a dependency does not answer: `status: "unavailable"`, its check says why' },
  });
  open.get('/healthz', async (_req, res) => {
    const results = await Promise.all(
      healthChecks.map(async (h) => {
        try {
          await h.check();
          return { name: h.name, target: h.target, reachable: true };
        } catch (error) {
          return { name: h.name, target: h.target, reachable: false, error: (error as Error).message };
        }
      }),
    );
    const healthy = results.every((r) => r.reachable);
    res.status(healthy ? 200 : 503).json({ status: healthy ? 'ok' : 'unavailable', checks: Object.fromEntries(results.map((r) => [r.name, r])) });
  });
  app.use(open);
  app.use(payloadCodecRouter());
  app.use(openApiRouter(app));

  app.use(authenticate(typeof tokens === 'function' ? tokens : fixedTokens(tokens)));
  if (audit) app.use(auditRecorder(audit, log));
  for (const router of routers) app.use(router);
  app.use(notFoundRoute);
  app.use(errorHandler(log));
  return app;
}
