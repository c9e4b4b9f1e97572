import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { ObjectStore } from '../../datapath/object-store';
import type { ReplicationProgress } from '../../datapath/replicator';
import type { SiteService } from '../../sites/launch';
import { validateRunbook } from '../../runbooks/validate';
import { failover } from '../../workflows/failover';
import { protectStatusQuery } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { bidirectionalSiteDefinitions, domainVms, protectAt, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { atChaosSize, failedRuns } from '../harness/crashes';
import { assertLogHoldsEachWriteOnce, assertLogRebuildsPrimary, assertRecoveredEqualsSource } from '../harness/log-checks';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const SITES = ['primary', 'recovery'] as const;
/** Worker processes per site, as `npm start` runs them (sites/sites.json `workers`). */
const PER_SITE = 2;
/** Replicator holders SIGKILLed in a row during protection. */
const HOLDER_KILLS = atChaosSize(4, 1);
/** The sites where a failover's running activity has its worker SIGKILLed. */
const FAILOVER_VICTIM_SITES = atChaosSize(['primary', 'recovery'], ['recovery']);
/** PENDING_ACTIVITY_STATE_STARTED: a worker runs the attempt (the enum is a type here: @temporalio/proto is the client's). */
const STARTED = 2 as temporal.api.enums.v1.PendingActivityState;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The test's worker name (`site <site>#<n>`) of the process that runs an attempt, from the identity worker/main.ts gives it. */
function workerOf(identity: string | null | undefined): string | undefined {
  const numbered = /worker\.site\.(\S+)#(\d+)$/.exec(identity ?? '');
  return numbered ? `site ${numbered[1]}#${numbered[2]}` : undefined;
}

interface RunningActivity {
  type: string;
  worker: string;
  attempt: number;
  heartbeat?: unknown;
}

/** The activities of the workflow that a worker runs now; none before it has started. */
async function runningActivities(client: Client, workflowId: string): Promise<RunningActivity[]> {
  const description = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch((error: unknown) => {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    });
  return (description?.raw.pendingActivities ?? []).flatMap((a) => {
    const worker = workerOf(a.lastWorkerIdentity);
    const heartbeat = a.heartbeatDetails?.payloads?.[0];
    if (a.state !== STARTED || !worker) return [];
    return [{ type: a.activityType?.name ?? '', worker, attempt: a.attempt ?? 1, ...(heartbeat ? { heartbeat: defaultPayloadConverter.fromPayload(heartbeat) } : {}) }];
  });
}

/** Where the domain's log ends as far as its protection knows: its last run's cursor, or the running replicator's heartbeat past it. */
async function loggedUpTo(client: Client, workflowId: string): Promise<number> {
  const status = await client.workflow.getHandle(workflowId).query(protectStatusQuery);
  const replicator = (await runningActivities(client, workflowId)).find((a) => a.type === 'replicateJournal');
  return Math.max(status.cursor, (replicator?.heartbeat as ReplicationProgress | undefined)?.cursor ?? 0);
}

async function journalEnd(site: SiteService): Promise<number> {
  return (await site.client.readJournal({ afterSequence: Number.MAX_SAFE_INTEGER, maxEntries: 1 })).lastSequence;
}

/** Polls `probe` every 100 ms until it gives a value. */
async function waitForValue<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    const value = await probe();
    if (value !== undefined) return value;
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The worker running the domain's replicator, once one does. */
async function replicatorHolder(client: Client, workflowId: string): Promise<string> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(100)) {
    const replicator = (await runningActivities(client, workflowId)).find((a) => a.type === 'replicateJournal');
    if (replicator) return replicator.worker;
  }
  throw new Error(`no worker runs the replicator of ${workflowId}`);
}

describe('several site workers per site (DR virtual appliances): two per site share the replication and operations, and take over from each other', () => {
  const { stack, sites, primary, recovery, workers } = useTestbed({ definitions: bidirectionalSiteDefinitions(testSiteDefinitions(), ['alpha', 'bravo', 'juliet'], ['romeo']), workers: ['orchestration'] });
  const store = () => new ObjectStore(stack.s3Client, stack.s3Settings);
  const siteNamed = (site: string) => (site === 'primary' ? primary : recovery);
  before(async () => {
    await Promise.all(SITES.flatMap((site) => Array.from({ length: PER_SITE }, (_, i) => workers.site(siteNamed(site), site, {}, i + 1))));
  });

  it('a SIGKILLed replicator holder is taken over by the other worker, a frozen one that wakes up writes nothing beside it, and the log holds every write once', async (t) => {
    const protection = protectionWorkflowId('alpha', 'primary', 1);
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, pattern: 'random', seed: 'site-workers', vms: domainVms('alpha') });
    // Runs of the product's default length: a kill lands inside one, and the heartbeat timeout hands it over.
    await protectAtPrimary(stack.client, 'alpha', { replicatorRunMs: 10_000 });

    /** Waits until the log reaches past the journal's end as of now: after `gone` was killed, the other worker took over. */
    const takenOverFrom = async (gone: string) => {
      const since = Date.now();
      const end = await journalEnd(primary);
      await waitFor(`the replicator taken over from ${gone}`, async () => (await loggedUpTo(stack.client, protection)) > end, 90_000);
      return Date.now() - since;
    };
    for (let kill = 0; kill < HOLDER_KILLS; kill++) {
      const holder = await replicatorHolder(stack.client, protection);
      await workers.crash(holder);
      t.diagnostic(`SIGKILLed ${holder}, the replicator's holder: taken over after ${await takenOverFrom(holder)} ms`);
      await workers.restart(holder);
    }

    // A holder that stops without dying (a paused VM) past its heartbeat timeout, then wakes up,
    // runs on beside the attempt that replaced it until its next heartbeat is refused: the segments
    // both put land on one chain (create-if-absent at the journal position), each adopting the other's.
    const frozen = await replicatorHolder(stack.client, protection);
    const { pid } = workers.running.get(frozen)!;
    process.kill(pid, 'SIGSTOP');
    await sleep(8_000);
    process.kill(pid, 'SIGCONT');
    t.diagnostic(`SIGSTOPped ${frozen}, the replicator's holder, for 8 s: replicating again ${await takenOverFrom(frozen)} ms after it woke`);

    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    const end = await journalEnd(primary);
    await waitFor('the log caught up with the journal', async () => (await loggedUpTo(stack.client, protection)) >= end, 60_000);
    await assertLogHoldsEachWriteOnce(store(), 'alpha', 1);
    await assertLogRebuildsPrimary(store(), 'alpha', primary, recovery, 'ds-b');
  });

  it('a failover whose running activity loses its worker to SIGKILL completes on the other worker, once', async (t) => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, pattern: 'random', seed: 'site-workers-failover', vms: domainVms('alpha') });
    const workflowId = 'failover/alpha/site-workers';
    const done = startFailover(stack.client, 'alpha', workflowId);
    let settled = false;
    void done.finally(() => (settled = true)).catch(() => undefined);
    const killed: string[] = [];
    for (const site of FAILOVER_VICTIM_SITES) {
      // The first activity seen running at the site: its worker dies in the middle of it.
      while (!settled) {
        const running = (await runningActivities(stack.client, workflowId)).find((a) => a.worker.startsWith(`site ${site}#`));
        if (running) {
          await workers.crash(running.worker);
          killed.push(running.worker);
          t.diagnostic(`SIGKILLed ${running.worker} in ${running.type} (attempt ${running.attempt})`);
          break;
        }
        await sleep(50);
      }
    }
    const [result] = await Promise.allSettled([done]);
    assert.equal(killed.length, FAILOVER_VICTIM_SITES.length, 'the failover ended before a worker of each site was killed in one of its activities');
    // Back as their supervisor would start them, for the next test.
    const restarted = Promise.all(killed.map((worker) => workers.restart(worker)));
    assert.deepEqual(failedRuns([result], ['alpha']), []);
    await assertRecoveredEqualsSource('alpha', primary, recovery);
    await restarted;
  });

  it('a rehydration whose worker freezes past its heartbeat timeout is retried on the other worker; woken once the recovered VMs run, the frozen worker writes nothing to their disks', async (t) => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, pattern: 'random', seed: 'site-workers-frozen-rehydration', vms: domainVms('juliet') });
    await protectAtPrimary(stack.client, 'juliet');
    await sleep(2_000);
    const workflowId = 'failover/juliet/frozen-rehydration';
    const rehydration = async () => (await runningActivities(stack.client, workflowId)).find((a) => a.type === 'rehydrateDomain');
    // Slow at the recovery site until the worker freezes, so that it freezes in the middle of the rehydration.
    await admin(recovery, sites.token, '/admin/faults', { latencyMs: 300 });
    const done = startFailover(stack.client, 'juliet', workflowId);
    let frozen: string | undefined;
    try {
      const first = await waitForValue('the rehydration running', rehydration, 120_000);
      await sleep(1_000);
      frozen = first.worker;
      process.kill(workers.running.get(frozen)!.pid, 'SIGSTOP');
      // Its only peer gone for a while, the server hands the retry to the frozen worker's open poll
      // too: woken, that worker starts an attempt its own retries have long replaced.
      const peer = `site recovery#${frozen.endsWith('#1') ? 2 : 1}`;
      await workers.crash(peer);
      await admin(recovery, sites.token, '/admin/faults', { latencyMs: 0 });
      const handedToFrozen = await waitForValue('a retry handed to the frozen worker', async () => {
        const now = await rehydration();
        return now && now.attempt > first.attempt && now.worker === frozen ? now : undefined;
      }, 60_000);
      t.diagnostic(`SIGSTOPped ${frozen} 1 s into the rehydration's attempt ${first.attempt}, SIGKILLed ${peer}; attempt ${handedToFrozen.attempt} was handed to ${frozen}`);
      await workers.restart(peer);
      const [result] = await Promise.allSettled([done]);
      assert.deepEqual(failedRuns([result], ['juliet']), []);
      await assertRecoveredEqualsSource('juliet', primary, recovery);

      // The recovered VMs run and their guests write every byte; then the frozen worker wakes up.
      const guestData = new Map<string, Buffer>();
      for (const vm of (await recovery.client.listVms()).filter((v) => domainVms('juliet').includes(v.name))) {
        assert.equal(vm.powerState, 'poweredOn', vm.name);
        for (const diskId of vm.diskIds) {
          const data = randomBytes((await recovery.client.getDisk(diskId)).sizeBytes);
          await recovery.client.writeDisk(diskId, 0, data);
          guestData.set(diskId, data);
        }
      }
      const eventsBefore = (await recovery.client.events()).at(-1)?.sequence ?? 0;
      process.kill(workers.running.get(frozen)!.pid, 'SIGCONT');
      // Woken, its in-flight site calls have outlived their timeout and the attempt handed to it
      // starts; whether that one reaches a write before the server's cancellation reaches it varies
      // from run to run (datapath-follow.test.ts refuses a superseded attempt deterministically).
      await sleep(15_000);
      const refused = (await recovery.client.events(eventsBefore)).filter((e) => e.type === 'DiskWriteFenced');
      t.diagnostic(`woken, ${frozen} was refused at ${refused.length} disk(s): ${refused.map((e) => `${String(e.detail?.disk)} (${String(e.detail?.why)})`).join(', ')}`);
      for (const [diskId, data] of guestData) {
        const now = await recovery.client.readDisk(diskId, 0, data.length);
        assert.ok(now.equals(data), `${diskId} holds what its guest wrote${now.equals(data) ? '' : ': the woken worker wrote over it'}`);
      }
    } finally {
      if (frozen && workers.running.has(frozen)) process.kill(workers.running.get(frozen)!.pid, 'SIGCONT');
      await admin(recovery, sites.token, '/admin/faults', { latencyMs: 0 });
    }
  });

  it('fails over a domain of each direction at the same time: each site is the other one\'s recovery site', async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, pattern: 'random', seed: 'site-workers-forward', vms: domainVms('bravo') });
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, pattern: 'random', seed: 'site-workers-reverse', vms: domainVms('romeo') });
    await Promise.all([protectAt(stack.client, 'bravo', 'primary'), protectAt(stack.client, 'romeo', 'recovery')]);
    const results = await Promise.allSettled([startFailover(stack.client, 'bravo', 'failover/bravo/site-workers'), startFailover(stack.client, 'romeo', 'failover/romeo/site-workers', true)]);
    assert.deepEqual(failedRuns(results, ['bravo', 'romeo']), []);
    await assertRecoveredEqualsSource('bravo', primary, recovery);
    await assertRecoveredEqualsSource('romeo', recovery, primary);
    // Each is protected again from its new site.
    for (const [domain, site] of [['bravo', 'recovery'], ['romeo', 'primary']]) {
      const status = await stack.client.workflow.getHandle(protectionWorkflowId(domain, site, 2)).query(protectStatusQuery);
      assert.deepEqual([status.site, status.epoch], [site, 2], domain);
    }
  });
});

/** A planned failover of a test domain by its runbook (`reverse`: from the recovery site to the primary). */
function startFailover(client: Client, domain: string, workflowId: string, reverse = false) {
  const checked = validateRunbook(runbookYaml(domain, { reverse }));
  assert.ok(checked.runbook, JSON.stringify(checked.errors));
  return client.workflow.execute(failover, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId,
    args: [{ domain, type: 'planned', runbook: checked.runbook, runbookVersion: 1, requestedBy: 'site-workers-test', declaredAt: Date.now() }],
  });
}
