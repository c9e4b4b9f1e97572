import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { readDomainStatus } from '../../datapath/domain-status';
import { validateRunbook } from '../../runbooks/validate';
import { continuousFailover } from '../../workflows/continuous-failover';
import { completeContinuousFailoverUpdate } from '../../workflows/continuous-failover-messages';
import type { OperationReport } from '../../workflows/operation-messages';
import { executeUpdateSurely } from '../../requests/update-retry';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { allContinuedAsNew, crashRuns, atRandom, crashUntil, failedRuns } from '../harness/crashes';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const RUNS = crashRuns(10);
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('continuous failover durability: the follower\'s worker and the orchestration worker SIGKILLed at random moments while following and while completing', () => {
  const domains = Array.from({ length: RUNS }, (_, i) => `follow-${i + 1}`);
  const { stack, sites, primary, recovery, store, workers } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), domains), workers: ['orchestration', 'primary', 'recovery'] });
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, blockSize: 4096, pattern: 'random', seed: 'continuous-failover-crash' });
    for (const domain of domains) await protectAtPrimary(stack.client, domain);
  });

  /** Kills a random one of the two workers every few seconds until `until` settles (or after `maxKills`), restarting it at once; returns what it killed. */
  const killUntil = (until: Promise<unknown>, pauseMs?: [number, number], maxKills?: number) =>
    crashUntil(until, {
      pick: atRandom(['orchestration', 'site recovery']),
      crash: (victim) => workers.crashAndRestart(victim),
      ...(pauseMs ? { pauseMs } : {}),
      ...(maxKills !== undefined ? { maxKills } : {}),
    });

  it(`${RUNS} continuous failovers follow, continue as new and complete (planned) with nothing duplicated, disks equal to the primary and no rehydration from the base after the first`, async (t) => {
    const handles = await Promise.all(
      domains.map((domain) => {
        const checked = validateRunbook(runbookYaml(domain, {}));
        assert.ok(checked.runbook, JSON.stringify(checked.errors));
        return stack.client.workflow.start(continuousFailover, {
          taskQueue: ORCHESTRATION_TASK_QUEUE,
          workflowId: `continuous-failover/${domain}/crash-test`,
          // A few follower runs per workflow run, so that continue-as-new happens under the kills too.
          args: [{ domain, runbook: checked.runbook, runbookVersion: 1, requestedBy: 'crash-test', declaredAt: Date.now(), followerRunsPerExecution: 3 }],
        });
      }),
    );
    const caughtUp = waitFor('every copy caught up', async () => (await Promise.all(domains.map(async (d) => (await readDomainStatus(store, d))?.mode))).every((m) => m === 'Continuous Rehydration in Progress'), 300_000);
    // Ten first catch-ups (each reads its base) need a worker that lives a few seconds between kills, also on a loaded machine.
    const followingKills = await killUntil(caughtUp, [3_000, 8_000], 8);
    await caughtUp;
    // Following on, still under kills, until every copy has continued as new (a run other than its first is current), before the completions.
    const continuedAsNew = waitFor('every copy continued as new', () => allContinuedAsNew(handles), 300_000);
    followingKills.push(...(await killUntil(continuedAsNew)));
    await continuedAsNew;

    const results = Promise.allSettled(
      handles.map(async (handle, i) => {
        await sleep(i * 300);
        await executeUpdateSurely(handle, completeContinuousFailoverUpdate, [{ type: 'planned', requestedBy: 'crash-test', declaredAt: Date.now() }], `complete/${handle.workflowId}`);
        return (await handle.result());
      }),
    );
    const completionKills = await killUntil(results);
    const settledResults = await results;
    t.diagnostic(`while following: ${followingKills.length} SIGKILLs (${followingKills.join(', ')}); while completing: ${completionKills.length} (${completionKills.join(', ')})`);
    assert.deepEqual(failedRuns(settledResults, domains), []);
    assert.ok(followingKills.length + completionKills.length >= 5, `only ${followingKills.length + completionKills.length} kills happened`);

    for (const result of settledResults) {
      const report = (result as PromiseFulfilledResult<OperationReport>).value;
      assert.equal(report.outcome, 'succeeded');
      assert.equal(report.rpoMs, 0);
      assert.ok(report.following!.generation >= 1, `${report.domain} continued as new (${report.following!.generation} times)`);
      // The base is read once: a restarted follower resumes from its cursor, never from the base.
      assert.ok(report.following!.bytesRead.base < 2 * MiB, `${report.domain} read ${report.following!.bytesRead.base} bytes of base for a 1 MiB domain`);
      // However far behind the kills left the copy, the completion applies log only, never the base again.
      assert.equal(report.tail!.bytesRead.base, 0, `${report.domain}'s completion read no base`);
    }
    const vms = await recovery.client.listVms();
    assert.deepEqual(vms.filter((v) => v.kind !== 'vm').map((v) => v.name), [], 'no RocVA or representation VM is left');
    assert.deepEqual(vms.map((v) => v.name).sort(), domains.flatMap(domainVms).sort(), 'each recovered VM exactly once');
    for (const vm of vms) {
      for (const diskId of vm.diskIds) {
        const [recovered, original] = await Promise.all([recovery.client.readDisk(diskId, 0, MiB), primary.client.readDisk(diskId, 0, MiB)]);
        assert.ok(recovered.equals(original), `${diskId} equals the primary's disk after its shutdown`);
      }
    }
  });
});
