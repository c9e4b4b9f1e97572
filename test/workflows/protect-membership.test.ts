/**
 * How often the protect workflow looks at its domain's members (fast tier, stub sites): after every
 * `membershipEveryRuns` replicator runs, not after each, since every look lists the site.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { protect, stopProtectionSignal } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { vmNames } from '../fixtures/workflow-runbooks';
import { PRIMARY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';

const t = useWorkflowEnv();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('looks at the members after every third replicator run by default, and after every run when asked', async () => {
  const lookedAfter = async (label: string, membershipEveryRuns: number | undefined) => {
    const domain = newStubDomain(t, label, vmNames);
    const handle = await t.client.workflow.start(protect, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: protectionWorkflowId(domain, PRIMARY, 1),
      args: [{ domain, site: PRIMARY, vms: vmNames(domain), protectionWindowMs: 3_600_000, restorePointIntervalMs: 3_600_000, replicatorRunMs: 100, ...(membershipEveryRuns ? { membershipEveryRuns } : {}) }],
    });
    const ended = (name: string) => t.sites.callsOf(domain).filter((c) => c.name === name && c.ended === 'ok');
    for (let waited = 0; ended('replicateJournal').length < 9; waited += 100) {
      assert.ok(waited < 30_000, `${label}: ${ended('replicateJournal').length} replicator runs in 30 s`);
      await sleep(100);
    }
    await handle.signal(stopProtectionSignal);
    await handle.result();
    const runs = ended('replicateJournal').length;
    // The first look is the one that learns the members, before any run; a stopping protection looks no more.
    const looks = ended('refreshMembership').filter((c) => (c.args[0] as { known?: unknown[] }).known?.length !== 0).length;
    return { runs, looks };
  };

  const everyThird = await lookedAfter('protect membership default', undefined);
  assert.ok(everyThird.looks >= Math.floor((everyThird.runs - 1) / 3) && everyThird.looks <= Math.floor(everyThird.runs / 3), JSON.stringify(everyThird));
  const everyRun = await lookedAfter('protect membership every run', 1);
  assert.ok(everyRun.looks >= everyRun.runs - 1 && everyRun.looks <= everyRun.runs, JSON.stringify(everyRun));
});
