import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { startChild, waitUntilReady, type ChildHandle } from '../../common/child-process';
import { programArgs } from '../../common/programs';
import type { SiteService } from '../../sites/launch';
import { ORCHESTRATION_TASK_QUEUE, siteTaskQueue } from '../../workflows/task-queues';
import { createRunbookPageActivities } from '../../activities/runbook-pages';
import { RunbookStore } from '../../runbooks/store';
import { workflowCode } from '../../worker/workflow-code';
import { productEnvironment, useFixture, type TestStack } from './stack';
import { dataConverter } from '../../common/payload-compression';

/**
 * The product's own worker processes (worker/main.ts) against the test stack, so that tests can
 * SIGKILL them at any instant as a crash would.
 */
/** Numbers every worker's log file in this process: two TestWorkers on one stack must not share one, or a start would find the other's "worker running". */
let workersStarted = 0;

export class TestWorkers {
  readonly running = new Map<string, ChildHandle>();
  /** How each worker was started, so that a crashed one can be started the same way again. */
  private readonly starts = new Map<string, () => Promise<ChildHandle>>();

  constructor(
    private readonly stack: TestStack,
    private readonly siteToken: string,
  ) {}

  private async start(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<ChildHandle> {
    this.starts.set(name, () => this.start(name, args, env));
    const childEnv = { ...productEnvironment(this.stack), ...env };
    const child = startChild({
      name,
      command: process.execPath,
      args: [...programArgs('worker', childEnv), ...args],
      logFile: path.join(this.stack.dir, `${name.replace(/\s+/g, '-')}-${++workersStarted}.log`),
      env: childEnv,
    });
    this.running.set(name, child);
    await waitUntilReady(child, () => (readFileSync(child.logFile, 'utf8').includes('worker running') ? Promise.resolve() : Promise.reject(new Error('starting'))), 120_000);
    return child;
  }

  orchestration(env: NodeJS.ProcessEnv = {}): Promise<ChildHandle> {
    return this.start('orchestration', ['--orchestration'], env);
  }

  /** The site's worker; with `instance`, one of several on its task queue, named `site <name>#<instance>`. */
  site(site: SiteService, name: string, env: NodeJS.ProcessEnv = {}, instance?: number): Promise<ChildHandle> {
    const numbered = instance === undefined ? [] : ['--instance', String(instance)];
    return this.start(`site ${name}${instance === undefined ? '' : `#${instance}`}`, ['--site', name, ...numbered], { DR_SITE_URL: site.url, DR_SITE_TOKEN: this.siteToken, ...env });
  }

  /** SIGKILL, as a crash would. */
  async crash(name: string): Promise<void> {
    await this.running.get(name)?.kill();
    this.running.delete(name);
  }

  /** SIGKILL, as a crash would, then the same worker started again, as its supervisor would. */
  async crashAndRestart(name: string): Promise<void> {
    await this.crash(name);
    await this.restart(name);
  }

  /** A crashed worker started again the same way, as its supervisor would. */
  async restart(name: string): Promise<void> {
    const restart = this.starts.get(name);
    if (!restart) throw new Error(`no worker named ${name} was started`);
    await restart();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.values()].map((child) => child.kill()));
    this.running.clear();
  }
}

export interface InProcessWorkers {
  /** The product's workflows on the orchestration task queue. */
  orchestration: Worker;
  /** The activities given, on the site's task queue. */
  site: Worker;
}

/**
 * Workers in the test's own process, on the stack's connection, for tests that give a site
 * activities of their own. The orchestration worker has its own activities as in worker/main.ts
 * that an operation needs (a failover reads its runbook by name from the stack's bucket).
 */
export async function createInProcessWorkers(stack: TestStack, site: string, activities: object): Promise<InProcessWorkers> {
  const runbooks = new RunbookStore(stack.s3Client, stack.s3Settings);
  return {
    orchestration: await Worker.create({ connection: stack.nativeConnection, taskQueue: ORCHESTRATION_TASK_QUEUE, ...workflowCode(), dataConverter, activities: createRunbookPageActivities({ runbooks }) }),
    site: await Worker.create({ connection: stack.nativeConnection, taskQueue: siteTaskQueue(site), dataConverter, activities }),
  };
}

/** Those workers running from before the first test of the describe block to after the last; `activities` is called when they start. */
export function useInProcessWorkers(stack: TestStack, site: string, activities: () => object): void {
  useFixture(
    'the in-process workers',
    async () => {
      const workers = await createInProcessWorkers(stack, site, activities());
      return { workers, running: Promise.all([workers.orchestration.run(), workers.site.run()]) };
    },
    async ({ workers, running }) => {
      workers.orchestration.shutdown();
      workers.site.shutdown();
      await running;
    },
  );
}
