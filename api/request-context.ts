/**
 * What an API call carries for its audit record: its request id (the client's X-Request-Id or a
 * generated one, echoed in the answer and kept in the memo of the operation it starts) and what
 * its handler knows of its target beyond the path.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { z } from 'zod';
import { sendProblem } from './problem';

/** What a client may send as X-Request-Id: it becomes part of an object key and of a workflow memo. */
export const REQUEST_ID = /^[A-Za-z0-9._~-]{1,128}$/;

export const AuditTarget = z.object({
  domain: z.string().optional(),
  runbook: z.string().optional(),
  token: z.string().optional(),
  /** The operation's workflow id: the one started, or the one acted on. */
  operation: z.string().optional(),
});
export type AuditTarget = z.infer<typeof AuditTarget>;

declare module 'express-serve-static-core' {
  interface Request {
    /** From the client's X-Request-Id or generated; echoed in the answer, kept in the audit record and the started operation's memo. */
    requestId?: string;
  }
  interface Locals {
    auditTarget?: AuditTarget;
  }
}

/** Takes the client's X-Request-Id (400 when malformed) or makes one, and echoes it in the answer. */
export const requestIds: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  if (given !== undefined && !REQUEST_ID.test(given)) {
    return sendProblem(res, {
      title: 'Bad request',
      status: 400,
      detail: 'the X-Request-Id header must be 1-128 letters, digits, ".", "_", "~" or "-"',
      errors: [{ path: 'X-Request-Id', message: 'malformed' }],
    });
  }
  req.requestId = given ?? randomUUID();
  res.set('X-Request-Id', req.requestId);
  next();
};

/** What a handler knows of its target beyond the path (a name in the body, the operation it started). */
export function noteAuditTarget(res: Response, target: AuditTarget): void {
  res.locals.auditTarget = { ...res.locals.auditTarget, ...target };
}

