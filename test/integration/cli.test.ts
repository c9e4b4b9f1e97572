import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { domainListRouter } from '../../api/domain-list';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml } from '../fixtures/failover-domains';
import { runCli } from '../harness/cli';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

const DOMAIN = 'charlie';
/** Anything a terminal would interpret: escape sequences, carriage returns, other C0 controls but newline. */
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

describe('the command line against a running stack: the domain list, a failover followed to its end with plain progress lines, exit codes', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({
    principals: [operator],
    routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log }), domainListRouter({ client: stack.client, store, runbooks, log })],
  });
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 20, blockSize: 4096, pattern: 'random', seed: 'cli' });
    await protectAtPrimary(stack.client, DOMAIN);
  });

  const dr = (...args: string[]) => runCli({ url: api.url, token: operator.token }, ...args);

  it('submits the runbook and lists the domain', async () => {
    const file = path.join(stack.dir, `${DOMAIN}.yaml`);
    writeFileSync(file, runbookYaml(DOMAIN, {}));
    const submitted = await dr('runbooks', 'submit', file);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal((JSON.parse(submitted.stdout) as { version: number }).version, 1);
    const listed = await dr('domains');
    assert.equal(listed.code, 0, listed.stderr);
    const [header, line] = listed.stdout.trimEnd().split('\n');
    assert.match(header, /^DOMAIN\s+MODE\s+OWNER\s+PROTECTION\s+RPO\s+RUNNING\s+LAST DRILL$/);
    assert.match(line, new RegExp(`^${DOMAIN}\\s+Protected\\s+primary#1\\s`));
  });

  it('refuses a forced failover without confirmation (exit 1, the API\'s words), and a usage error (exit 2)', async () => {
    const refused = await dr('failover', DOMAIN, '--forced');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /400 .*confirm by sending "confirm": "charlie"/);
    const unknown = await dr('fail-over', DOMAIN);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "fail-over"/);
    assert.equal((await dr('failover', DOMAIN, '--frced')).code, 2, 'an unknown option');
  });

  it('fails the domain over and follows it to its end: plain lines of phases and steps, no control characters, the outcome and exit 0', async () => {
    const run = await dr('failover', DOMAIN, '--forced', '--confirm', DOMAIN);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.doesNotMatch(run.stdout, CONTROL, 'no control characters when the output is not a terminal');
    const lines = run.stdout.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^failover/${DOMAIN}/\\S+ started$`));
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d phase: /.test(l)), run.stdout);
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d done: power on/.test(l)), run.stdout);
    assert.ok(lines.some((l) => new RegExp(`^failover/${DOMAIN}/\\S+: COMPLETED \\(succeeded\\)$`).test(l)), run.stdout);
    assert.ok(lines.some((l) => /^RTO \d+\.\d s, RPO \d+\.\d s$/.test(l)), run.stdout);

    const status = await dr('status', DOMAIN, '--json');
    assert.equal(status.code, 0, status.stderr);
    const shown = JSON.parse(status.stdout) as { mode: string; owner: { site: string } };
    assert.deepEqual([shown.mode, shown.owner.site], ['Running in Failover', 'recovery']);
    assert.ok(domainVms(DOMAIN).length > 0);
    const again = await dr('failover', DOMAIN, '--forced', '--confirm', DOMAIN);
    assert.equal(again.code, 1, 'refused by the mode table');
    assert.match(again.stderr, /^409 Conflict: failover is refused while charlie is Running in Failover/);
  });
});
