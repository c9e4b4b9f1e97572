/**
 * Bad requests for every route of the API, generated from its OpenAPI document: random JSON, wrong
 * types, huge numbers, unicode, deep nesting, oversized bodies, wrong content types and encodings,
 * malformed path parameters, queries and headers. Each request comes from a seed of its own, so a
 * failure names the one seed that makes the same request again (`fuzzRequest(route, seed, ...)`).
 */
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

/** mulberry32: small, fast and the same on every machine. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for the n-th request to a route, from the run's seed: stable whatever the order requests are sent in. */
export function requestSeed(runSeed: number, route: string, n: number): number {
  let hash = runSeed >>> 0;
  for (const char of `${route}#${n}`) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return hash;
}

class Picker {
  constructor(readonly next: () => number) {}
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  one<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

const ODD_STRINGS = [
  '',
  ' ',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e400',
  '0x10',
  '__proto__',
  'constructor',
  '../../etc/passwd',
  '..',
  '.',
  '%00',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  'é',
  'e\u0301',
  '\u202eevil',
  '\u200b',
  '😀',
  '𝕯𝕽',
  '中文',
  'ـــ',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '${jndi:ldap://x}',
  '{{7*7}}',
  'a'.repeat(300),
  '\n\r\t',
  'load-0/../load-1',
  'CON',
  'a b',
];

const NUMBERS = [0, -0, -1, 1.5, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), Number.MAX_VALUE, Number.MIN_VALUE, 1e21, -1e-7];

/** A value of any JSON type, nested at most `depth` deep. */
function randomValue(pick: Picker, depth: number): unknown {
  switch (pick.int(depth > 0 ? 8 : 5)) {
    case 0:
      return null;
    case 1:
      return pick.chance(0.5);
    case 2:
      return pick.one(NUMBERS);
    case 3:
      return randomString(pick);
    case 4:
      return pick.int(1000);
    case 5:
      return Array.from({ length: pick.int(4) }, () => randomValue(pick, depth - 1));
    default:
      return Object.fromEntries(Array.from({ length: pick.int(4) }, () => [pick.chance(0.3) ? pick.one(ODD_STRINGS) : randomString(pick), randomValue(pick, depth - 1)]));
  }
}

function randomString(pick: Picker): string {
  if (pick.chance(0.4)) return pick.one(ODD_STRINGS);
  const length = pick.chance(0.1) ? 1000 + pick.int(5000) : pick.int(40);
  let text = '';
  for (let i = 0; i < length; i++) {
    const range = pick.int(4);
    // ASCII, Latin-1, the BMP (lone surrogates included), and astral planes.
    const code = range === 0 ? 0x20 + pick.int(0x5f) : range === 1 ? pick.int(0x100) : range === 2 ? pick.int(0x10000) : 0x10000 + pick.int(0x100000);
    text += String.fromCodePoint(code);
  }
  return text;
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
}

/** A value near what the schema asks for, so that a body often gets past its first checks and into the handler. */
function plausibleValue(pick: Picker, schema: JsonSchema | undefined, knownNames: readonly string[]): unknown {
  if (!schema || pick.chance(0.25)) return randomValue(pick, 2);
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return pick.one(schema.enum);
  const choices = schema.anyOf ?? schema.oneOf;
  if (choices) return plausibleValue(pick, pick.one(choices), knownNames);
  const type = Array.isArray(schema.type) ? pick.one(schema.type) : schema.type;
  switch (type) {
    case 'object':
      return plausibleObject(pick, schema, knownNames);
    case 'array':
      return Array.from({ length: pick.int(3) }, () => plausibleValue(pick, schema.items, knownNames));
    case 'integer':
    case 'number':
      return pick.chance(0.5) ? (schema.minimum ?? 0) + pick.int(10) : pick.one(NUMBERS);
    case 'boolean':
      return pick.chance(0.5);
    case 'string':
      return pick.chance(0.5) ? pick.one(knownNames) : randomString(pick);
    default:
      return randomValue(pick, 2);
  }
}

function plausibleObject(pick: Picker, schema: JsonSchema, knownNames: readonly string[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (pick.chance(0.7)) body[key] = plausibleValue(pick, property, knownNames);
  }
  // Defined, not assigned: assigning `__proto__` would set the prototype, which JSON.stringify never writes.
  if (pick.chance(0.2)) Object.defineProperty(body, pick.one(ODD_STRINGS), { value: randomValue(pick, 1), enumerable: true, configurable: true, writable: true });
  return body;
}

/** Bodies no JSON encoder writes: broken, nested deeper than any schema, numbers no double holds, bytes that are not UTF-8. */
function rawBody(pick: Picker): Buffer {
  const depth = 1 + pick.int(20_000);
  switch (pick.int(10)) {
    case 0:
      return Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`);
    case 1:
      return Buffer.from(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
    case 2:
      return Buffer.from(`{"runbook": 1${'0'.repeat(400)}, "limit": -1e999, "version": 1.0000000000000000001}`);
    case 3:
      return Buffer.from('{"runbook": "load-0",');
    case 4:
      return Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"runbook":"load-0"}')]);
    case 5:
      return Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc0, 0x80, 0x22, 0x3a, 0x31, 0x7d]);
    case 6:
      return Buffer.from('{"__proto__": {"role": "admin", "status": 200}, "constructor": {"prototype": {"x": 1}}}');
    case 7:
      return Buffer.from(`{"label": "${'x'.repeat(70_000 + pick.int(1_000_000))}"}`);
    case 8:
      return Buffer.from('NaN');
    default:
      return Buffer.alloc(pick.int(100), pick.int(256));
  }
}

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/problem+json',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json; charset=nonsense',
  'application/json; charset="',
  'application/octet-stream',
  'application/xml',
  'application/yaml',
  'json',
  '*/*',
  ';;;',
];
const CONTENT_ENCODINGS = ['gzip', 'deflate', 'br', 'identity, gzip', 'compress', 'x-nonsense'];
const ACCEPTS = ['application/xml', 'text/html', '*/*', 'application/json;q=0', ';;', 'image/png, */*;q=0.1'];
const BAD_AUTHORIZATIONS = ['Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer dr_0000000000000000000000000000000', 'Bearer a b', 'Token x', 'bearer\tx', `Bearer ${'x'.repeat(4000)}`, 'Bearer \u00ff\u00fe'];

/** A header value Node will send: Latin-1 without control characters. */
function latin1(pick: Picker, maxLength: number): string {
  return Array.from({ length: 1 + pick.int(maxLength) }, () => {
    const code = pick.chance(0.8) ? 0x20 + pick.int(0x5f) : 0xa0 + pick.int(0x60);
    return String.fromCharCode(code);
  }).join('');
}

/** What a URL can encode: lone surrogates have no UTF-8 (pairs go too, which costs little). */
const withoutSurrogates = (text: string) => text.replace(/[\ud800-\udfff]/g, '');

/** A path segment that names nothing: odd, percent-encoded or not (broken escapes and encoded slashes too), up to some thousand characters. */
function badSegment(pick: Picker): string {
  switch (pick.int(5)) {
    case 0:
      return encodeURIComponent(withoutSurrogates(randomString(pick))).slice(0, 6000) || '%20';
    case 1:
      return pick.one(['%ZZ', '%', '%C0%80', '%FF%FE', '%E0%A4%A', '..%2F..%2Fetc', '%2F', '%00', '%2e%2e', '.', '..']);
    case 2:
      return encodeURIComponent(withoutSurrogates(pick.one(ODD_STRINGS))) || '%20';
    case 3:
      return `fuzz-${pick.int(1_000_000)}`;
    default:
      return 'x'.repeat(1 + pick.int(3000));
  }
}

export interface FuzzRoute {
  method: string;
  /** The OpenAPI path template, e.g. `/domains/{domain}/failover`. */
  template: string;
  /** The role its guard demands; undefined for open routes. */
  role?: string;
  /** Query parameters the route documents. */
  query: string[];
  /** Content types of its documented request body; empty when it takes none. */
  bodyTypes: string[];
  /** Whether a JSON body is valid for it (its documented schema); undefined when it takes no JSON. */
  acceptsBody?: ValidateFunction;
  bodySchema?: JsonSchema;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { 'x-required-role'?: string; parameters?: Array<{ in: string; name: string }>; requestBody?: { content: Record<string, { schema?: object }> } }>>;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Every route and method of the document, with what its requests may carry. */
export function fuzzRoutes(document: OpenApiDocument): FuzzRoute[] {
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  addFormats(ajv);
  ajv.addSchema(document, 'openapi.json');
  return Object.entries(document.paths).flatMap(([template, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => {
        const content = operation.requestBody?.content ?? {};
        const json = content['application/json'];
        const pointer = `#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/requestBody/content/application~1json/schema`;
        return {
          method: method.toUpperCase(),
          template,
          ...(operation['x-required-role'] ? { role: operation['x-required-role'] } : {}),
          query: (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
          bodyTypes: Object.keys(content),
          ...(json?.schema ? { acceptsBody: ajv.compile({ $ref: `openapi.json${encodeURI(pointer)}` }), bodySchema: json.schema } : {}),
        };
      }),
  );
}

export interface FuzzRequest {
  method: string;
  /** Path and query, percent-encoded as sent. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** What the generator made wrong, for the failure message. */
  wrong: string;
}

export interface FuzzContext {
  /** A token of each role, in clear. */
  tokens: Record<string, string>;
  /** Values of path parameters that name something stored, by parameter name (a body route's request is then wrong by its body alone). */
  known: Record<string, string[]>;
}

const isMutating = (route: FuzzRoute) => route.method !== 'GET';

/**
 * The request of this seed to `route`. A mutating route's request is always invalid (a body its
 * schema refuses, a wrong content type, no or a wrong token, a path naming nothing), so it must
 * never be answered 2xx; a read may be.
 */
export function fuzzRequest(route: FuzzRoute, seed: number, context: FuzzContext): FuzzRequest {
  const pick = new Picker(seededRandom(seed));
  const knownNames = Object.values(context.known).flat();
  const takesJson = route.acceptsBody !== undefined;
  const wrongs = ['path', 'headers', 'auth', ...(route.query.length > 0 || !isMutating(route) ? ['query'] : []), ...(route.bodyTypes.length > 0 ? ['body', 'body', 'body', 'raw body', 'content type'] : [])];
  const wrong = pick.one(wrongs);
  const headers: Record<string, string> = {};

  // Path parameters name stored things only where the body alone is to blame; anywhere else a bodyless mutation could act on them.
  const pathIsSafe = wrong === 'body' && takesJson;
  let path = route.template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const known = context.known[name];
    if (wrong !== 'path' && known && (pathIsSafe || !isMutating(route))) return encodeURIComponent(pick.one(known));
    return badSegment(pick);
  });
  if (wrong === 'query' || pick.chance(0.2)) {
    const names = [...route.query, ...route.query, 'x', '__proto__', 'limit[]', ''];
    const pairs = Array.from({ length: 1 + pick.int(4) }, () => `${encodeURIComponent(pick.one(names))}=${pick.chance(0.3) ? pick.one(['%ZZ', '%', '%00', '-1', '1e400', '99999999999999999999', '']) : encodeURIComponent(withoutSurrogates(randomString(pick))).slice(0, 2000)}`);
    path += `?${pairs.join('&')}`;
  }

  const role = route.role ?? 'viewer';
  const token = context.tokens[role] ?? context.tokens.admin;
  if (wrong === 'auth') {
    // No token, a malformed or unknown one, or a role below the route's.
    const lower = role === 'admin' ? context.tokens.operator : role === 'operator' ? context.tokens.viewer : undefined;
    const choice = pick.int(3);
    if (choice === 1) headers.authorization = pick.one(BAD_AUTHORIZATIONS);
    else if (choice === 2 && lower) headers.authorization = `Bearer ${lower}`;
    else if (choice === 2) headers.authorization = `Bearer ${latin1(pick, 60)}`;
  } else {
    headers.authorization = `Bearer ${token}`;
  }
  if (wrong === 'headers' || pick.chance(0.2)) {
    if (pick.chance(0.5)) headers['x-request-id'] = pick.chance(0.3) ? 'x'.repeat(129) : latin1(pick, 200);
    if (pick.chance(0.4)) headers.accept = pick.one(ACCEPTS);
    if (pick.chance(0.3)) headers['accept-charset'] = latin1(pick, 30);
    if (pick.chance(0.3)) headers[`x-${latin1(pick, 10).replace(/[^a-z]/gi, '') || 'odd'}`] = latin1(pick, 500);
    if (pick.chance(0.3)) headers['if-none-match'] = latin1(pick, 40);
  }

  let body: Buffer | undefined;
  if (route.bodyTypes.length > 0 || pick.chance(0.1)) {
    const type = route.bodyTypes.length > 0 ? pick.one(route.bodyTypes) : 'application/json';
    headers['content-type'] = type;
    if (wrong === 'content type') {
      headers['content-type'] = pick.one(CONTENT_TYPES.filter((t) => !route.bodyTypes.includes(t)));
      if (pick.chance(0.3)) headers['content-encoding'] = pick.one(CONTENT_ENCODINGS);
    }
    body = (wrong !== 'raw body' && invalidJsonBody(route, pick, knownNames)) || rawBody(pick);
  }
  return { method: route.method, path, headers, ...(body ? { body } : {}), wrong };
}

/**
 * JSON the route's schema refuses: near its shape or not at all, drawn again until the schema says
 * no; undefined when a hundred draws all passed (a schema that takes anything), for a raw body instead.
 */
function invalidJsonBody(route: FuzzRoute, pick: Picker, knownNames: readonly string[]): Buffer | undefined {
  for (let tries = 0; tries < 100; tries++) {
    const body = pick.chance(0.6) && route.bodySchema ? plausibleValue(pick, route.bodySchema, knownNames) : randomValue(pick, 4);
    // Judged as the server reads it: what JSON.stringify drops or changes (undefined, NaN, inherited keys) is not sent.
    const text = JSON.stringify(body) ?? 'null';
    if (!route.acceptsBody?.(JSON.parse(text))) return Buffer.from(text);
  }
  return undefined;
}
