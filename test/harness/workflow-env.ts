/**
 * The fast workflow tier's environment, created once per test file: Temporal's test environment
 * on the dev server that `npm install` put in .tools (no download), our search attributes
 * registered, the product's workflows on the orchestration queue, and stub activity workers
 * (test/harness/stub-sites.ts) on `site.primary` and `site.recovery`; the orchestration worker reads
 * the runbooks operations name from a stub store the tests fill. Durations that must expire
 * in a test are made short through the runbook, whose fields they are.
 */
import { after, before } from 'node:test';
import type { Client } from '@temporalio/client';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createRunbookPageActivities, type RunbookPageActivities, type RunbookVersions } from '../../activities/runbook-pages';
import { TEMPORAL_BINARY } from '../../stack/servers';
import { deskStartOptions, domainOperations, startOperationUpdate, type OperationRecord, type OperationRequest } from '../../workflows/domain-operations';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { ORCHESTRATION_TASK_QUEUE, siteTaskQueue } from '../../workflows/task-queues';
import { workflowCode } from '../../worker/workflow-code';
import { StubSites } from './stub-sites';
import { dataConverter } from '../../common/payload-compression';

export const PRIMARY = 'primary';
export const RECOVERY = 'recovery';

export interface WorkflowEnv {
  env: TestWorkflowEnvironment;
  client: Client;
  sites: StubSites;
  /** The runbook versions an operation that names its runbook reads (`readRunbookPage`). */
  runbooks: StubRunbooks;
  /** Terminates whatever of the domain is still open: protection a failover abandoned, an operation a failed test left. */
  closeDomain(domain: string): Promise<void>;
  teardown(): Promise<void>;
}

let runtimeInstalled = false;

/** The runbook store as the orchestration worker reads it: the versions the tests put, by name. */
export class StubRunbooks implements RunbookVersions {
  private readonly texts = new Map<string, string>();
  private held?: Promise<void>;
  /** Reads of a page that wait for `holdReads` to be released. */
  readsWaiting = 0;

  /** Every read of a page waits until the returned function is called: an operation caught reading its runbook. */
  holdReads(): () => void {
    let release = () => {};
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = undefined;
      release();
    };
  }

  /** The orchestration worker's reads of runbook pages, held while `holdReads` says so. */
  pageActivities(): RunbookPageActivities {
    const pages = createRunbookPageActivities({ runbooks: this });
    return {
      readRunbookPage: async (page) => {
        if (this.held) {
          this.readsWaiting++;
          await this.held;
          this.readsWaiting--;
        }
        return pages.readRunbookPage(page);
      },
    };
  }

  put(name: string, version: number, text: string): void {
    this.texts.set(`${name}@${version}`, text);
  }

  get(name: string, version: number): Promise<{ text: string } | undefined> {
    const text = this.texts.get(`${name}@${version}`);
    return Promise.resolve(text === undefined ? undefined : { text });
  }
}

export interface WorkflowEnvOptions {
  /** Activities of the orchestration worker (a drill schedule's run asks the desk through one), stubbed by the test. */
  orchestrationActivities?: object;
}

export async function startWorkflowEnv(options: WorkflowEnvOptions = {}): Promise<WorkflowEnv> {
  if (!runtimeInstalled) {
    // The tier fails workflows on purpose: their warnings would drown the report. DR_TEST_SDK_LOG=WARN shows them.
    const level = process.env.DR_TEST_SDK_LOG === 'WARN' ? 'WARN' : 'ERROR';
    Runtime.install({ logger: new DefaultLogger(level), telemetryOptions: { logging: { filter: { core: level, other: level } } } });
    runtimeInstalled = true;
  }
  const env = await TestWorkflowEnvironment.createLocal({
    client: { dataConverter },
    server: {
      executable: { type: 'existing-path', path: TEMPORAL_BINARY },
      ip: '127.0.0.1',
      searchAttributes: [...ALL_SEARCH_ATTRIBUTES],
      log: { format: 'json', level: 'error' },
      extraArgs: ['--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1', '--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1'],
    },
  });
  const sites = new StubSites([PRIMARY, RECOVERY]);
  const runbooks = new StubRunbooks();
  const running: Array<{ worker: Worker; done: Promise<void> }> = [];
  const teardown = async () => {
    await terminateOpen(env.client, 'ExecutionStatus = "Running"');
    for (const { worker } of running) worker.shutdown();
    await Promise.allSettled(running.map((r) => r.done));
    await env.teardown();
  };
  try {
    const workers = await Promise.all([
      Worker.create({
        connection: env.nativeConnection,
        taskQueue: ORCHESTRATION_TASK_QUEUE,
        ...workflowCode(),
        dataConverter,
        maxCachedWorkflows: 200,
        activities: { ...runbooks.pageActivities(), ...options.orchestrationActivities },
      }),
      ...[PRIMARY, RECOVERY].map((site) =>
        Worker.create({
          connection: env.nativeConnection,
          taskQueue: siteTaskQueue(site),
          activities: sites.activitiesFor(site),
          dataConverter,
          // Held stubs heartbeat; a cancellation reaches them within this instead of the default 30 s.
          maxHeartbeatThrottleInterval: '100 ms',
          defaultHeartbeatThrottleInterval: '100 ms',
        }),
      ),
    ]);
    for (const worker of workers) running.push({ worker, done: worker.run() });
  } catch (error) {
    await teardown();
    throw error;
  }

  return {
    env,
    client: env.client,
    sites,
    runbooks,
    closeDomain: async (domain) => {
      const ids = new Set(sites.callsOf(domain).map((c) => c.workflowId));
      await Promise.all(
        [...ids].map(async (id) => {
          const handle = env.client.workflow.getHandle(id);
          const { status } = await handle.describe();
          if (status.name === 'RUNNING') await handle.terminate('test finished').catch(ignoreNotFound);
        }),
      );
    },
    teardown,
  };
}

async function terminateOpen(client: Client, query: string): Promise<void> {
  const open: string[] = [];
  for await (const execution of client.workflow.list({ query })) open.push(execution.workflowId);
  await Promise.all(open.map((id) => client.workflow.getHandle(id).terminate('test environment closing').catch(ignoreNotFound)));
}

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof WorkflowNotFoundError)) throw error;
}

/** The environment for the tests of one file: started before the first test, torn down after the last. */
export function useWorkflowEnv(): WorkflowEnv {
  let started: WorkflowEnv | undefined;
  before(async () => {
    started = await startWorkflowEnv();
  });
  after(async () => {
    await started?.teardown();
  });
  const current = () => {
    if (!started) throw new Error('the workflow environment is used before it started');
    return started;
  };
  return {
    get env() {
      return current().env;
    },
    get client() {
      return current().client;
    },
    get sites() {
      return current().sites;
    },
    get runbooks() {
      return current().runbooks;
    },
    closeDomain: (domain) => current().closeDomain(domain),
    teardown: () => current().teardown(),
  };
}

let domainsMade = 0;
/** A fresh protected domain at the stub primary site, named after the test (lowercase, unique in the run). */
export function newStubDomain(t: WorkflowEnv, label: string, vmNames: (domain: string) => string[]): string {
  const slug = label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 30);
  const domain = `${slug}-${++domainsMade}`;
  t.sites.addDomain(domain, vmNames(domain));
  return domain;
}

/** As the API asks: update-with-start on the domain's operations desk. */
export function requestOperation(t: WorkflowEnv, domain: string, request: OperationRequest): Promise<OperationRecord> {
  return t.client.workflow.executeUpdateWithStart(startOperationUpdate, {
    args: [request],
    startWorkflowOperation: new WithStartWorkflowOperation(domainOperations, deskStartOptions(domain)),
  });
}
