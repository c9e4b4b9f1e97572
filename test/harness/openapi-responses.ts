/**
 * Checks every answer a test API gives against the OpenAPI document of that API: its route and
 * status must be documented, its content type too, and a JSON body must match the documented
 * schema. Installed by `useTestApi`, so the integration tests check the document as they run.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import type express from 'express';
import { appDocument, DOCS_ASSETS } from '../../api/openapi/openapi-router';

type Document = ReturnType<typeof appDocument>;
interface MediaType {
  schema?: object;
}
interface Operation {
  responses: Record<string, { content?: Record<string, MediaType> }>;
}

export interface Answer {
  method: string;
  /** The request's path as sent (still percent-encoded), without the query. */
  path: string;
  status: number;
  contentType: string;
  body: Buffer;
}

/** A JSON pointer into the document as a URI fragment. */
const pointer = (...segments: string[]) => `#/${segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

/** What is wrong with an answer according to the document; undefined when nothing is. */
export function answerChecker(document: Document): (answer: Answer) => string | undefined {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(document, 'openapi.json');
  const validators = new Map<string, ValidateFunction>();
  const validator = (ref: string) => validators.get(ref) ?? validators.set(ref, ajv.compile({ $ref: `openapi.json${ref}` })).get(ref)!;

  // Literal segments first, as express would have matched /runbooks/schema.json before /runbooks/{name}.
  const templates = Object.keys(document.paths)
    .map((template) => ({ template, pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}/?$`), params: (template.match(/\{/g) ?? []).length }))
    .sort((a, b) => a.params - b.params);
  const problemRef = pointer('components', 'schemas', 'Problem');

  return ({ method, path, status, contentType, body }) => {
    const verb = method === 'HEAD' ? 'get' : method.toLowerCase();
    const where = `${method} ${path} answered ${status} ${contentType}`;
    const template = templates.find((t) => t.pattern.test(path) && document.paths[t.template][verb])?.template;
    const mediaType = contentType.split(';')[0].trim().toLowerCase();
    let schemaRef: string | undefined;
    if (!template) {
      // No route: the API's own 401 (the token is checked first) or 404 naming the route.
      if ((status !== 401 && status !== 404) || mediaType !== 'application/problem+json') return `${where}: no documented route`;
      schemaRef = problemRef;
    } else {
      const operation = (document.paths[template] as Record<string, Operation>)[verb];
      const response = operation.responses[String(status)];
      if (!response) return `${where}: status ${status} is not documented for ${verb.toUpperCase()} ${template} (documented: ${Object.keys(operation.responses).join(', ')})`;
      const media = response.content?.[mediaType];
      if (response.content && !media) return `${where}: content type ${mediaType} is not documented for ${status} (documented: ${Object.keys(response.content).join(', ')})`;
      if (media?.schema) schemaRef = pointer('paths', template, verb, 'responses', String(status), 'content', mediaType, 'schema');
    }
    if (!schemaRef || method === 'HEAD' || !/json$/.test(mediaType)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return `${where}: the body is not JSON`;
    }
    const validate = validator(schemaRef);
    if (validate(parsed)) return undefined;
    return `${where}: the body does not match the documented schema: ${ajv.errorsText(validate.errors)}; body: ${body.toString('utf8').slice(0, 300)}`;
  };
}

/** The app as a request listener whose every answer is checked; what is wrong lands in `wrong`. */
export function checkingAnswers(app: express.Express, wrong: string[]): RequestListener {
  let check: ReturnType<typeof answerChecker> | undefined;
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    const keep = (chunk: unknown, encoding?: unknown) => {
      if (typeof chunk === 'string') chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.write = ((...args: unknown[]) => (keep(args[0], args[1]), write(...args))) as typeof res.write;
    res.end = ((...args: unknown[]) => (typeof args[0] !== 'function' && keep(args[0], args[1]), end(...args))) as typeof res.end;
    res.once('finish', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path.startsWith(`${DOCS_ASSETS}/`)) return;
      check ??= answerChecker(appDocument(app));
      const problem = check({ method: req.method ?? 'GET', path, status: res.statusCode, contentType: String(res.getHeader('content-type') ?? ''), body: Buffer.concat(chunks) });
      if (problem) wrong.push(problem);
    });
    app(req, res);
  };
}
