import { STATUS_CODES } from 'node:http';
import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { isS3Unavailable } from '../common/s3';
import { z } from 'zod';
import { RequestRefused } from '../requests/desk';

/** RFC 9457 problem details: every API error has this shape and content type; extensions (e.g. `errors`) beside. */
export const ProblemSchema = z
  .looseObject({
    type: z.string().optional(),
    title: z.string(),
    status: z.int().min(400).max(599),
    detail: z.string().optional(),
    errors: z.array(z.looseObject({ path: z.string().optional(), message: z.string() })).optional().describe('each finding of a bad request or an invalid runbook'),
  })
  .meta({ title: 'Problem' });
export type Problem = z.infer<typeof ProblemSchema>;

export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = 'ProblemError';
  }
}

export function sendProblem(res: Response, problem: Problem): void {
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

export const badRequest = (detail: string, extra: Record<string, unknown> = {}) =>
  new ProblemError({ title: 'Bad request', status: 400, detail, ...extra });
export const notFound = (detail: string) => new ProblemError({ title: 'Not found', status: 404, detail });
export const conflict = (detail: string, extra: Record<string, unknown> = {}) =>
  new ProblemError({ title: 'Conflict', status: 409, detail, ...extra });
export const unprocessable = (detail: string, extra: Record<string, unknown> = {}) =>
  new ProblemError({ title: 'Unprocessable content', status: 422, detail, ...extra });

const REFUSED_TITLES: Record<RequestRefused['status'], string> = { 404: 'Not found', 409: 'Conflict', 422: 'Unprocessable content' };

export const notFoundRoute: RequestHandler = (req, res) =>
  sendProblem(res, { title: 'Not found', status: 404, detail: `no route for ${req.method} ${req.path}` });


/** gRPC status codes of a server that is down or too slow (UNAVAILABLE, DEADLINE_EXCEEDED). */
const GRPC_NOT_ANSWERING = new Set([14, 4]);

/** Which dependency did not answer, said for the operator; undefined when the error is not an outage. */
function unavailableDependency(error: unknown): string | undefined {
  if (isS3Unavailable(error)) return `the storage site's object store (S3) does not answer (${(error as Error).message}): what it holds cannot be read or written now`;
  const grpc = error instanceof ServiceError ? error.cause : error;
  if (isGrpcServiceError(grpc) && GRPC_NOT_ANSWERING.has(Number(grpc.code))) return `Temporal does not answer (${grpc.details || grpc.message}): operations cannot be read or started now`;
  return undefined;
}

/**
 * The last error handler. Body-parser errors (malformed JSON, oversized body, bad charset) carry
 * a 4xx status of their own and are reported as such; a dependency that does not answer is a 503
 * naming it (the request may be retried); anything unknown is a 500 with no internals.
 */
export function errorHandler(log: { error: (obj: object, msg: string) => void }): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (error instanceof ProblemError) return sendProblem(res, error.problem);
    if (error instanceof RequestRefused) return sendProblem(res, { title: REFUSED_TITLES[error.status], status: error.status, detail: error.message, ...error.details });
    const status = (error as { status?: unknown; statusCode?: unknown }).status ?? (error as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const type = (error as { type?: string }).type;
      const detail =
        type === 'entity.too.large'
          ? `request body exceeds the limit of ${(error as { limit?: number }).limit ?? '?'} bytes`
          : (error as Error).message;
      return sendProblem(res, { title: STATUS_CODES[status] ?? 'Bad request', status, detail });
    }
    const unavailable = unavailableDependency(error);
    if (unavailable) {
      log.error({ err: error, method: req.method, path: req.path }, 'a dependency of the API does not answer');
      res.set('Retry-After', '10');
      return sendProblem(res, { title: 'Service unavailable', status: 503, detail: unavailable });
    }
    log.error({ err: error, method: req.method, path: req.path }, 'unhandled API error');
    sendProblem(res, { title: 'Internal server error', status: 500, detail: 'the server failed; see its log' });
  };
}

/** The request's JSON body validated by `schema`: 415 when it is not JSON, 400 naming each bad field. */
export function parseBody<T>(schema: z.ZodType<T>, req: Request): T {
  if (req.body === undefined) throw new ProblemError({ title: 'Unsupported media type', status: 415, detail: 'send the request body as application/json' });
  const parsed = schema.safeParse(req.body);
  if (!parsed.success) {
    throw badRequest('the request body is invalid', {
      errors: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message })),
    });
  }
  return parsed.data;
}
