/**
 * What the OpenAPI document says of each route, written next to the route in its router module:
 * `const doc = routeDocs(router)` then `doc.post('/path', {...})` beside `router.post('/path', ...)`.
 * The role and the 401/403 answers are read from the route's own guard (`requireRole`), and the
 * request and response schemas are the zod schemas the route validates with, so neither can drift.
 */
import type { Router } from 'express';
import type { z } from 'zod';

export const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
export type Method = (typeof METHODS)[number];

/** The problems a route answers besides those its guard (401, 403) and its body parser (400, 413, 415) add. */
export type ProblemStatus = 400 | 404 | 409 | 413 | 415 | 422 | 503;

/** Media types and the schema of each; `null` where the content is text the schema language cannot describe. */
export type Content = Record<string, z.ZodType | null>;

export interface ResponseDoc {
  description: string;
  /** Default: `application/json`, a JSON object. */
  content?: Content;
}

export interface TextBody {
  description: string;
  content: Content;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  /** The path parameters (`:name` in the route), what each names. */
  params?: Record<string, string>;
  query?: z.ZodObject;
  /** A zod schema: a JSON body validated by it. */
  body?: z.ZodType | TextBody;
  /** The answers the route gives when it succeeds: a description (a JSON object) or the full answer. */
  responses: Record<number, string | ResponseDoc>;
  problems?: ProblemStatus[];
}

const DOCS = new WeakMap<object, Map<string, RouteDoc>>();

export const routeKey = (method: Method, path: string) => `${method.toUpperCase()} ${path}`;

/** Where a router's route docs are written, one call per route, with the route's express path. */
export function routeDocs(router: Router): Record<Method, (path: string, doc: RouteDoc) => void> {
  const docs = new Map<string, RouteDoc>();
  DOCS.set(router, docs);
  const add = (method: Method) => (path: string, doc: RouteDoc) => {
    if (docs.has(routeKey(method, path))) throw new Error(`${routeKey(method, path)} is documented twice`);
    docs.set(routeKey(method, path), doc);
  };
  return Object.fromEntries(METHODS.map((m) => [m, add(m)])) as Record<Method, (path: string, doc: RouteDoc) => void>;
}

/** The route docs written for a router, by `routeKey`; undefined for a router that has none. */
export const docsOf = (router: unknown): ReadonlyMap<string, RouteDoc> | undefined => (typeof router === 'function' ? DOCS.get(router) : undefined);
