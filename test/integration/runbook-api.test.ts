import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { generateToken } from '../../api/auth';
import { runbooksRouter } from '../../api/runbooks';
import type { SiteInventory } from '../../runbooks/inventory';
import type { RunbookIssue } from '../../runbooks/issues';
import { SOURCE_LIMITS } from '../../runbooks/source';
import { sha256 } from '../../runbooks/store';
import { validateRunbook } from '../../runbooks/validate';
import { RUNBOOK_SCHEMA_FILE } from '../../runbooks/write-schema';
import { THREE_TIER_PRIMARY_INVENTORY } from '../fixtures/three-tier-inventories';
import { atChaosSize } from '../harness/crashes';
import { useTestStack } from '../harness/stack';
import { useTestApi } from '../harness/testbed';
import { malformedRunbook, THREE_TIER } from '../unit/runbook-malformed';

const SITE_B: SiteInventory = {
  datacenters: ['dc-b'],
  clusters: ['cluster-b1'],
  resourcePools: ['dr-pool'],
  datastores: ['ds-b-ssd', 'ds-b-flash'],
  networks: ['dr-app', 'dr-web', 'dr-replication', 'dr-rocva-internal', 'dr-management', 'test-app', 'test-web'],
  storagePolicies: ['gold-mirrored'],
};
const INVENTORIES: Record<string, SiteInventory> = { 'site-a': THREE_TIER_PRIMARY_INVENTORY, 'site-b': SITE_B };
/**
 * The validator itself meets 5,000 of these documents in test/unit/runbook-fuzz.test.ts; through the
 * API, 1,000 in `npm test` (5,000 under `npm run chaos`) show the HTTP layer answers each with a 4xx.
 */
const FUZZ_DOCUMENTS = atChaosSize(5_000, 1_000);
const NAME = 'shop-three-tier';

interface Problem {
  status: number;
  title: string;
  detail: string;
  errors?: RunbookIssue[];
}

describe('runbooks API on the real S3 server', () => {
  const tokens = { viewer: generateToken(), operator: generateToken() };
  const logLines: string[] = [];
  const documents: string[] = [];

  before(() => {
    // Generated before the server listens: generating blocks the event loop for seconds, long
    // enough for idle keep-alive connections to time out under the client's feet.
    for (let n = 0; documents.length < FUZZ_DOCUMENTS; n++) {
      const text = malformedRunbook(n);
      if (!validateRunbook(text).ok) documents.push(text);
    }
  });
  // A prefix, as a storage site shared by several deployments would use.
  const { stack, settings, runbooks: store } = useTestStack({ prefix: 'tenant-a/' });
  const api = useTestApi({
    principals: [
      { name: 'vera', role: 'viewer', token: tokens.viewer },
      { name: 'otto', role: 'operator', token: tokens.operator },
    ],
    routers: (log) => [runbooksRouter({ store, log, inventoryFor: (site) => INVENTORIES[site] })],
    logLines,
  });

  const call = (path: string, init: { method?: string; token?: string; type?: string; body?: string; accept?: string } = {}) =>
    fetch(`${api.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.type ? { 'content-type': init.type } : {}),
        ...(init.accept ? { accept: init.accept } : {}),
      },
      body: init.body,
    });
  const submit = (body: string, path = '/runbooks', token = tokens.operator, type = 'application/yaml') => call(path, { method: 'POST', token, type, body });

  async function bucketSnapshot(): Promise<Map<string, string>> {
    const snapshot = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await stack.s3Client.send(new ListObjectsV2Command({ Bucket: settings.bucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        const body = await stack.s3Client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: object.Key }));
        snapshot.set(object.Key!, createHash('sha256').update(await body.Body!.transformToByteArray()).digest('hex'));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return snapshot;
  }

  it('needs a token to read, validate and plan, and the operator role to submit', async () => {
    assert.equal((await call('/runbooks')).status, 401);
    const forbidden = await submit(THREE_TIER, '/runbooks', tokens.viewer);
    assert.equal(forbidden.status, 403);
    assert.equal(((await forbidden.json()) as Problem).detail, 'this action needs the operator role; "vera" is a viewer');
    assert.equal((await call('/runbooks', { token: tokens.viewer })).status, 200);
    // Validating and planning store nothing, so viewers may.
    assert.equal((await submit(THREE_TIER, '/runbooks/validate', tokens.viewer)).status, 200);
    assert.equal((await submit(THREE_TIER, '/runbooks/plan', tokens.viewer)).status, 200);
    assert.equal((await call('/runbooks/validate', { method: 'POST', type: 'application/yaml', body: THREE_TIER })).status, 401);
  });

  it('stores a valid runbook as version 1 under the prefix, with who, when and its sha256, and returns the plan', async () => {
    const res = await submit(THREE_TIER);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/runbooks/${NAME}/versions/1`);
    const body = (await res.json()) as { version: number; submittedBy: string; sha256: string; plan: { criticalPath: string[]; rtoEstimateMs: number } };
    assert.equal(body.version, 1);
    assert.equal(body.submittedBy, 'otto');
    assert.equal(body.sha256, sha256(THREE_TIER));
    assert.ok(body.plan.rtoEstimateMs > 0 && body.plan.criticalPath[0] === 'deploy-rocva');

    const head = await stack.s3Client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: `tenant-a/runbooks/${NAME}/1.yaml` }));
    assert.equal(head.Metadata?.['submitted-by'], 'otto');
    assert.equal(head.Metadata?.sha256, sha256(THREE_TIER));
    const index = await stack.s3Client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: `tenant-a/runbooks/${NAME}/index.json` }));
    const parsed = JSON.parse(await index.Body!.transformToString()) as { latest: number; versions: Array<{ version: number }> };
    assert.equal(parsed.latest, 1);
  });

  it('answers 422 with every error located, and stores nothing', async () => {
    const before = await bucketSnapshot();
    const bad = THREE_TIER.replace('      cpus: 8', '      cpu: 8').replace('dependsOn: [app]', 'dependsOn: [apps]');
    const res = await submit(bad);
    assert.equal(res.status, 422);
    assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const problem = (await res.json()) as Problem;
    assert.match(problem.detail, /^the runbook has 1 error\(s\); first at 29:7: unknown key "cpu"/);
    assert.deepEqual(problem.errors?.map((e) => [e.line, e.column, e.path]), [[29, 7, 'spec.vms[0].cpu']]);
    // Shape errors first; once the shape is right, meaning errors come with their own locations.
    const meaning = (await (await submit(THREE_TIER.replace('dependsOn: [app]', 'dependsOn: [apps]'))).json()) as Problem;
    assert.deepEqual(meaning.errors?.map((e) => [e.code, e.path]), [['unknown_group', 'spec.powerOn.groups[2].dependsOn[0]']]);
    assert.deepEqual(await bucketSnapshot(), before);
  });

  it('checks placement against the recovery site inventory', async () => {
    const res = await submit(THREE_TIER.replace('datastore: ds-b-ssd', 'datastore: ds-b-sdd'), '/runbooks/validate');
    assert.equal(res.status, 422);
    assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const body = (await res.json()) as Problem;
    assert.match(body.errors![0].message, /datastore "ds-b-sdd" does not exist at recovery site "site-b"; did you mean "ds-b-ssd"\?/);
    const unknownSite = (await (await submit(THREE_TIER.replace('recovery: site-b', 'recovery: site-z'), '/runbooks/validate')).json()) as { ok: boolean; warnings: RunbookIssue[] };
    assert.equal(unknownSite.ok, true);
    assert.equal(unknownSite.warnings[0].code, 'inventory_unavailable');
  });

  it('refuses other content types with 415 and oversized bodies with 413', async () => {
    const json = await submit('{"kind":"Runbook"}', '/runbooks', tokens.operator, 'application/json');
    assert.equal(json.status, 415);
    assert.match(((await json.json()) as Problem).detail, /Content-Type application\/yaml/);
    assert.equal((await call('/runbooks', { method: 'POST', token: tokens.operator, body: THREE_TIER })).status, 415);
    const huge = await submit(`${THREE_TIER}#${'x'.repeat(SOURCE_LIMITS.maxBytes)}`);
    assert.equal(huge.status, 413);
    const tooLarge = (await huge.json()) as Problem;
    assert.match(tooLarge.detail, new RegExp(`exceeds the limit of ${SOURCE_LIMITS.maxBytes} bytes`));
    assert.equal(tooLarge.title, 'Payload Too Large');
    for (const type of ['text/yaml', 'application/x-yaml; charset=utf-8']) assert.equal((await submit(THREE_TIER, '/runbooks/validate', tokens.operator, type)).status, 200);
  });

  it('tells a runbook in another encoding than UTF-8 by name (415), and decodes one whose charset is declared', async () => {
    const post = (body: Buffer, type = 'application/yaml') => fetch(`${api.url}/runbooks/validate`, { method: 'POST', headers: { authorization: `Bearer ${tokens.operator}`, 'content-type': type }, body });
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(THREE_TIER, 'utf16le')]);
    const refused = await post(utf16);
    assert.equal(refused.status, 415);
    assert.match(((await refused.json()) as Problem).detail, /is UTF-16 text .* runbooks are UTF-8/);
    const latin1 = Buffer.from(`${THREE_TIER}# caf\u00e9\n`, 'latin1');
    const notUtf8 = await post(latin1);
    assert.equal(notUtf8.status, 415);
    const lines = THREE_TIER.split('\n').length;
    assert.match(((await notUtf8.json()) as Problem).detail, new RegExp(`not UTF-8 text: the bytes at line ${lines}, column 6`));
    assert.equal((await post(utf16, 'application/yaml; charset=utf-16le')).status, 200, 'a declared UTF-16 body is decoded');
    assert.equal((await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(THREE_TIER)]))).status, 200, 'a UTF-8 byte order mark is dropped');
  });

  it('validates and plans without storing', async () => {
    const before = await bucketSnapshot();
    const validated = await submit(THREE_TIER, '/runbooks/validate');
    assert.deepEqual(await validated.json(), { ok: true, errors: [], warnings: [] });
    const planned = (await (await submit(THREE_TIER, '/runbooks/plan')).json()) as { plan: { runbook: string; groups: unknown[] } };
    assert.equal(planned.plan.runbook, NAME);
    assert.equal(planned.plan.groups.length, 3);
    const text = await submit(THREE_TIER, '/runbooks/plan?format=text');
    assert.match(await text.text(), /^Plan for runbook shop-three-tier/);
    assert.equal((await submit('kind: x', '/runbooks/plan')).status, 422);
    assert.deepEqual(await bucketSnapshot(), before);
  });

  it('lists runbooks, reads the latest or any version, and diffs two versions', async () => {
    const changed = THREE_TIER.replace('timeout: 30m', 'timeout: 45m');
    const second = (await (await submit(changed)).json()) as { version: number; previousVersion: number };
    assert.deepEqual([second.version, second.previousVersion], [2, 1]);

    const list = (await (await call('/runbooks', { token: tokens.viewer })).json()) as { runbooks: Array<{ name: string; version: number }> };
    assert.deepEqual(list.runbooks.map((r) => [r.name, r.version]), [[NAME, 2]]);
    const latest = (await (await call(`/runbooks/${NAME}`, { token: tokens.viewer })).json()) as { version: number; text: string; versions: unknown[] };
    assert.equal(latest.version, 2);
    assert.equal(latest.text, changed);
    assert.equal(latest.versions.length, 2);
    const first = await call(`/runbooks/${NAME}/versions/1`, { token: tokens.viewer, accept: 'application/yaml' });
    assert.match(first.headers.get('content-type') ?? '', /^application\/yaml/);
    assert.equal(await first.text(), THREE_TIER);

    const diff = await call(`/runbooks/${NAME}/diff?from=1&to=2`, { token: tokens.viewer });
    assert.equal(diff.status, 200);
    const lines = (await diff.text()).split('\n');
    assert.deepEqual(lines.filter((l) => /^[-+] /.test(l)), ['-            timeout: 30m', '+            timeout: 45m']);
    assert.equal(lines[0], `--- ${NAME}/1.yaml`);

    assert.equal((await call(`/runbooks/${NAME}/diff?from=1&to=x`, { token: tokens.viewer })).status, 400);
    assert.equal((await call(`/runbooks/${NAME}/diff?from=1&to=9`, { token: tokens.viewer })).status, 404);
    assert.equal((await call(`/runbooks/${NAME}/versions/0`, { token: tokens.viewer })).status, 400);
    assert.equal((await call(`/runbooks/${NAME}/versions/7`, { token: tokens.viewer })).status, 404);
    assert.equal((await call('/runbooks/no-such-runbook', { token: tokens.viewer })).status, 404);
    assert.equal((await call('/runbooks/..%2F..%2Fsecrets', { token: tokens.viewer })).status, 404);
  });

  it('serves the JSON Schema that is committed in the repository', async () => {
    const res = await call('/runbooks/schema.json', { token: tokens.viewer });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/schema\+json/);
    assert.deepEqual(await res.json(), JSON.parse(readFileSync(RUNBOOK_SCHEMA_FILE, 'utf8')));
  });

  it('gives concurrent submitters distinct versions and never overwrites one', async () => {
    const texts = Array.from({ length: 5 }, (_, i) => THREE_TIER.replace('tier: gold', `tier: gold-${i}`));
    const results = await Promise.all(texts.map(async (text) => ({ text, body: (await (await submit(text)).json()) as { version: number } })));
    const versions = results.map((r) => r.body.version).sort((a, b) => a - b);
    assert.deepEqual(versions, [3, 4, 5, 6, 7]);
    for (const { text, body } of results) assert.equal((await store.get(NAME, body.version))?.text, text);
    assert.deepEqual((await store.versions(NAME)).map((v) => v.version), [1, 2, 3, 4, 5, 6, 7]);
  });

  it('finds a version whose writer died before updating the index, and numbers after it', async () => {
    await stack.s3Client.send(
      new PutObjectCommand({
        Bucket: settings.bucket,
        Key: `tenant-a/runbooks/${NAME}/8.yaml`,
        Body: THREE_TIER,
        IfNoneMatch: '*',
        Metadata: { 'submitted-by': 'crashed', 'submitted-at': new Date(0).toISOString(), sha256: sha256(THREE_TIER) },
      }),
    );
    const latest = (await (await call(`/runbooks/${NAME}`, { token: tokens.viewer })).json()) as { version: number; submittedBy: string };
    assert.deepEqual([latest.version, latest.submittedBy], [8, 'crashed']);
    const next = (await (await submit(THREE_TIER)).json()) as { version: number };
    assert.equal(next.version, 9);
    assert.deepEqual((await store.versions(NAME)).map((v) => v.version), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it(`survives ${FUZZ_DOCUMENTS} malformed documents: only 4xx, no 5xx, nothing stored changes`, async () => {
    const before = await bucketSnapshot();
    const statuses = new Map<number, number>();
    const paths = ['/runbooks', '/runbooks', '/runbooks/validate', '/runbooks/plan'];
    let next = 0;
    const worker = async () => {
      while (next < documents.length) {
        const i = next++;
        const type = i % 50 === 7 ? 'application/octet-stream' : 'application/yaml';
        const res = await submit(documents[i], paths[i % paths.length], tokens.operator, type).catch((error: unknown) => {
          throw new Error(`document ${i} (${type}, ${documents[i].length} characters) to ${paths[i % paths.length]}: ${String(error)}`, { cause: error });
        });
        const body = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        assert.ok(res.status >= 400 && res.status < 500, `document ${i} got ${res.status}: ${body.slice(0, 300)}`);
        assert.match(res.headers.get('content-type') ?? '', /^application\/(problem\+)?json/);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.ok((statuses.get(422) ?? 0) > FUZZ_DOCUMENTS / 2, JSON.stringify([...statuses]));
    assert.deepEqual(await bucketSnapshot(), before);
    assert.equal(logLines.filter((l) => l.includes('unhandled API error')).length, 0);
    for (const line of logLines) assert.ok(!line.includes(tokens.operator), 'a token reached the log');
  });
});
