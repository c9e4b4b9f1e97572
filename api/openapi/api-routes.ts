/**
 * The routes an express app really serves, read from its router stack (express 5: `app.router.stack`,
 * a mounted router's layer has the router as `handle` with its own `stack`, a route's layer has
 * `route` with `path`, `methods` and the handlers in `route.stack`), each with the guard it passes
 * and the doc its router wrote for it.
 */
import type express from 'express';
import { guardOf, type Role } from '../auth';
import { docsOf, METHODS, routeKey, type Method, type RouteDoc } from './route-docs';

export interface ApiRoute {
  method: Method;
  /** The express path, e.g. `/domains/:domain`. */
  path: string;
  /** The role it needs; `viewer` also for routes behind the token check without a role of their own; undefined: no token. */
  role: Role | undefined;
  doc: RouteDoc | undefined;
}

export interface ApiRoutes {
  routes: ApiRoute[];
  /** Docs written for a route that its router does not have. */
  documentedOnly: string[];
}

interface Layer {
  handle: unknown;
  route?: { path: unknown; methods: Record<string, boolean>; stack: Array<{ handle: unknown }> };
  slash?: boolean;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function apiRoutes(app: express.Express): ApiRoutes {
  const found: ApiRoutes = { routes: [], documentedOnly: [] };
  walk((app.router as unknown as { stack: Layer[] }).stack, undefined, app.router, found);
  return found;
}

function walk(stack: Layer[], authenticated: 'authenticated' | undefined, router: unknown, found: ApiRoutes): void {
  const docs = docsOf(router);
  const served = new Set<string>();
  for (const layer of stack) {
    const guard = guardOf(layer.handle);
    if (guard === 'authenticated') authenticated = guard;
    if (layer.route) {
      const { path } = layer.route;
      if (typeof path !== 'string') throw new Error(`route ${String(path)} is no plain path: the OpenAPI document cannot name it`);
      const roles = layer.route.stack.map((l) => guardOf(l.handle)).filter((g): g is Role => g !== undefined && g !== 'authenticated');
      const role = roles.sort((a, b) => RANK[b] - RANK[a])[0] ?? (authenticated ? 'viewer' : undefined);
      for (const method of METHODS.filter((m) => layer.route!.methods[m])) {
        served.add(routeKey(method, path));
        found.routes.push({ method, path, role, doc: docs?.get(routeKey(method, path)) });
      }
    } else if (Array.isArray((layer.handle as { stack?: unknown }).stack)) {
      if (!layer.slash) throw new Error('a router mounted under a path prefix: the OpenAPI document expects routers at /');
      walk((layer.handle as { stack: Layer[] }).stack, authenticated, layer.handle, found);
    }
  }
  for (const key of docs?.keys() ?? []) if (!served.has(key)) found.documentedOnly.push(key);
}
