/**
 * The API process (api/server.ts) on real servers under load and fuzz. Load: 200 clients at once,
 * reads and writes mixed (runbook submissions, tokens, operation requests, some with bad tokens):
 * no 5xx, every accepted write readable afterwards, latency reported. Fuzz: generated bad requests
 * for every route of GET /openapi.json (a new route is fuzzed without touching this file): only
 * documented 4xx problem+json for what changes state, never a 5xx, a hang or a crash, and nothing
 * stored changes. `npm test` runs 10 s of load and 5,000 bad requests in all; `npm run chaos` the
 * full size (DR_CHAOS=1: 60 s, 10,000 requests per route), whose figures go to bench/results/api-load.json.
 */
import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { generateToken, hashToken } from '../../api/auth';
import { writeBenchResults } from '../../bench/results-file';
import { fuzzRequest, fuzzRoutes, requestSeed, type FuzzContext, type FuzzRequest, type OpenApiDocument } from '../harness/api-fuzz';
import { startApiProcess } from '../harness/api-processes';
import { answerChecker } from '../harness/openapi-responses';
import { recordingSite, recordingSiteRunbook } from '../harness/recording-site';
import { useFixture, useTestStack } from '../harness/stack';
import { useInProcessWorkers } from '../harness/workers';

const FULL = process.env.DR_CHAOS === '1';
const CLIENTS = 200;
const LOAD_MS = FULL ? 60_000 : 10_000;
/** Per route at full size; in `npm test` about half as many in all, spread over the routes. */
const FUZZ_REQUESTS = 10_000;
const FUZZ_IN_FLIGHT = 16;
/** At full size the run takes an hour: it says how far it is. */
const PROGRESS_EVERY = 20_000;
/**
 * A request with no answer within a minute hangs. Not tighter: 200 clients arriving at once on a
 * busy 2-core CI machine queue for seconds behind each other, which is load, not a hang.
 */
const HANG_MS = 60_000;
const RUN_SEED = Number(process.env.DR_FUZZ_SEED ?? randomInt(2 ** 31));
const DOMAINS = ['load-0', 'load-1', 'load-2', 'load-3', 'load-4'];

const runbookOf = (domain: string, note: string) =>
  recordingSiteRunbook(domain, ['{ name: db-1 }', '{ name: app-1 }'], `    groups:
      - name: database
        vms: [{ name: db-1 }]
      - name: app
        dependsOn: [database]
        before:
          - { name: go-ahead, type: approval, approvers: [otto], timeout: 1h }
        vms: [{ name: app-1 }]
`).replace('protectedDomain: demo', `protectedDomain: ${domain}`) + `# ${note}\n`;

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
  ms: number;
}

/**
 * One HTTP request on a keep-alive agent, with every header and byte as given (fetch would correct
 * some). Sent again once when a kept-alive connection turns out closed by the server as it was
 * reused (it closes after answering a body it did not read), as Node's documentation advises.
 */
async function send(url: string, agent: Agent, sent: Omit<FuzzRequest, 'wrong'>): Promise<Answer> {
  try {
    return await sendOnce(url, agent, sent);
  } catch (error) {
    if ((error as { reusedSocket?: boolean }).reusedSocket && (error as NodeJS.ErrnoException).code === 'ECONNRESET') return sendOnce(url, agent, sent);
    throw error;
  }
}

function sendOnce(url: string, agent: Agent, { method, path: route, headers, body }: Omit<FuzzRequest, 'wrong'>): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    // The path as given: a URL would resolve its dot segments.
    // A body's length always framed: without it Node sends a GET's body unframed, which the server reads as the next request.
    const framed = body ? { ...headers, 'content-length': String(body.length) } : headers;
    const req = request({ hostname, port, path: route, method, headers: framed, agent, timeout: HANG_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${HANG_MS} ms`)));
    req.on('error', (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })));
    req.end(body);
  });
}

/** How many requests took how long: the median, the 99th percentile and the slowest, in ms. */
function summary(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const percentile = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0);
  return { requests: sorted.length, p50: percentile(50), p99: percentile(99), max: Math.round(sorted.at(-1) ?? 0) };
}
const countBy = (values: Iterable<number | string>) => {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
};

describe('the API process under 200 concurrent clients and generated bad requests', () => {
  const principals = { admin: generateToken(), operator: generateToken(), viewer: generateToken() };
  const site = recordingSite(10);
  const { stack, settings } = useTestStack();
  // The domains' operations desks and power-on plans run here; the API is a process of its own.
  useInProcessWorkers(stack, 'recovery', () => site.activities);
  const api = useFixture(
    'the API process',
    async () => {
      const file = path.join(stack.dir, 'api-tokens.json');
      const tokens = Object.entries(principals).map(([role, token]) => ({ name: role === 'operator' ? 'otto' : role, role, sha256: hashToken(token) }));
      writeFileSync(file, JSON.stringify({ tokens }), { mode: 0o600 });
      const server = await startApiProcess(stack, 'api', { DR_API_TOKENS_FILE: file });
      return { server, agent: new Agent({ keepAlive: true, maxSockets: CLIENTS }) };
    },
    async ({ server, agent }) => {
      agent.destroy();
      await server.child.stop();
    },
  );
  const call = (method: string, route: string, token: string | undefined, body?: unknown, type = 'application/json') =>
    send(api.server.url, api.agent, {
      method,
      path: route,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
      ...(body !== undefined ? { body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) } : {}),
    });
  const json = (answer: Answer) => JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
  const operations: string[] = [];
  /** What the load and the fuzz measured, for the results file of a full-size run. */
  let loadFigures: Record<string, unknown> = {};
  let fuzzFigures: Record<string, unknown> = {};

  it(`serves ${CLIENTS} clients for ${LOAD_MS / 1000} s with no 5xx, and every write it accepted reads back`, async (t) => {
    const runbooks: Array<{ name: string; version: number; sha256: string }> = [];
    const tokens: Array<{ name: string; token: string }> = [];
    const latencies: number[] = [];
    const statuses: number[] = [];
    const failures: string[] = [];
    const byKind = new Map<string, number[]>();

    /** Each action is one request, as an operator's script or a dashboard would make it. */
    const actions: Array<{ kind: string; weight: number; run: (client: number, n: number) => Promise<Answer> }> = [
      { kind: 'read', weight: 40, run: (client) => call('GET', ['/runbooks', '/domains', `/domains/${DOMAINS[client % 5]}`, `/domains/${DOMAINS[client % 5]}/operations`, '/storage/domains', `/runbooks/${DOMAINS[client % 5]}`][client % 6], principals.viewer) },
      { kind: 'admin read', weight: 4, run: () => call('GET', '/tokens', principals.admin) },
      {
        kind: 'runbook submission',
        weight: 15,
        run: async (client, n) => {
          const name = DOMAINS[(client + n) % 5];
          const text = runbookOf(name, `client ${client} submission ${n}`);
          const answer = await call('POST', '/runbooks', principals.operator, text, 'application/yaml');
          if (answer.status === 201) runbooks.push({ name, version: Number(json(answer).version), sha256: createHash('sha256').update(text).digest('hex') });
          return answer;
        },
      },
      {
        kind: 'operation request',
        weight: 15,
        run: async (client, n) => {
          const domain = DOMAINS[(client + n) % 5];
          // A power-on per domain is accepted and waits at its approval; the rest are refused by the desk (409) or the mode table.
          const answer = n % 3 === 0 ? await call('POST', `/domains/${domain}/failover`, principals.operator, { type: 'planned' }) : await call('POST', `/domains/${domain}/power-on`, principals.operator, { runbook: domain });
          if (answer.status === 202) operations.push(String(json(answer).workflowId));
          return answer;
        },
      },
      { kind: 'restore point', weight: 6, run: (client, n) => call('POST', `/domains/${DOMAINS[client % 5]}/restore-points`, principals.operator, { label: `client ${client} ${n}` }) },
      {
        kind: 'token issue',
        weight: 4,
        run: async (client, n) => {
          const name = `load-${client}-${n}`;
          const answer = await call('POST', '/tokens', principals.admin, { name, role: 'viewer' });
          if (answer.status === 201) tokens.push({ name, token: String(json(answer).token) });
          return answer;
        },
      },
      { kind: 'bad token', weight: 10, run: (client) => call(client % 2 ? 'GET' : 'POST', '/runbooks', client % 4 < 2 ? generateToken() : 'not-a-token', client % 2 ? undefined : 'x', 'application/yaml') },
      { kind: 'viewer writing', weight: 6, run: (client) => call('POST', `/domains/${DOMAINS[client % 5]}/power-on`, principals.viewer, { runbook: DOMAINS[client % 5] }) },
    ];
    const totalWeight = actions.reduce((sum, a) => sum + a.weight, 0);
    const pickAction = (r: number) => {
      let left = r * totalWeight;
      return actions.find((a) => (left -= a.weight) < 0) ?? actions[0];
    };

    for (const domain of DOMAINS) assert.equal((await call('POST', '/runbooks', principals.operator, runbookOf(domain, 'first'), 'application/yaml')).status, 201);
    const started = performance.now();
    const until = started + LOAD_MS;
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let n = 0; performance.now() < until; n++) {
          const action = pickAction(Math.random());
          try {
            const answer = await action.run(client, n);
            latencies.push(answer.ms);
            byKind.set(action.kind, [...(byKind.get(action.kind) ?? []), answer.ms]);
            statuses.push(answer.status);
            if (answer.status >= 500) failures.push(`${action.kind} (client ${client}, #${n}) answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
            else if (answer.status >= 400 && !answer.contentType.startsWith('application/problem+json')) failures.push(`${action.kind} answered ${answer.status} as ${answer.contentType}`);
          } catch (error) {
            failures.push(`${action.kind} (client ${client}, #${n}) got no answer: ${(error as Error).message}`);
          }
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const figures = {
      clients: CLIENTS,
      seconds: Math.round(seconds),
      requests: latencies.length,
      requestsPerSecond: Math.round(latencies.length / seconds),
      latencyMs: summary(latencies),
      byStatus: countBy(statuses),
      byKind: Object.fromEntries([...byKind].map(([kind, ms]) => [kind, summary(ms)])),
      accepted: { runbookVersions: runbooks.length, tokens: tokens.length, operations: operations.length },
    };
    t.diagnostic(`load: ${JSON.stringify(figures)}`);
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`);

    // Every accepted write reads back as it was accepted.
    assert.ok(runbooks.length > 0 && tokens.length > 0 && operations.length > 0, JSON.stringify(figures.accepted));
    for (const { name, version, sha256 } of runbooks) {
      const answer = await call('GET', `/runbooks/${name}/versions/${version}`, principals.viewer);
      assert.equal(answer.status, 200, `${name} v${version}`);
      assert.equal(createHash('sha256').update(String(json(answer).text)).digest('hex'), sha256, `${name} v${version} holds what was submitted`);
    }
    assert.equal(new Set(runbooks.map((r) => `${r.name}/${r.version}`)).size, runbooks.length, 'no version given to two submissions');
    const listed = (json(await call('GET', '/tokens', principals.admin)).tokens as Array<{ name: string }>).map((token) => token.name);
    for (const { name, token } of tokens) {
      assert.ok(listed.includes(name), `token ${name} is listed`);
      assert.equal((await call('GET', '/runbooks', token)).status, 200, `token ${name} is admitted`);
    }
    for (const id of operations) {
      const answer = await call('GET', `/operations/${encodeURIComponent(id)}`, principals.viewer);
      assert.equal(answer.status, 200, id);
      assert.equal(json(answer).status, 'RUNNING', `${id} waits at its approval`);
    }
    assert.equal(operations.length, DOMAINS.length, 'one power-on per domain: the desks refused every second one');
    loadFigures = figures;
  });


  it(`answers ${FULL ? FUZZ_REQUESTS : `in all about ${FUZZ_REQUESTS / 2}`} generated bad requests ${FULL ? 'to every route' : 'spread over the routes'} with documented problems, never a 5xx, a hang or a crash, and stores nothing (seed ${RUN_SEED}; DR_FUZZ_SEED repeats it)`, async (t) => {
    const document = json(await call('GET', '/openapi.json', undefined)) as unknown as OpenApiDocument;
    const routes = fuzzRoutes(document);
    const check = answerChecker(document as never);
    const perRoute = FULL ? FUZZ_REQUESTS : Math.ceil(FUZZ_REQUESTS / 2 / routes.length);
    const context: FuzzContext = { tokens: principals, known: { domain: [DOMAINS[0]], name: [DOMAINS[0]], version: ['1'], id: [operations[0] ?? 'none'] } };
    const objectsBefore = await storedObjects();
    const workflowsBefore = await workflowIds();

    // Round-robin over the routes, so that every route is fuzzed while the others are.
    const queue = Array.from({ length: perRoute }, (_, n) => routes.map((route) => ({ route, n }))).flat();
    const failures: string[] = [];
    const statuses: number[] = [];
    const started = performance.now();
    let taken = 0;
    await Promise.all(
      Array.from({ length: FUZZ_IN_FLIGHT }, async () => {
        for (let next = queue[taken++]; next; next = queue[taken++]) {
          const { route, n } = next;
          if (FULL && taken % PROGRESS_EVERY === 0) process.stderr.write(`fuzz: ${taken} of ${queue.length} sent after ${Math.round((performance.now() - started) / 1000)} s\n`);
          const name = `${route.method} ${route.template}`;
          const seed = requestSeed(RUN_SEED, name, n);
          const sent = fuzzRequest(route, seed, context);
          const shown = `${name} (seed ${seed}, wrong ${sent.wrong}): ${sent.method} ${sent.path.slice(0, 200)}`;
          try {
            const answer = await send(api.server.url, api.agent, sent);
            statuses.push(answer.status);
            const wrong = check({ method: sent.method, path: sent.path.split('?')[0], status: answer.status, contentType: answer.contentType, body: answer.body });
            if (answer.status >= 500) failures.push(`${shown} answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
            else if (route.method !== 'GET' && answer.status < 300) failures.push(`${shown} was accepted (${answer.status}) though it is invalid`);
            else if (answer.status >= 400 && !answer.contentType.startsWith('application/problem+json')) failures.push(`${shown} answered ${answer.status} as ${answer.contentType}`);
            else if (wrong) failures.push(`${shown}: ${wrong}`);
          } catch (error) {
            failures.push(`${shown} got no answer: ${(error as Error).message}`);
          }
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    fuzzFigures = { seed: RUN_SEED, routes: routes.length, requestsPerRoute: perRoute, requests: statuses.length, seconds: Math.round(seconds), requestsPerSecond: Math.round(statuses.length / seconds), byStatus: countBy(statuses) };
    t.diagnostic(`fuzz: ${JSON.stringify(fuzzFigures)}`);
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures (seed ${RUN_SEED})`);

    assert.equal(api.server.child.hasExited(), false, 'the API process is alive');
    assert.equal((await call('GET', '/healthz', undefined)).status, 200);
    assert.deepEqual(await storedObjects(), objectsBefore, 'the store holds what it held before the fuzz');
    assert.deepEqual(await workflowIds(), workflowsBefore, 'no operation was started');
    if (FULL) writeBenchResults('api-load', { scale: 'full (DR_CHAOS=1)', load: loadFigures, fuzz: fuzzFigures });
  });

  /** Every object of the bucket but the audit trail and tokens' last use, which every authenticated call may write. */
  async function storedObjects(): Promise<Map<string, string>> {
    const objects = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await stack.s3Client.send(new ListObjectsV2Command({ Bucket: settings.bucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        if (!/^control\/(audit|audit-by-domain|token-last-use)\//.test(object.Key!)) objects.set(object.Key!, `${object.ETag} ${object.Size}`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }
  /** Every workflow but the power-on groups of the operations the load started, which start as their plans go on. */
  async function workflowIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const workflow of stack.client.workflow.list()) {
      if (!operations.includes(workflow.parentExecution?.workflowId ?? '')) ids.push(workflow.workflowId);
    }
    return ids.sort();
  }
});
