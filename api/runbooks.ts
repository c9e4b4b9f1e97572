/**
 * Runbook API: submit (validate, store, plan), validate or plan without storing, list, read a
 * version, diff two versions, and the JSON Schema. Bodies are YAML text; every rejection is a
 * problem+json 4xx whose `errors` carry line, column and path for each finding.
 */
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../common/logger';
import { unifiedDiff } from '../runbooks/diff';
import type { InventoryLookup } from '../runbooks/inventory';
import { runbookJsonSchema } from '../runbooks/json-schema';
import { renderPlan } from '../runbooks/plan-text';
import { planRunbook } from '../runbooks/planner';
import { SOURCE_LIMITS } from '../runbooks/source';
import { RUNBOOK_NAME_PATTERN, type RunbookStore } from '../runbooks/store';
import { validateRunbookAgainstSite, type ValidationResult } from '../runbooks/validate';
import { principalName, requireRole } from './auth';
import { noteAuditTarget } from './request-context';
import { RUNBOOK_YAML } from './openapi/answers';
import { routeDocs } from './openapi/route-docs';
import { badRequest, notFound, ProblemError, unprocessable } from './problem';

export const YAML_CONTENT_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

export interface RunbooksRouterOptions {
  store: RunbookStore;
  log: Logger;
  inventoryFor?: InventoryLookup;
  maxBytes?: number;
}

function yamlBody(req: Request): string {
  if (!req.is(YAML_CONTENT_TYPES)) {
    throw unsupported(`send the runbook as YAML with Content-Type ${YAML_CONTENT_TYPES.join(', ')}; got ${req.get('content-type') ?? 'none'}`);
  }
  const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const charset = /;\s*charset="?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1].toLowerCase();
  if (!charset || ['utf-8', 'utf8', 'us-ascii'].includes(charset)) return utf8Text(bytes);
  // A declared encoding is trusted when the text is valid in it; the store keeps UTF-8.
  try {
    return new TextDecoder(charset, { fatal: true }).decode(bytes);
  } catch {
    throw unsupported(`the runbook is not ${charset} text, or ${charset} is no encoding this server knows; send it as UTF-8 (charset=utf-8)`);
  }
}

const unsupported = (detail: string) => new ProblemError({ title: 'Unsupported media type', status: 415, detail });

/** The body as text, refused by name when it is UTF-16 or any other encoding than UTF-8 (a UTF-8 byte order mark is dropped). */
function utf8Text(bytes: Buffer): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff) || bytes.subarray(0, 64).includes(0);
  if (utf16) throw unsupported('the runbook is UTF-16 text (a byte order mark or NUL bytes at its start); runbooks are UTF-8: convert it (e.g. iconv -f utf-16 -t utf-8)');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const { line, column } = firstInvalidUtf8(bytes);
    throw unsupported(`the runbook is not UTF-8 text: the bytes at line ${line}, column ${column} are no UTF-8 character (Latin-1 or another single-byte encoding?); runbooks are UTF-8`);
  }
}

/** Where the first byte sequence that is no UTF-8 character starts, as a line and column of the text before it. */
function firstInvalidUtf8(bytes: Buffer): { line: number; column: number } {
  let valid = 0;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // Grows the valid prefix one character at a time (1 to 4 bytes); stops at the first that fails.
  outer: while (valid < bytes.length) {
    for (let width = 1; width <= 4 && valid + width <= bytes.length; width++) {
      try {
        decoder.decode(bytes.subarray(valid, valid + width));
        valid += width;
        continue outer;
      } catch {
        // a longer sequence may be a character
      }
    }
    break;
  }
  const before = bytes.subarray(0, valid).toString('utf8').split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

function rejectInvalid(result: ValidationResult): void {
  if (result.ok) return;
  const first = result.errors[0];
  throw unprocessable(`the runbook has ${result.errors.length} error(s); first at ${first.line}:${first.column}: ${first.message}`, {
    errors: result.errors,
    warnings: result.warnings,
  });
}

function runbookName(raw: string): string {
  if (!RUNBOOK_NAME_PATTERN.test(raw)) throw notFound(`no runbook named "${raw.slice(0, 80)}" (names are lowercase DNS labels)`);
  return raw;
}

const VERSION = /^[1-9][0-9]{0,8}$/;

function versionNumber(raw: unknown, what: string): number {
  if (typeof raw !== 'string' || !VERSION.test(raw)) throw badRequest(`${what} must be a version number (1, 2, 3, ...)`);
  return Number(raw);
}

const PlanQuery = z.object({ format: z.enum(['json', 'text']).optional().describe('default json') });
const planFormat = (req: Request) => (PlanQuery.safeParse(req.query).data?.format === 'text' ? 'text' : 'json');
const DiffQuery = z.object({ from: z.string().regex(VERSION).describe('the older version'), to: z.string().regex(VERSION).describe('the newer version') });
const RUNBOOK_PARAMS = { name: 'the runbook\'s name (metadata.name)' };

export function runbooksRouter({ store, log, inventoryFor, maxBytes = SOURCE_LIMITS.maxBytes }: RunbooksRouterOptions): Router {
  const router = express.Router();
  const doc = routeDocs(router);
  const readYaml = express.raw({ type: YAML_CONTENT_TYPES, limit: maxBytes });
  const validate = (text: string) => validateRunbookAgainstSite(text, inventoryFor, { maxBytes });

  doc.get('/runbooks/schema.json', { summary: 'The JSON Schema of runbooks (for editors)', responses: { 200: { description: 'the schema', content: { 'application/schema+json': null } } } });
  router.get('/runbooks/schema.json', (_req, res) => {
    res.type('application/schema+json').send(JSON.stringify(runbookJsonSchema(), null, 2));
  });

  // Validating and planning change nothing, so any authenticated principal may (a CI job with a viewer token, say).
  doc.post('/runbooks/validate', { summary: 'Validate a runbook without storing it', body: RUNBOOK_YAML, responses: { 200: 'valid: `{ok: true, errors: [], warnings}`' }, problems: [422] });
  router.post('/runbooks/validate', readYaml, async (req, res) => {
    const result = await validate(yamlBody(req));
    rejectInvalid(result);
    res.json({ ok: true, errors: [], warnings: result.warnings });
  });

  doc.post('/runbooks/plan', {
    summary: 'Validate a runbook and show its power-on plan, without storing it',
    query: PlanQuery,
    body: RUNBOOK_YAML,
    responses: { 200: { description: 'the plan (groups in order, critical path, RTO estimate)', content: { 'application/json': null, 'text/plain': null } } },
    problems: [422],
  });
  router.post('/runbooks/plan', readYaml, async (req, res) => {
    const result = await validate(yamlBody(req));
    rejectInvalid(result);
    const plan = planRunbook(result.runbook!);
    if (planFormat(req) === 'text') res.type('text/plain').send(renderPlan(plan));
    else res.json({ warnings: result.warnings, plan });
  });

  doc.post('/runbooks', {
    summary: 'Submit a runbook: validated, stored as its next version, planned',
    body: RUNBOOK_YAML,
    responses: { 201: 'the stored version (version, sha256, submittedBy, previousVersion, unchangedFromPrevious, warnings, plan); Location names it' },
    problems: [422],
  });
  router.post('/runbooks', requireRole('operator'), readYaml, async (req, res) => {
    const text = yamlBody(req);
    const result = await validate(text);
    rejectInvalid(result);
    const runbook = result.runbook!;
    const plan = planRunbook(runbook);
    const name = runbook.metadata.name;
    noteAuditTarget(res, { runbook: name });
    const previous = (await store.versions(name)).at(-1);
    const record = await store.put(name, text, principalName(req));
    log.info({ runbook: name, version: record.version, sha256: record.sha256, submittedBy: record.submittedBy }, 'runbook version stored');
    res
      .status(201)
      .location(`/runbooks/${name}/versions/${record.version}`)
      .json({ ...record, previousVersion: previous?.version ?? null, unchangedFromPrevious: previous?.sha256 === record.sha256, warnings: result.warnings, plan });
  });

  doc.get('/runbooks', { summary: 'The stored runbooks, with their latest version', responses: { 200: '`{runbooks: [...]}`' } });
  router.get('/runbooks', async (_req, res) => {
    res.json({ runbooks: await store.list() });
  });

  doc.get('/runbooks/:name', { summary: 'A runbook\'s latest version, its text and all its versions', params: RUNBOOK_PARAMS, responses: { 200: 'the latest version with `text` and `versions`' }, problems: [404] });
  router.get('/runbooks/:name', async (req, res) => {
    const name = runbookName(req.params.name);
    const versions = await store.versions(name);
    const newest = versions.at(-1);
    const stored = newest && (await store.get(name, newest.version));
    if (!stored) throw notFound(`no runbook named "${name}"`);
    res.json({ ...stored.record, text: stored.text, versions });
  });

  doc.get('/runbooks/:name/versions/:version', {
    summary: 'One version of a runbook: its YAML text, or with `Accept: application/json` its record and text',
    params: { ...RUNBOOK_PARAMS, version: 'the version number (1, 2, 3, ...)' },
    responses: { 200: { description: 'the version', content: { 'application/json': null, 'application/yaml': null } } },
    problems: [400, 404],
  });
  router.get('/runbooks/:name/versions/:version', async (req, res) => {
    const name = runbookName(req.params.name);
    const version = versionNumber(req.params.version, 'the version');
    const stored = await store.get(name, version);
    if (!stored) throw notFound(`runbook "${name}" has no version ${version}`);
    if (req.accepts(['application/json', ...YAML_CONTENT_TYPES]) === 'application/json') res.json({ ...stored.record, text: stored.text });
    else res.type('application/yaml').send(stored.text);
  });

  doc.get('/runbooks/:name/diff', { summary: 'A unified diff between two versions of a runbook', params: RUNBOOK_PARAMS, query: DiffQuery, responses: { 200: { description: 'the diff', content: { 'text/x-diff': null } } }, problems: [400, 404] });
  router.get('/runbooks/:name/diff', async (req, res) => {
    const name = runbookName(req.params.name);
    const from = versionNumber(req.query.from, 'query parameter "from"');
    const to = versionNumber(req.query.to, 'query parameter "to"');
    const [older, newer] = await Promise.all([store.get(name, from), store.get(name, to)]);
    if (!older || !newer) throw notFound(`runbook "${name}" has no version ${!older ? from : to}`);
    res.type('text/x-diff').send(unifiedDiff(older.text, newer.text, { from: `${name}/${from}.yaml`, to: `${name}/${to}.yaml` }));
  });

  return router;
}
