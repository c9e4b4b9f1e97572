import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { OperatorError } from '../common/errors';
import { ProblemError, sendProblem } from './problem';

/**
 * Bearer tokens with roles. Viewers read; operators also submit runbooks and run operations;
 * admins also manage tokens and read the audit trail. Only token hashes are kept (in the object
 * store, see api/tokens.ts, or a fixed token file), so what is stored grants nothing if it leaks.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  name: string;
  role: Role;
}

/** A token's name: also part of an object key (api/tokens.ts). */
export const TOKEN_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const TokenName = z.string().regex(TOKEN_NAME, 'must be 1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit');

const TokenFileSchema = z.object({
  tokens: z.array(z.object({ name: TokenName, role: z.enum(ROLES), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type TokenFile = z.infer<typeof TokenFileSchema>;

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
export const generateToken = () => `dr_${randomBytes(24).toString('base64url')}`;

export function readTokenFile(path: string): TokenFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new OperatorError(`cannot read API token file ${path}: ${(error as Error).message}`);
  }
  const parsed = TokenFileSchema.safeParse(raw);
  if (!parsed.success) throw new OperatorError(`API token file ${path} is invalid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/**
 * Who holds the token of this sha256; undefined for an unknown or revoked token. Looking up by the
 * hash leaks nothing by its timing: finding a token from its hash's prefix is as hard as from nothing.
 */
export type TokenLookup = (sha256: string) => Promise<Principal | undefined>;

/** A fixed set of tokens, e.g. a token file read once: for tests and in-process APIs. */
export function fixedTokens(file: TokenFile): TokenLookup {
  const bySha256 = new Map(file.tokens.map((t) => [t.sha256, { name: t.name, role: t.role }]));
  return (sha256) => Promise.resolve(bySha256.get(sha256));
}

/** Marks the handlers below, so the OpenAPI document reads each route's role from the route itself. */
const GUARDS = new WeakMap<RequestHandler, Role | 'authenticated'>();

/** What a handler demands: a role (`requireRole`), any valid token (`authenticate`), or nothing. */
export const guardOf = (handler: unknown): Role | 'authenticated' | undefined => (typeof handler === 'function' ? GUARDS.get(handler as RequestHandler) : undefined);

export function authenticate(lookup: TokenLookup): RequestHandler {
  const handler: RequestHandler = async (req, res, next) => {
    const header = req.get('authorization');
    const match = header?.match(/^Bearer\s+(\S+)$/i);
    if (!match) {
      res.set('WWW-Authenticate', 'Bearer realm="dr-orchestrator"');
      return sendProblem(res, { title: 'Unauthorized', status: 401, detail: 'missing "Authorization: Bearer <token>" header' });
    }
    let found: Principal | undefined;
    try {
      found = await lookup(hashToken(match[1]));
    } catch {
      res.set('Retry-After', '5');
      return sendProblem(res, { title: 'Service unavailable', status: 503, detail: 'the token cannot be checked now: the object store that keeps tokens does not answer' });
    }
    if (!found) return sendProblem(res, { title: 'Unauthorized', status: 401, detail: 'unknown or revoked token' });
    req.principal = found;
    next();
  };
  GUARDS.set(handler, 'authenticated');
  return handler;
}

export function requireRole(role: Role): RequestHandler {
  const handler: RequestHandler = (req, _res, next) => {
    const principal = req.principal;
    if (!principal || RANK[principal.role] < RANK[role]) {
      throw new ProblemError({
        title: 'Forbidden',
        status: 403,
        detail: `this action needs the ${role} role; ${principal ? `"${principal.name}" is a ${principal.role}` : 'not authenticated'}`,
      });
    }
    next();
  };
  GUARDS.set(handler, role);
  return handler;
}

/** Who performed an action, for audit records: the token's name. */
export function principalName(req: { principal?: Principal }): string {
  return req.principal?.name ?? 'anonymous';
}
