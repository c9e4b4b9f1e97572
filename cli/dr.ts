/**
 * `npm run dr -- <command>` (or `npx dr <command>`): the operator's command line over the HTTP API.
 * It takes the token from DR_TOKEN, or the local operator's from the tokens file `npm start`
 * generated, and the API's address from DR_API_URL (default: the embedded stack's). Operations are
 * followed to their end with live progress (plain lines when the output is not a terminal);
 * `--json` prints what the API answered. Exit codes: 0 succeeded, 1 failed, aborted or refused,
 * 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSettings } from '../common/config';
import { readLocalToken } from '../stack/credentials';
import { ApiRefusal, ApiUnreachable, apiClient, type ApiClient } from './api-client';
import { endLines, EXIT, watchOperation, type OperationView } from './progress';

const USAGE = `usage: npm run dr -- <command> [options]   (--json: machine-readable output)
  domains                                   every protected domain: mode, owner, RPO, what runs
  sites                                     each site and its workers
  status <domain>                           one domain in full
  failover <domain> [--forced --confirm <domain>] [--point-in-time <point id|ISO time>] [--runbook <name>] [--version <n>] [--no-watch]
  continuous-failover <domain> [--runbook <name>] [--version <n>]
  failback <domain> [--forced --confirm <domain>] [--no-watch]
  continuous-failback <domain>
  permanent-failover <domain> --confirm <domain> [--new-recovery-site <site>] [--no-watch]
  drill <domain> [--keep-for <duration>] [--point-in-time <...>] [--no-watch]
  drill-schedule show|delete <domain> | set <domain> --cron "<expr>" [--keep-for <duration>]   drills on a Temporal Schedule
  restore <domain> --point-in-time <...> --confirm <domain> [--vms a,b] [--no-watch]
  restore-points <domain>                   the domain's restore points
  watch <operation id>                      follow an operation to its end
  approve <operation id> --step <name> [--decision approve|reject]
  resume|retry|skip <operation id> --target <group or step>
  cancel <operation id>
  cleanup <operation id> [--force]          end a kept drill now
  runbooks list | submit <file.yaml> | plan <file.yaml> | diff <name> <from> <to>
  tokens list | create <name> --role viewer|operator|admin | revoke <name>     (admin)
  audit [--domain <domain>] [--since <ISO time>] [--limit <n>]               (admin) who did what`;

class UsageError extends Error {}
/** Something the command needs from its environment is missing (exit 2, without the usage). */
class SetupError extends Error {}

const OPTIONS = {
  json: { type: 'boolean' },
  forced: { type: 'boolean' },
  confirm: { type: 'string' },
  'point-in-time': { type: 'string' },
  runbook: { type: 'string' },
  version: { type: 'string' },
  'no-watch': { type: 'boolean' },
  'new-recovery-site': { type: 'string' },
  'keep-for': { type: 'string' },
  cron: { type: 'string' },
  vms: { type: 'string' },
  step: { type: 'string' },
  decision: { type: 'string' },
  target: { type: 'string' },
  force: { type: 'boolean' },
  role: { type: 'string' },
  domain: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Options = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

interface Context {
  api: ApiClient;
  options: Options;
  out: (text: string) => void;
  tty: boolean;
}

/** Token and audit commands need an admin: without DR_TOKEN, the local admin's token is taken for them. */
const ADMIN_COMMANDS = new Set(['tokens', 'audit']);

function token(command: string): string {
  if (process.env.DR_TOKEN) return process.env.DR_TOKEN;
  try {
    return readLocalToken(loadSettings().dataDir, ADMIN_COMMANDS.has(command) ? 'admin' : 'operator');
  } catch {
    throw new SetupError('no API token: set DR_TOKEN, or run `npm start` once so that the local tokens exist');
  }
}

const pointInTime = (text: string) => (/^\d{4}-\d{2}-\d{2}T/.test(text) ? { at: text } : { restorePoint: text });

function runbookRef(options: Options) {
  if (options.version !== undefined && !/^[1-9]\d*$/.test(options.version)) throw new UsageError('--version must be a version number');
  return { ...(options.runbook ? { runbook: options.runbook } : {}), ...(options.version ? { version: Number(options.version) } : {}) };
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${what} is missing`);
  return value;
}

/** Starts an operation; follows it to its end unless `--no-watch` or `watch` is false. */
async function start(ctx: Context, route: string, body: Record<string, unknown>, watch = !ctx.options['no-watch']): Promise<number> {
  const started = await ctx.api.post(route, body);
  const workflowId = String(started.completes ?? started.workflowId);
  if (!watch) {
    ctx.out(ctx.options.json ? JSON.stringify(started, null, 2) : `${workflowId} started; follow it with: npm run dr -- watch ${workflowId}`);
    return EXIT.succeeded;
  }
  if (!ctx.options.json) ctx.out(`${workflowId} started${started.drillGivingWay ? ` (drill ${(started.drillGivingWay as { workflowId: string }).workflowId} is cleaned up out of its way)` : ''}`);
  return follow(ctx, workflowId);
}

async function follow(ctx: Context, workflowId: string): Promise<number> {
  const view: OperationView = await watchOperation(ctx.api, workflowId, { tty: ctx.tty && !ctx.options.json, write: (text) => process.stdout.write(ctx.options.json ? '' : text) });
  const { lines, exitCode } = endLines(view);
  ctx.out(ctx.options.json ? JSON.stringify(view, null, 2) : lines.join('\n'));
  return exitCode;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

interface DomainLine {
  domain: string;
  mode: string;
  owner: { site: string; epoch: number } | null;
  protection: { mode: string; failing?: { reason: string } } | null;
  rpo: { seconds: number; targetSeconds: number | null; breached: boolean } | null;
  running: { workflowId: string } | null;
  drill: { workflowId: string } | null;
  lastDrill: { outcome: string; endedAt: string } | null;
  warnings?: string[];
}

async function domains(ctx: Context): Promise<number> {
  const lines = (await ctx.api.get('/domains')).domains as DomainLine[];
  if (ctx.options.json) return printed(ctx, lines);
  const rows = [['DOMAIN', 'MODE', 'OWNER', 'PROTECTION', 'RPO', 'RUNNING', 'LAST DRILL']];
  for (const d of lines) {
    const target = d.rpo?.targetSeconds != null ? `/${d.rpo.targetSeconds}s${d.rpo.breached ? ' BREACHED' : ''}` : '';
    rows.push([d.domain, d.mode, d.owner ? `${d.owner.site}#${d.owner.epoch}` : '-', d.protection ? `${d.protection.mode}${d.protection.failing ? ` FAILING (${d.protection.failing.reason})` : ''}` : '?', d.rpo ? `${d.rpo.seconds}s${target}` : '?', d.running?.workflowId ?? d.drill?.workflowId ?? '-', d.lastDrill ? `${d.lastDrill.outcome} ${d.lastDrill.endedAt}` : '-']);
  }
  ctx.out(table(rows));
  for (const d of lines) for (const w of d.warnings ?? []) ctx.out(`warning: ${d.domain}: ${w}`);
  return EXIT.succeeded;
}

async function show(ctx: Context, route: string): Promise<number> {
  ctx.out(JSON.stringify(await ctx.api.get(route), null, 2));
  return EXIT.succeeded;
}

async function runbooks(ctx: Context, [action, ...args]: string[]): Promise<number> {
  const file = () => readFileSync(need(args[0], 'the runbook file'), 'utf8');
  if (action === 'list') return show(ctx, '/runbooks');
  if (action === 'submit') return printed(ctx, await ctx.api.send('/runbooks', file(), 'application/yaml'));
  if (action === 'plan') return printed(ctx, await ctx.api.send(`/runbooks/plan${ctx.options.json ? '' : '?format=text'}`, file(), 'application/yaml'));
  if (action === 'diff') {
    ctx.out(await ctx.api.text(`/runbooks/${need(args[0], 'the runbook name')}/diff/${need(args[1], 'the older version')}/${need(args[2], 'the newer version')}`));
    return EXIT.succeeded;
  }
  throw new UsageError(`runbooks ${action ?? ''}: expected list, submit, plan or diff`);
}

interface TokenLine {
  name: string;
  role: string;
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
}

async function tokens(ctx: Context, [action, name]: string[]): Promise<number> {
  if (action === 'list') {
    const listed = (await ctx.api.get('/tokens')).tokens as TokenLine[];
    if (ctx.options.json) return printed(ctx, listed);
    ctx.out(table([['NAME', 'ROLE', 'CREATED', 'BY', 'LAST USED'], ...listed.map((t) => [t.name, t.role, t.createdAt, t.createdBy, t.lastUsedAt ?? '-'])]));
    return EXIT.succeeded;
  }
  if (action === 'create') {
    const issued = await ctx.api.post('/tokens', { name: need(name, 'the token name'), role: need(ctx.options.role, '--role viewer|operator|admin') });
    if (ctx.options.json) return printed(ctx, issued);
    ctx.out(`${String(issued.token)}\n(the ${String(issued.role)} token "${String(issued.name)}": shown this once, keep it in a secret store)`);
    return EXIT.succeeded;
  }
  if (action === 'revoke') return printed(ctx, await ctx.api.delete(`/tokens/${encodeURIComponent(need(name, 'the token name'))}`));
  throw new UsageError(`tokens ${action ?? ''}: expected list, create or revoke`);
}

async function drillSchedule(ctx: Context, [action, name]: string[]): Promise<number> {
  const path = `/domains/${encodeURIComponent(need(name, 'the domain'))}/drill-schedule`;
  if (action === 'show') return printed(ctx, await ctx.api.get(path));
  if (action === 'delete') return printed(ctx, await ctx.api.delete(path));
  if (action === 'set') {
    return printed(ctx, await ctx.api.post(path, { cron: need(ctx.options.cron, '--cron "<expr>"'), ...(ctx.options['keep-for'] ? { keepFor: ctx.options['keep-for'] } : {}), ...runbookRef(ctx.options) }));
  }
  throw new UsageError(`drill-schedule ${action ?? ''}: expected show, set or delete`);
}

interface AuditLine {
  time: string;
  requestId: string;
  who: { name: string; role: string };
  method: string;
  route: string;
  target: Record<string, string>;
  status: number;
}

async function audit(ctx: Context): Promise<number> {
  const { domain, since, limit } = ctx.options;
  const query = new URLSearchParams({ ...(domain ? { domain } : {}), ...(since ? { since } : {}), ...(limit ? { limit } : {}) }).toString();
  const answer = await ctx.api.get(`/audit${query ? `?${query}` : ''}`);
  if (ctx.options.json) return printed(ctx, answer);
  const entries = answer.entries as AuditLine[];
  const target = (t: Record<string, string>) => Object.entries(t).map(([kind, name]) => `${kind}:${name}`).join(' ') || '-';
  ctx.out(table([['TIME', 'WHO', 'ROLE', 'CALL', 'TARGET', 'STATUS', 'REQUEST ID'], ...entries.map((e) => [e.time, e.who.name, e.who.role, `${e.method} ${e.route}`, target(e.target), String(e.status), e.requestId])]));
  if (answer.more) ctx.out(`(more: ask again with --since ${entries.at(-1)?.time ?? ''})`);
  return EXIT.succeeded;
}

function printed(ctx: Context, body: unknown): number {
  ctx.out(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  return EXIT.succeeded;
}

async function run(ctx: Context, command: string, args: string[]): Promise<number> {
  const { options } = ctx;
  const domain = () => encodeURIComponent(need(args[0], 'the domain'));
  const operation = () => `/operations/${encodeURIComponent(need(args[0], 'the operation id'))}`;
  const handover = () => ({ type: options.forced ? 'forced' : 'planned', ...(options.confirm ? { confirm: options.confirm } : {}), ...runbookRef(options) });
  switch (command) {
    case 'domains':
      return domains(ctx);
    case 'sites':
      return show(ctx, '/sites');
    case 'status':
      return show(ctx, `/domains/${domain()}`);
    case 'restore-points':
      return show(ctx, `/domains/${domain()}/restore-points`);
    case 'failover':
      return start(ctx, `/domains/${domain()}/failover`, { ...handover(), ...(options['point-in-time'] ? { pointInTime: pointInTime(options['point-in-time']) } : {}) });
    case 'failback':
      return start(ctx, `/domains/${domain()}/failback`, handover());
    case 'continuous-failover':
      return start(ctx, `/domains/${domain()}/continuous-failover`, runbookRef(options), false);
    case 'continuous-failback':
      return start(ctx, `/domains/${domain()}/continuous-failback`, runbookRef(options), false);
    case 'permanent-failover':
      return start(ctx, `/domains/${domain()}/permanent-failover`, { confirm: need(options.confirm, '--confirm <domain>'), ...(options['new-recovery-site'] ? { newRecoverySite: options['new-recovery-site'] } : {}), ...runbookRef(options) });
    case 'drill':
      return start(ctx, `/domains/${domain()}/drill`, { ...runbookRef(options), ...(options['keep-for'] ? { keepFor: options['keep-for'] } : {}), ...(options['point-in-time'] ? { pointInTime: pointInTime(options['point-in-time']) } : {}) });
    case 'drill-schedule':
      return drillSchedule(ctx, args);
    case 'restore':
      return start(ctx, `/domains/${domain()}/restore`, {
        pointInTime: pointInTime(need(options['point-in-time'], '--point-in-time')),
        confirm: need(options.confirm, '--confirm <domain>'),
        ...(options.vms ? { vms: options.vms.split(',').map((v) => v.trim()) } : {}),
        ...runbookRef(options),
      });
    case 'watch':
      return follow(ctx, need(args[0], 'the operation id'));
    case 'approve':
      return printed(ctx, await ctx.api.post(`${operation()}/approve`, { step: need(options.step, '--step'), ...(options.decision ? { decision: options.decision } : {}) }));
    case 'resume':
    case 'retry':
    case 'skip':
      return printed(ctx, await ctx.api.post(`${operation()}/${command}`, { target: need(options.target, '--target') }));
    case 'cancel':
      return printed(ctx, await ctx.api.post(`${operation()}/cancel`));
    case 'cleanup':
      return printed(ctx, await ctx.api.post(`${operation()}/cleanup`, options.force ? { force: true } : {}));
    case 'runbooks':
      return runbooks(ctx, args);
    case 'tokens':
      return tokens(ctx, args);
    case 'audit':
      return audit(ctx);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return EXIT.usage;
  }
  const [command, ...args] = parsed.positionals;
  if (!command || parsed.values.help) {
    console.error(USAGE);
    return command ? EXIT.succeeded : EXIT.usage;
  }
  try {
    const { api: settings } = loadSettings();
    const api = apiClient(process.env.DR_API_URL ?? `http://${settings.host}:${settings.port}`, token(command));
    return await run({ api, options: parsed.values, out: (text) => console.log(text), tty: process.stdout.isTTY === true }, command, args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n${USAGE}`);
      return EXIT.usage;
    }
    if (error instanceof SetupError) {
      console.error(error.message);
      return EXIT.usage;
    }
    if (error instanceof ApiRefusal || error instanceof ApiUnreachable) {
      console.error(error.message);
      return EXIT.failed;
    }
    throw error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(EXIT.failed);
    },
  );
}
