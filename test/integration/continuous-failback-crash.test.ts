import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { readDomainStatus } from '../../datapath/domain-status';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { Ownership } from '../../datapath/ownership';
import type { Runbook } from '../../runbooks/schema';
import type { SiteEvent } from '../../sites/provider';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { continuousFailback } from '../../workflows/continuous-failback';
import { completeContinuousFailbackUpdate } from '../../workflows/continuous-failback-messages';
import type { OperationReport } from '../../workflows/operation-messages';
import { executeUpdateSurely } from '../../requests/update-retry';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { domainVms, failoverSiteDefinitions, waitFor } from '../fixtures/failover-domains';
import { allContinuedAsNew, crashRuns, crashUntil, failedRuns, inRandomRounds } from '../harness/crashes';
import { assertBackAtPrimary, disksAtSite, disksOfVms, protectAndFailOver } from '../harness/failback';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const RUNS = crashRuns(10);
const FOLLOWING = 'Continuous Failback in Progress';
/** Every worker process: the orchestration, the primary's (the follower, the RocVA, the originals) and the recovery site's (its protection, the shutdown, the drain). */
const WORKERS = ['orchestration', 'site primary', 'site recovery'];
/** Site events that create, remove, start or stop a VM. */
const LIFECYCLE = ['VmRegistered', 'VmUnregistered', 'VmPoweredOn', 'VmPoweredOff'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('continuous failback durability: every worker process SIGKILLed at random moments while the original disks follow (across continue-as-new) and while the failbacks complete', () => {
  const domains = Array.from({ length: RUNS }, (_, i) => `cfb-${i + 1}`);
  const { stack, sites, primary, recovery, store, workers } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), domains), workers: ['orchestration', 'primary', 'recovery'] });
  const runbooks = new Map<string, Runbook>();
  /** What the workloads wrote at each site, in order: every disk started as zeros at the primary. */
  const written = (site: string) => readWorkloadRecord(path.join(stack.dir, site, 'workload-record.jsonl'));
  /** The primary's event history ends here when the continuous failbacks start. */
  let primaryEventsBefore = 0;
  /** The original disks at the primary as the failovers left them. */
  const leftBehind = new Map<string, Map<string, Buffer>>();

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, blockSize: 4096, pattern: 'random', seed: 'continuous-failback-crash-primary' });
    for (const [domain, runbook] of await protectAndFailOver(stack.client, domains, 'continuous-failback-crash')) runbooks.set(domain, runbook);
    // The original VMs are powered on again at the end: the primary's workload must not write to them.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    for (const domain of domains) leftBehind.set(domain, await disksOfVms(primary, domainVms(domain)));
    // The recovery site writes all along, into the completions, until their shutdowns stop it: the drains must carry the last writes.
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'continuous-failback-crash-recovery' });
    await sleep(2_000);
    primaryEventsBefore = (await primary.client.events()).at(-1)?.sequence ?? 0;
  });

  /** Kills every worker in turn (random order each round) every few seconds until `until` settles, restarting it at once; returns what it killed. */
  const killUntil = (until: Promise<unknown>, pauseMs?: [number, number]) =>
    crashUntil(until, { pick: inRandomRounds(WORKERS), crash: (victim) => workers.crashAndRestart(victim), ...(pauseMs ? { pauseMs } : {}) });

  it(`${RUNS} continuous failbacks follow, continue as new and complete (planned) under kills: every run succeeds, nothing is duplicated at either site or in the log, and the originals hold every write made at the recovery site`, async (t) => {
    const began = Date.now();
    const handles = await Promise.all(
      domains.map((domain) =>
        stack.client.workflow.start(continuousFailback, {
          taskQueue: ORCHESTRATION_TASK_QUEUE,
          workflowId: `continuous-failback/${domain}/crash-test`,
          // One follower run per workflow run: every run continues as new, under the kills too (kills of the primary's worker leave few runs complete).
          args: [{ domain, runbook: runbooks.get(domain)!, runbookVersion: 1, requestedBy: 'crash-test', declaredAt: Date.now(), followerRunsPerExecution: 1 }],
        }),
      ),
    );
    const caughtUp = waitFor('every original disk caught up', async () => (await Promise.all(domains.map(async (d) => (await readDomainStatus(store, d))?.mode))).every((m) => m === FOLLOWING), 480_000);
    // The deployments and first catch-ups need workers that live a few seconds between kills, also on a loaded machine.
    const followingKills = await killUntil(caughtUp, [3_000, 8_000]);
    await caughtUp;
    // Following on, still under kills, until every run has continued as new, before the completions.
    const continuedAsNew = waitFor('every run continued as new', () => allContinuedAsNew(handles), 480_000);
    followingKills.push(...(await killUntil(continuedAsNew)));
    await continuedAsNew;
    // Every worker killed twice while the originals follow, however quickly they caught up and continued as new (batched rebuilds made that a kill or two).
    const topUp = WORKERS.flatMap((w) => Array<string>(Math.max(0, 2 - followingKills.filter((k) => k === w).length)).fill(w));
    followingKills.push(...(await crashUntil(new Promise(() => undefined), { pick: (killed) => topUp[killed.length], crash: (victim) => workers.crashAndRestart(victim), maxKills: topUp.length })));
    const originalsWhileFollowing = (await primary.client.listVms()).filter((vm) => vm.kind === 'vm');
    assert.ok(originalsWhileFollowing.every((vm) => vm.powerState === 'poweredOff'), 'the original VMs stay powered off while their disks follow');

    const results = Promise.allSettled(
      handles.map(async (handle, i) => {
        await sleep(i * 300);
        await executeUpdateSurely(handle, completeContinuousFailbackUpdate, [{ type: 'planned', requestedBy: 'crash-test', declaredAt: Date.now() }], `complete/${handle.workflowId}`);
        return await handle.result();
      }),
    );
    const completionKills = await killUntil(results);
    const settled = await results;
    await admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE');
    const kills = [...followingKills, ...completionKills];
    t.diagnostic(`${kills.length} SIGKILLs in ${Math.round((Date.now() - began) / 1000)} s; while following: ${followingKills.join(', ')}; while completing: ${completionKills.join(', ')}`);
    assert.deepEqual(failedRuns(settled, domains), [], `after ${kills.length} kills (${kills.join(', ')})`);
    assert.ok(completionKills.length >= 1, 'a kill landed during the completions');

    const reports = settled.map((r) => (r as PromiseFulfilledResult<OperationReport>).value);
    t.diagnostic(`continue-as-new per run: ${reports.map((r) => r.following?.generation).join(', ')}; tail bytes: ${reports.map((r) => r.tail?.bytesWritten).join(', ')}`);
    const [atPrimary, atRecovery] = [written('primary'), written('recovery')];
    for (const report of reports) {
      const domain = report.domain;
      assert.equal(report.outcome, 'succeeded', domain);
      assert.equal(report.rpoMs, 0, domain);
      // One handover, no other claim: the failover made epoch 2, the completion epoch 3.
      assert.equal(report.epoch, 3, `${domain}'s epoch after the completion`);
      assert.ok(report.following!.generation >= 1, `${domain} continued as new (${report.following!.generation} times)`);
      // The original disks were left where the failover left them: the log since the departure applies (a delta), the base is never read.
      assert.equal(report.following!.bytesRead.base, 0, `${domain} read no base while following`);
      assert.equal(report.tail!.bytesRead.base, 0, `${domain}'s completion read no base`);
      assert.ok(!report.steps.some((s) => /rehydrate/.test(s.name)), `${domain}: nothing rehydrated`);

      // No byte lost: the original disks hold every write, the primary's up to the failover then the recovery site's up to its shutdown.
      const expected = new Map<string, Buffer>();
      for (const [id, left] of leftBehind.get(domain)!) {
        expected.set(id, expectedDiskContent([...atPrimary, ...atRecovery], id, left.length, { sequence: Number.MAX_SAFE_INTEGER }));
        assert.ok(!expected.get(id)!.equals(left), `${id} was written at the recovery site after the failover`);
      }
      await assertBackAtPrimary({ primary, recovery, store }, domain, domainVms(domain), expected);
      // The completion applies at most the log written at the recovery site since the failover, once.
      const writtenThere = atRecovery.filter((w) => expected.has(w.diskId)).reduce((sum, w) => sum + w.length, 0);
      t.diagnostic(`${domain}: written at the recovery site ${writtenThere} bytes; followed ${report.following!.bytesWritten} bytes in ${report.following!.segmentsApplied} segments; tail ${JSON.stringify(report.tail)}`);
      assert.ok(report.tail!.bytesWritten <= writtenThere, `${domain}'s tail wrote ${report.tail!.bytesWritten} bytes; the recovery site wrote ${writtenThere} bytes to its disks in all`);

      // No segment written twice: the recovery site's epoch holds each of its writes exactly once, in order.
      const chain = (await resolveChain(store, new Ownership(store, domain))).filter((link) => link.epoch === 2);
      let last = 0;
      for await (const { segment } of readChain(store, chain, 4)) {
        for (const entry of segment.entries) {
          assert.ok(entry.sequence > last, `${domain}: journal sequence ${entry.sequence} after ${last} in epoch 2`);
          last = entry.sequence;
        }
      }
    }

    // Counted over both sites: every VM and disk exactly where it belongs, once, and nothing else.
    const originalVms = domains.flatMap(domainVms).sort();
    assert.deepEqual((await primary.client.listVms()).map((vm) => `${vm.name}:${vm.kind}`).sort(), originalVms.map((vm) => `${vm}:vm`), 'the primary holds the original VMs and no RocVA or representation VM');
    assert.deepEqual(await disksAtSite(primary), [...leftBehind.values()].flatMap((disks) => [...disks.keys()]).sort(), 'the primary holds the original disks and no other');
    assert.deepEqual((await recovery.client.listVms()).map((vm) => vm.name), [], 'the recovery site holds no VM');
    assert.deepEqual(await disksAtSite(recovery), [], 'the recovery site holds no disk');

    // The original VMs were neither re-created nor restarted: powered on once each at the end, and that is all that happened to them.
    const primaryEvents = await primary.client.events(primaryEventsBefore);
    const lifecycle = (events: SiteEvent[], vm: string) => events.filter((e) => e.vm === vm && LIFECYCLE.includes(e.type)).map((e) => e.type);
    for (const vm of originalVms) assert.deepEqual(lifecycle(primaryEvents, vm), ['VmPoweredOn'], `${vm} at the primary`);
    // One RocVA per run, deployed once (across kills and continue-as-new) and removed.
    const rocvas = primaryEvents.filter((e) => e.vm?.startsWith('rocva-'));
    assert.deepEqual(rocvas.filter((e) => e.type === 'VmRegistered').map((e) => e.vm!.replace(/-[^-]+$/, '')).sort(), domains.map((d) => `rocva-${d}`).sort(), 'one RocVA per run');
    assert.equal(rocvas.filter((e) => e.type === 'VmUnregistered').length, domains.length, 'every RocVA removed once');
  });
});
