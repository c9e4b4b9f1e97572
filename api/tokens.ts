/**
 * API tokens kept in the object store, so that every API process behind a load balancer knows the
 * same ones and a revocation through one is refused by all at their next request. A token is shown
 * once, when issued; the store keeps its sha256 only:
 *   control/tokens/<name>.json          who it is: name, role, sha256, createdAt, createdBy (create-if-absent: names are unique)
 *   control/token-hashes/<sha256>.json  what a request's token is looked up by: name and role
 *   control/token-last-use/<sha256>.json when it was last used, written at most once a minute per process
 * The hash object alone admits a request, so a revocation deletes it first.
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../common/logger';
import { forEachLimited } from '../common/parallel';
import type { ObjectStore } from '../datapath/object-store';
import { generateToken, hashToken, principalName, requireRole, ROLES, TOKEN_NAME, TokenName, type Principal, type TokenFile, type TokenLookup } from './auth';
import { routeDocs } from './openapi/route-docs';
import { noteAuditTarget } from './request-context';
import { badRequest, conflict, notFound, parseBody } from './problem';

/** A token's last use is written at most this often per API process: a request never waits for it. */
const LAST_USE_EVERY_MS = 60_000;
const READS_IN_FLIGHT = 8;

const TokenRecord = z.object({
  name: TokenName,
  role: z.enum(ROLES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  createdBy: z.string(),
});
type TokenRecord = z.infer<typeof TokenRecord>;
const HashRecord = TokenRecord.pick({ name: true, role: true });
const LastUse = z.object({ lastUsedAt: z.string() });

export interface ListedToken extends Omit<TokenRecord, 'sha256'> {
  lastUsedAt: string | null;
}

/** The body of `POST /tokens` (exported for the API description). */
export const IssueTokenRequest = z.strictObject({
  name: TokenName,
  role: z.enum(ROLES),
});

export class TokenStore {
  private readonly lastNoted = new Map<string, number>();

  constructor(
    private readonly store: ObjectStore,
    private readonly log: Logger,
  ) {}

  private get root(): string {
    return `${this.store.prefix}control/`;
  }
  private nameKey(name: string): string {
    return `${this.root}tokens/${name}.json`;
  }
  private hashKey(sha256: string): string {
    return `${this.root}token-hashes/${sha256}.json`;
  }
  private lastUseKey(sha256: string): string {
    return `${this.root}token-last-use/${sha256}.json`;
  }

  private async read<T>(key: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const body = await this.store.get(key);
    return body === undefined ? undefined : schema.parse(JSON.parse(body.toString('utf8')));
  }

  /** Who the token of this hash belongs to, read from the store at each request: a revoked token is unknown at once. */
  readonly lookup: TokenLookup = async (sha256) => {
    const found = await this.read(this.hashKey(sha256), HashRecord);
    if (found) this.noteUse(sha256);
    return found;
  };

  /** Records the use in the background, at most once a minute per token: a request neither waits for it nor fails with it. */
  private noteUse(sha256: string): void {
    const now = Date.now();
    if (now - (this.lastNoted.get(sha256) ?? 0) < LAST_USE_EVERY_MS) return;
    this.lastNoted.set(sha256, now);
    this.store.put(this.lastUseKey(sha256), JSON.stringify({ lastUsedAt: new Date(now).toISOString() }), 'application/json').catch((error: unknown) => {
      this.log.warn({ err: error }, 'recording a token’s last use failed (the request was served)');
    });
  }

  /** Issues a token named `name`; undefined when the name is taken. The plain token exists only in the answer. */
  async issue(name: string, role: Principal['role'], createdBy: string): Promise<{ record: TokenRecord; token: string } | undefined> {
    const token = generateToken();
    const record: TokenRecord = { name, role, sha256: hashToken(token), createdAt: new Date().toISOString(), createdBy };
    if (!(await this.store.createIfAbsent(this.nameKey(name), JSON.stringify(record), 'application/json'))) {
      // Refused as existing: by another's token of that name, or by our own first put whose answer was lost.
      const existing = await this.read(this.nameKey(name), TokenRecord);
      if (existing?.sha256 !== record.sha256) return undefined;
    }
    await this.admit(record);
    return { record, token };
  }

  private admit(record: TokenRecord): Promise<void> {
    return this.store.put(this.hashKey(record.sha256), JSON.stringify({ name: record.name, role: record.role }), 'application/json');
  }

  /** Revokes the token named `name`: false when there is none. Repeating a revocation that crashed half-way finishes it. */
  async revoke(name: string): Promise<boolean> {
    const record = await this.read(this.nameKey(name), TokenRecord);
    if (!record) return false;
    await this.store.delete([this.hashKey(record.sha256)]);
    await this.store.delete([this.nameKey(name), this.lastUseKey(record.sha256)]);
    this.lastNoted.delete(record.sha256);
    return true;
  }

  async list(): Promise<ListedToken[]> {
    const { keys } = await this.store.list(`${this.root}tokens/`);
    const listed = new Map<string, ListedToken>();
    await forEachLimited(keys, READS_IN_FLIGHT, async (key) => {
      const record = await this.read(key, TokenRecord);
      if (!record) return;
      const lastUse = await this.read(this.lastUseKey(record.sha256), LastUse);
      const { sha256: _hash, ...shown } = record;
      listed.set(key, { ...shown, lastUsedAt: lastUse?.lastUsedAt ?? null });
    });
    return keys.flatMap((key) => listed.get(key) ?? []);
  }

  /**
   * Makes the tokens of a hashed token file known (the API's DR_API_TOKENS_FILE, which `npm start`
   * generates): at every start, so that a name of the file revoked through the API is issued again.
   * A name already issued with another token is left as the store has it.
   */
  async seed(file: TokenFile, source: string): Promise<void> {
    for (const { name, role, sha256 } of file.tokens) {
      const record: TokenRecord = { name, role, sha256, createdAt: new Date().toISOString(), createdBy: source };
      await this.store.createIfAbsent(this.nameKey(name), JSON.stringify(record), 'application/json');
      const stored = await this.read(this.nameKey(name), TokenRecord);
      if (stored?.sha256 === sha256) await this.admit(stored);
      else this.log.warn({ name, source }, 'a token of this name was issued through the API; the one in the token file is not admitted');
    }
  }
}

/** `GET /tokens`, `POST /tokens`, `DELETE /tokens/{name}`: admins manage who may call the API. */
export function tokensRouter({ tokens, log }: { tokens: TokenStore; log: Logger }): Router {
  const router = express.Router();
  const json = express.json({ limit: '4kb' });
  const doc = routeDocs(router);

  doc.get('/tokens', { summary: 'Every API token: name, role, who created it and when, its last use (never the token or its hash)', responses: { 200: '`{tokens: [{name, role, createdAt, createdBy, lastUsedAt}]}`' } });
  router.get('/tokens', requireRole('admin'), async (_req, res) => {
    res.json({ tokens: await tokens.list() });
  });

  doc.post('/tokens', {
    summary: 'Issue a token with a role and a name; the answer shows it once',
    body: IssueTokenRequest,
    responses: { 201: '`{name, role, createdAt, createdBy, token, shownOnce: true}`: keep `token` in a secret store, it is never shown again' },
    problems: [400, 409],
  });
  router.post('/tokens', requireRole('admin'), json, async (req, res) => {
    const body = parseBody(IssueTokenRequest, req);
    noteAuditTarget(res, { token: body.name });
    const issued = await tokens.issue(body.name, body.role, principalName(req));
    if (!issued) throw conflict(`a token named "${body.name}" exists; revoke it first (DELETE /tokens/${body.name}) or choose another name`);
    const { sha256: _hash, ...shown } = issued.record;
    log.info({ name: body.name, role: body.role, by: principalName(req) }, 'API token issued');
    res.status(201).set('Cache-Control', 'no-store').location(`/tokens/${body.name}`).json({ ...shown, token: issued.token, shownOnce: true });
  });

  doc.delete('/tokens/:name', { summary: 'Revoke a token at once, in every API process', params: { name: 'the token\'s name' }, responses: { 200: '`{name, revoked: true, by}`' }, problems: [400, 404] });
  router.delete('/tokens/:name', requireRole('admin'), async (req, res) => {
    const name = String(req.params.name);
    if (!TOKEN_NAME.test(name)) throw badRequest(`"${name}" is not a token name`, { errors: [{ path: 'name', message: 'not a token name' }] });
    noteAuditTarget(res, { token: name });
    if (!(await tokens.revoke(name))) throw notFound(`no token named "${name}"`);
    log.info({ name, by: principalName(req) }, 'API token revoked');
    res.json({ name, revoked: true, by: principalName(req) });
  });

  return router;
}
