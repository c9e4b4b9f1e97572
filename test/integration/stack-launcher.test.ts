import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { PROJECT_ROOT } from '../../common/config';
import { startChild, TYPESCRIPT_LOADER, type ChildHandle } from '../../common/child-process';
import { MALLOC_SETTINGS } from '../../common/malloc-settings';
import { freePort, freePortWithGrpcCompanion } from '../../stack/ports';
import { readLocalToken } from '../../stack/credentials';
import { portsBesideS3 } from '../../stack/seaweedfs';
import { eventually } from '../harness/eventually';
import { prepareTestSites } from '../harness/sites';
import { useTestStack } from '../harness/stack';

const launchers: ChildHandle[] = [];
let sitesFile: string;

function launcher(name: string, dir: string, env: NodeJS.ProcessEnv): ChildHandle {
  const child = startChild({
    name,
    command: process.execPath,
    args: [...TYPESCRIPT_LOADER, path.join(PROJECT_ROOT, 'stack/start.ts')],
    logFile: path.join(dir, `${name}.out`),
    cwd: PROJECT_ROOT,
    env: { ...process.env, DR_DATA_DIR: path.join(dir, 'data'), DR_LOG_DIR: path.join(dir, 'logs'), DR_SITES_FILE: sitesFile, ...env },
  });
  launchers.push(child);
  return child;
}

function readOutput(child: ChildHandle): string {
  try {
    return readFileSync(child.logFile, 'utf8');
  } catch {
    return '';
  }
}

async function outputOf(child: ChildHandle, until: RegExp, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readOutput(child);
    if (until.test(text)) return text;
    if (child.hasExited() || Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Processes whose command line mentions this test's data folder: servers and workers it started. */
function processesUsing(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(dir) && !line.includes('ps -eo'));
}

/** The processes `parent` started (the launcher's servers, sites, workers and API). */
function childrenOf(parent: number): Array<{ pid: number; args: string }> {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && Number(m[2]) === parent)
    .map((m) => ({ pid: Number(m[1]), args: m[3] }));
}

describe('npm start: the embedded stack launcher', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-launcher-'));
  before(async () => {
    sitesFile = (await prepareTestSites(dir)).sitesFile;
  });
  after(async () => {
    // A failed assertion must not leave a launcher (and its servers) running.
    for (const child of launchers) {
      if (!child.hasExited()) process.kill(child.pid, 'SIGINT');
      await child.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts everything healthy, restarts a component that dies, stops every child on SIGINT, finds its state again on the next start, and leaves nothing behind when killed', async () => {
    const ports = {
      DR_TEMPORAL_PORT: String(await freePort()),
      DR_TEMPORAL_UI_PORT: String(await freePort()),
      DR_S3_PORT: String(await freePortWithGrpcCompanion(Object.keys(portsBesideS3(0)).length)),
      DR_API_PORT: String(await freePort()),
    };
    const first = launcher('first', dir, ports);
    const out = await outputOf(first, /Press Ctrl-C/);
    assert.match(out, /storage preflight from site primary: conditional writes enforced/, out);
    assert.match(out, /storage preflight from site recovery: conditional writes enforced/, out);
    assert.match(out, /Site primary\s+http:\/\/127\.0\.0\.1:\d+\s+2 VM\(s\), 2 running/, out);
    const uiUrl = out.match(/Temporal Web UI\s+(\S+)/)?.[1];
    const apiUrl = out.match(/API\s+(http\S+)/)?.[1];
    assert.ok(uiUrl && apiUrl, out);

    const ui = await fetch(uiUrl);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<html/i);
    const health = (await (await fetch(`${apiUrl}/healthz`)).json()) as { status: string; checks: Record<string, { reachable: boolean }> };
    assert.equal(health.status, 'ok');
    assert.equal(health.checks.temporal?.reachable, true);
    assert.equal(health.checks.s3?.reachable, true);
    assert.equal((await fetch(`${apiUrl}/anything`)).status, 401);
    // The API process describes what it serves, without a token.
    const document = (await (await fetch(`${apiUrl}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    assert.match(document.openapi, /^3\.1\./);
    assert.ok(document.paths['/domains/{domain}/failover'] && document.paths['/metrics'], Object.keys(document.paths).join(' '));
    assert.equal((await fetch(`${apiUrl}/docs`)).status, 200);

    // The generated local tokens are admitted through the store, which the API seeded with their hashes.
    const tokens = await fetch(`${apiUrl}/tokens`, { headers: { authorization: `Bearer ${readLocalToken(path.join(dir, 'data'), 'admin')}` } });
    assert.equal(tokens.status, 200);
    assert.deepEqual(((await tokens.json()) as { tokens: Array<{ name: string }> }).tokens.map((t) => t.name), ['local-admin', 'local-operator', 'local-viewer']);

    // Components that die are named at once, with their log's last lines, and started again.
    const pidOf = (pattern: RegExp) => childrenOf(first.pid).find((c) => pattern.test(c.args))?.pid ?? 0;
    // A site worker gets the malloc settings that keep a rehydration's memory flat (common/malloc-settings.ts).
    // It runs compiled (stack/compile-programs.ts), as every program the launcher starts.
    const siteWorkerEnvironment = readFileSync(`/proc/${pidOf(/programs\/worker\.js --site primary/)}/environ`, 'utf8').split('\0');
    for (const [name, value] of Object.entries(MALLOC_SETTINGS)) assert.ok(siteWorkerEnvironment.includes(`${name}=${value}`), `the site worker runs with ${name}=${value}`);
    for (const [component, pattern] of [
      ['seaweedfs', /\/weed\s/],
      ['worker-site-primary', /programs\/worker\.js --site primary/],
    ] as const) {
      const pid = pidOf(pattern);
      assert.ok(pid > 0, `${component} runs: ${childrenOf(first.pid).map((c) => c.args).join('\n')}`);
      process.kill(pid, 'SIGKILL');
      const said = await outputOf(first, new RegExp(`${component} restarted \\(pid \\d+\\)`), 60_000);
      assert.match(said, new RegExp(`${component} died by SIGKILL; see \\S+${component}\\.log`), said);
      assert.ok(pidOf(pattern) > 0 && pidOf(pattern) !== pid, `${component} runs again`);
    }
    let healthy = false;
    for (const deadline = Date.now() + 30_000; !healthy && Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
      healthy = (await fetch(`${apiUrl}/healthz`)).status === 200;
    }
    assert.ok(healthy, 'the API is healthy again once SeaweedFS is back');

    process.kill(first.pid, 'SIGINT');
    assert.equal(await first.exited, 0);
    assert.match(readFileSync(first.logFile, 'utf8'), /stopped/);
    assert.deepEqual(processesUsing(dir), [], 'no server or worker outlives the launcher');

    const second = launcher('second', dir, ports);
    await outputOf(second, /Press Ctrl-C/);
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.DR_TEMPORAL_PORT}` });
    try {
      const client = new Client({ connection });
      const runs: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowType = 'storagePreflight'` })) runs.push(w.workflowId);
      assert.equal(runs.length, 4, 'the first start’s workflow history survived the restart (2 sites × 2 starts)');
    } finally {
      await connection.close();
    }
    // A launcher that crashes (SIGKILL: no chance to clean up) still takes its servers with it.
    await second.kill();
    const deadline = Date.now() + 15_000;
    while (processesUsing(dir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    assert.deepEqual(processesUsing(dir), [], 'no server outlives a killed launcher');
  });

  it('runs the documented demo: a staged disaster and a forced failover of the demo domain, verified byte for byte', async () => {
    // The shipped site definitions, on free ports, with quick guests and small disks.
    const demoDir = path.join(dir, 'demo');
    mkdirSync(demoDir, { recursive: true });
    const shipped = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'sites/sites.json'), 'utf8')) as { sites: Array<Record<string, unknown> & { protectedDomains: Array<{ vms: Array<{ diskMiB: number[] }> }> }> };
    for (const site of shipped.sites) {
      Object.assign(site, { port: await freePort(), adminPort: await freePort(), bootMs: 300, shutdownMs: 100 });
      for (const vm of site.protectedDomains.flatMap((d) => d.vms)) vm.diskMiB = vm.diskMiB.map(() => 1);
    }
    const demoSites = path.join(demoDir, 'sites.json');
    writeFileSync(demoSites, JSON.stringify(shipped));
    const env = {
      DR_SITES_FILE: demoSites,
      DR_TEMPORAL_PORT: String(await freePort()),
      DR_TEMPORAL_UI_PORT: String(await freePort()),
      DR_S3_PORT: String(await freePortWithGrpcCompanion(Object.keys(portsBesideS3(0)).length)),
      DR_API_PORT: String(await freePort()),
    };
    const stack = launcher('demo-stack', demoDir, env);
    const stackOut = await outputOf(stack, /Press Ctrl-C/);
    assert.match(stackOut, /Domain demo: protection started at primary, runbook demo v1/);
    // Both directions at once, two site workers each (docs/scale-out.md).
    assert.match(stackOut, /Domain analytics: protection started at recovery, runbook analytics v1/);
    assert.match(stackOut, /starting workers: orchestration, site primary x2, site recovery x2/);
    const viewer = { authorization: `Bearer ${readLocalToken(path.join(demoDir, 'data'), 'viewer')}` };
    await eventually('both domains listed', async () => {
      const { domains } = (await (await fetch(`http://127.0.0.1:${env.DR_API_PORT}/domains`, { headers: viewer })).json()) as { domains: Array<{ domain: string }> };
      return domains.map((d) => d.domain).join(' ') === 'analytics demo' || undefined;
    });

    const demo = startChild({
      name: 'demo',
      command: process.execPath,
      args: [...TYPESCRIPT_LOADER, path.join(PROJECT_ROOT, 'stack/demo.ts')],
      logFile: path.join(demoDir, 'demo.out'),
      cwd: PROJECT_ROOT,
      env: { ...process.env, DR_DATA_DIR: path.join(demoDir, 'data'), DR_LOG_DIR: path.join(demoDir, 'logs'), ...env },
    });
    const code = await demo.exited;
    const out = readFileSync(demo.logFile, 'utf8');
    assert.equal(code, 0, out);
    assert.match(out, /staging a disaster: site primary goes down/);
    assert.match(out, /Failover of demo: succeeded/);
    assert.match(out, /RTO achieved\s+\d+\.\d s/);
    assert.match(out, /verified: 5 disk\(s\) of 4 VM\(s\) at recovery are byte-identical/, out);
    process.kill(stack.pid, 'SIGINT');
    assert.equal(await stack.exited, 0);
  });

  describe('with unreachable external servers', () => {
    const { stack } = useTestStack();

    it('names the unreachable Temporal address instead of printing a stack trace', async () => {
      const deadPort = await freePort();
      const child = launcher('dead-temporal', dir, {
        TEMPORAL_ADDRESS: `127.0.0.1:${deadPort}`,
        S3_ENDPOINT: stack.s3Settings.endpoint,
        S3_BUCKET: stack.s3Settings.bucket,
        S3_ACCESS_KEY_ID: stack.s3Settings.credentials!.accessKeyId,
        S3_SECRET_ACCESS_KEY: stack.s3Settings.credentials!.secretAccessKey,
      });
      assert.equal(await child.exited, 1);
      const out = readFileSync(child.logFile, 'utf8');
      assert.match(out, new RegExp(`Temporal at 127\\.0\\.0\\.1:${deadPort} \\(namespace "default"\\) is unreachable`), out);
      assert.doesNotMatch(out, /^\s+at /m, 'no stack trace');
    });

    it('names the unreachable S3 endpoint and the bad bucket', async () => {
      const deadPort = await freePort();
      const dead = launcher('dead-s3', dir, { TEMPORAL_ADDRESS: stack.temporalSettings.address, S3_ENDPOINT: `http://127.0.0.1:${deadPort}` });
      assert.equal(await dead.exited, 1);
      assert.match(readFileSync(dead.logFile, 'utf8'), new RegExp(`S3 at http://127\\.0\\.0\\.1:${deadPort} is unreachable`));

      const wrongBucket = launcher('wrong-bucket', dir, {
        TEMPORAL_ADDRESS: stack.temporalSettings.address,
        S3_ENDPOINT: stack.s3Settings.endpoint,
        S3_BUCKET: 'no-such-bucket',
        S3_ACCESS_KEY_ID: stack.s3Settings.credentials!.accessKeyId,
        S3_SECRET_ACCESS_KEY: stack.s3Settings.credentials!.secretAccessKey,
      });
      assert.equal(await wrongBucket.exited, 1);
      assert.match(readFileSync(wrongBucket.logFile, 'utf8'), /bucket "no-such-bucket" does not exist/);
    });

    it('rejects invalid configuration naming each variable', async () => {
      const child = launcher('bad-config', dir, { TEMPORAL_ADDRESS: 'not-an-address', S3_BUCKET: 'Bad_Bucket' });
      assert.equal(await child.exited, 1);
      const out = readFileSync(child.logFile, 'utf8');
      assert.match(out, /TEMPORAL_ADDRESS: must be host:port/);
      assert.match(out, /S3_BUCKET: must be a valid S3 bucket name/);
    });
  });
});
