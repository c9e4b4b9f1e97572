/**
 * The OpenAPI 3.1 document of an app, built from the routes it serves and the docs written beside
 * them. Schemas are the routes' zod schemas in JSON Schema 2020-12 (OpenAPI 3.1's dialect): the
 * request side as zod reads input (defaults optional), the response side as it writes output.
 */
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ProblemSchema } from '../problem';
import { REQUEST_ID } from '../request-context';
import type { ApiRoute } from './api-routes';
import type { Content, ProblemStatus, ResponseDoc, RouteDoc } from './route-docs';

export type JsonSchema = Record<string, unknown>;

const PROBLEM_TYPE = 'application/problem+json';
const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };
/** What each problem status means in this API; a problem's `detail` says the particular case. */
const PROBLEM_MEANINGS: Record<ProblemStatus | 401 | 403, string> = {
  400: 'bad input: `errors` names each field (or the `X-Request-Id` header)',
  401: 'no bearer token, or one that is unknown or revoked',
  403: 'the token\'s role is below `x-required-role`, or its principal may not take this step',
  404: 'no such domain, runbook, operation or restore point',
  409: 'refused by the state: the domain\'s mode, a running operation, or what is waiting',
  413: 'the body is over the route\'s limit',
  415: 'the body is not in a media type or encoding the route reads',
  422: 'the runbook does not validate (each finding with line, column and path in `errors`), or protects another domain',
  503: 'a dependency (Temporal, the object store, a worker) did not answer in time; `Retry-After` says when to ask again',
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' });
  return rest;
}

/** `/domains/:domain` as OpenAPI writes it: `/domains/{domain}`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

/** Path parameters named alike across routers, described once; a route's `params` say the others. */
const SHARED_PARAMS: Record<string, string> = { domain: 'the protected domain\'s name (a DNS label)' };

const REQUEST_ID_HEADER = {
  name: 'X-Request-Id',
  in: 'header',
  required: false,
  description: 'the client\'s id of the call, echoed in the answer and kept in its audit record and the operation it starts; generated when absent',
  schema: { type: 'string', pattern: REQUEST_ID.source },
};

const pathParams = (path: string) => [...path.matchAll(/:(\w+)/g)].map((m) => m[1]);

function content(media: Content, io: 'input' | 'output'): Record<string, { schema?: JsonSchema }> {
  return Object.fromEntries(Object.entries(media).map(([type, schema]) => [type, schema ? { schema: jsonSchema(schema, io) } : {}]));
}

const ANY_OBJECT = { 'application/json': { schema: { type: 'object' } } };

const NOT_MODIFIED = { description: 'Not Modified: a conditional request (`If-None-Match`, `If-Modified-Since`) whose copy is current; no body' };

function response(doc: string | ResponseDoc) {
  if (typeof doc === 'string') return { description: doc, content: ANY_OBJECT };
  return { description: doc.description, content: doc.content ? content(doc.content, 'output') : ANY_OBJECT };
}

/** The problems a route answers: its own, its guard's, and its body parser's. */
function problems(route: ApiRoute): Array<keyof typeof PROBLEM_MEANINGS> {
  // Every route, open ones too, refuses a malformed X-Request-Id before anything else.
  const statuses = new Set<keyof typeof PROBLEM_MEANINGS>(route.doc?.problems).add(400);
  // Behind the token check, any route may meet an outage: the store that keeps tokens, or what the route reads, not answering.
  if (route.role) statuses.add(401).add(503);
  if (route.role && route.role !== 'viewer') statuses.add(403);
  if (route.doc?.body) statuses.add(413).add(415);
  return [...statuses].sort((a, b) => a - b);
}

function queryParams(query: z.ZodObject) {
  const { properties, required } = jsonSchema(query, 'input') as { properties: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(properties).map(([name, schema]) => ({
    name,
    in: 'query',
    required: required?.includes(name) ?? false,
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
    schema,
  }));
}

function operation(route: ApiRoute, doc: RouteDoc) {
  const parameters = [
    ...pathParams(route.path).map((name) => ({ name, in: 'path', required: true, description: doc.params?.[name] ?? SHARED_PARAMS[name] ?? name, schema: { type: 'string' } })),
    ...(doc.query ? queryParams(doc.query) : []),
    REQUEST_ID_HEADER,
  ];
  const body = doc.body;
  return {
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    ...(route.role ? { 'x-required-role': route.role, security: [{ bearer: [] }] } : { security: [] }),
    parameters,
    ...(body
      ? {
          requestBody: body instanceof z.ZodType
            ? { required: true, content: { 'application/json': { schema: jsonSchema(body, 'input') } } }
            : { required: true, description: body.description, content: content(body.content, 'input') },
        }
      : {}),
    responses: {
      ...Object.fromEntries(Object.entries(doc.responses).map(([status, answer]) => [status, response(answer)])),
      // Express tags each 200 it sends (ETag), so a conditional GET whose copy is current gets a 304.
      ...(route.method === 'get' && '200' in doc.responses ? { 304: NOT_MODIFIED } : {}),
      ...Object.fromEntries(problems(route).map((status) => [String(status), { description: `${STATUS_CODES[status]}: ${PROBLEM_MEANINGS[status]}`, content: { [PROBLEM_TYPE]: { schema: PROBLEM_REF } } }])),
    },
  };
}

export function openApiDocument(routes: ApiRoute[], info: { title: string; version: string; description: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    if (!route.doc) continue;
    (paths[openApiPath(route.path)] ??= {})[route.method] = operation(route, route.doc);
  }
  return {
    openapi: '3.1.1',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: { Problem: jsonSchema(ProblemSchema, 'output') },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token; its role (viewer, operator, admin) decides what it may do' } },
    },
  };
}
