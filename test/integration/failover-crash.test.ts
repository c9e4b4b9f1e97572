import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { validateRunbook } from '../../runbooks/validate';
import { failover } from '../../workflows/failover';
import type { OperationReport } from '../../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { crashDomainNames, domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml } from '../fixtures/failover-domains';
import { atRandom, crashRuns, crashUntil, failedRuns } from '../harness/crashes';
import { admin, testSiteDefinitions } from '../harness/sites';
import { testStorage } from '../harness/stack';
import { useTestbed } from '../harness/testbed';

const RUNS = crashRuns(20);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`failover durability: worker processes and the Temporal server SIGKILLed at random moments across ${RUNS} failovers`, () => {
  const domains = crashDomainNames(RUNS);
  const { stack, sites, primary, recovery, workers } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), domains), workers: ['orchestration', 'primary', 'recovery'] });
  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, blockSize: 4096, pattern: 'random', seed: 'failover-crash' });
    for (const domain of domains) await protectAtPrimary(stack.client, domain);
  });

  it('completes every failover with no duplicate VM or appliance, and disks equal to the primary', async (t) => {
    const runs = domains.map(async (domain, i) => {
      await sleep(i * 400);
      const text = runbookYaml(domain, {});
      assert.ok(validateRunbook(text).runbook, JSON.stringify(validateRunbook(text).errors));
      // Named, as the API starts it: the orchestration worker reads the stored version, killed or not.
      const { version } = await testStorage(stack).runbooks.put(domain, text, 'crash-test');
      return stack.client.workflow.execute(failover, {
        taskQueue: ORCHESTRATION_TASK_QUEUE,
        workflowId: `failover/${domain}/crash-test`,
        args: [{ domain, type: 'planned', runbook: { name: domain }, runbookVersion: version, requestedBy: 'crash-test', declaredAt: Date.now() }],
      });
    });
    const all = Promise.allSettled(runs);
    const workerVictims = ['orchestration', 'site primary', 'site recovery'];
    const kills = await crashUntil(all, {
      // Short pauses: the ten runs of npm test end in about 30 s, and each kill must land inside them;
      // at most two kills per run: on a loaded machine, kills this frequent could keep twenty runs from ending.
      pauseMs: [1_000, 2_500],
      maxKills: 2 * RUNS,
      // Once per run, the Temporal server itself: workers and clients reconnect to its restarted self.
      pick: (killed) => (killed.length === 3 ? 'temporal server' : atRandom(workerVictims)(killed)),
      crash: (victim) => (victim === 'temporal server' ? stack.restartTemporal() : workers.crashAndRestart(victim)),
    });
    const results = await all;
    t.diagnostic(`${kills.length} SIGKILLs: ${kills.join(', ')}`);
    assert.deepEqual(failedRuns(results, domains), [], `after ${kills.length} kills (${kills.join(', ')})`);
    assert.ok(kills.length >= 5, `only ${kills.length} kills happened`);
    for (const result of results) assert.equal((result as PromiseFulfilledResult<OperationReport>).value.outcome, 'succeeded');

    const vms = await recovery.client.listVms();
    assert.deepEqual(vms.filter((v) => v.kind !== 'vm').map((v) => v.name), [], 'no RocVA or representation VM is left');
    const names = vms.map((v) => v.name).sort();
    assert.deepEqual(names, domains.flatMap(domainVms).sort(), 'each recovered VM exactly once');
    for (const vm of vms) {
      for (const diskId of vm.diskIds) {
        const { sizeBytes } = await recovery.client.getDisk(diskId);
        const [recovered, original] = await Promise.all([recovery.client.readDisk(diskId, 0, sizeBytes), primary.client.readDisk(diskId, 0, sizeBytes)]);
        assert.ok(recovered.equals(original), `${diskId} equals the primary's disk after its shutdown`);
      }
    }
  });
});
