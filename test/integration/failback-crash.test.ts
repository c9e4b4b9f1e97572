import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { coalesceWrites } from '../../datapath/coalesced-writes';
import { latestDeparture } from '../../datapath/departure';
import { readChain, resolveChain } from '../../datapath/log-chain';
import type { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import type { Runbook } from '../../runbooks/schema';
import type { SiteEvent } from '../../sites/provider';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { failback } from '../../workflows/failback';
import type { OperationReport } from '../../workflows/operation-messages';
import { protectStatusQuery } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { groupsPoweredOnInOperation } from '../../workflows/power-on-plan';
import { powerOnGroupWorkflowId, protectionWorkflowId } from '../../workflows/workflow-ids';
import { domainVms, failoverSiteDefinitions, waitFor } from '../fixtures/failover-domains';
import { atRandomHistoryPoints, crashRuns, crashUntil, failedRuns, inRandomRounds } from '../harness/crashes';
import { assertBackAtPrimary, disksAtSite, disksOfVms, protectAndFailOver } from '../harness/failback';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestbed } from '../harness/testbed';

const RUNS = crashRuns(10);
/** One VM with one disk per domain, large enough that rehydrations take a while for kills to land in. */
const DISK_MIB = 4;
const PRIMARY_LATENCY_MS = 100;
/**
 * Each failback is killed at this many random points of its history, drawn among its first events:
 * a complete one has over 110 (its last steps are hit by the kills of the runs started after it).
 */
const KILLS_PER_RUN = 3;
const HISTORY_POINTS = 90;
/** How long the recovery site's workload goes on writing once the failbacks start. */
const RECOVERY_WRITES_MS = 6_000;
const WORKERS = ['orchestration', 'site primary', 'site recovery'];
/** Site events that create, remove, start or stop a VM. */
const LIFECYCLE = ['VmRegistered', 'VmUnregistered', 'VmPoweredOn', 'VmPoweredOff'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`failback durability: every worker process SIGKILLed at random moments across ${RUNS} planned failbacks, by delta and by full rehydration`, () => {
  const domains = Array.from({ length: RUNS }, (_, i) => `back-${i + 1}`);
  /** Every other run finds its original disk damaged at the primary: it fails back by full rehydration instead of by delta. */
  const damaged = (i: number) => i % 2 === 1;
  const definitions = failoverSiteDefinitions(testSiteDefinitions(), domains).map((site) => ({
    ...site,
    protectedDomains: site.protectedDomains.map((d) => ({ ...d, vms: d.vms.map((vm) => ({ ...vm, diskMiB: [DISK_MIB] })) })),
  }));
  const { stack, sites, primary, recovery, store, workers } = useTestbed({ definitions, workers: ['orchestration', 'primary', 'recovery'] });
  const runbooks = new Map<string, Runbook>();
  /** Each domain's original disks at the primary as failback finds them (where the domain left them, or damaged), by id. */
  const leftBehind = new Map<string, Map<string, Buffer>>();
  /** The sites' event histories end here when the failbacks start. */
  const eventsBefore = { primary: 0, recovery: 0 };
  /** What the workloads wrote at each site, in order: every disk started as zeros at the primary. */
  const written = (site: string) => readWorkloadRecord(path.join(stack.dir, site, 'workload-record.jsonl'));

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 60, blockSize: 4096, pattern: 'random', seed: 'failback-crash-primary' });
    for (const [domain, runbook] of await protectAndFailOver(stack.client, domains, 'failback-crash')) runbooks.set(domain, runbook);
    // The primary's workload would write to the original VMs again once failback powers them on.
    await admin(primary, sites.token, '/admin/workload', undefined, 'DELETE');
    const atPrimary = written('primary');
    for (const [i, domain] of domains.entries()) {
      const there = await disksOfVms(recovery, domainVms(domain));
      const here = await disksOfVms(primary, domainVms(domain));
      leftBehind.set(domain, here);
      for (const [id, bytes] of here) {
        // The expectation this test checks failback against, checked on the failover first.
        assert.ok(there.get(id)!.equals(expectedDiskContent(atPrimary, id, bytes.length, { sequence: Number.MAX_SAFE_INTEGER })), `${id} failed over with every write the primary's workload made`);
        if (damaged(i)) {
          bytes.fill(0xdb, 0, 4096);
          await primary.client.writeDisk(id, 0, bytes.subarray(0, 4096));
        }
      }
    }
    // The workload at the recovery site runs on into the failbacks, until their shutdowns stop it: the drain must carry the last write.
    await admin(recovery, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 32 * 1024, pattern: 'random', seed: 'failback-crash-recovery' });
    await sleep(3_000);
    eventsBefore.primary = (await primary.client.events()).at(-1)?.sequence ?? 0;
    eventsBefore.recovery = (await recovery.client.events()).at(-1)?.sequence ?? 0;
  });

  it('every failback completes, the original VMs run once each on disks holding every write made at the recovery site, nothing is left or duplicated at either site', async (t) => {
    // The primary answers every call late, as a site over a WAN would: the rehydrations' rounds of writes take long enough for kills to land in them.
    await admin(primary, sites.token, '/admin/faults', { latencyMs: PRIMARY_LATENCY_MS });
    const began = Date.now();
    const lifetimes = domains.map(() => ({ from: Infinity, to: Infinity }));
    const ids = domains.map((domain) => `failback/${domain}/crash-test`);
    const runs = domains.map(async (domain, i) => {
      // Staggered: each kill finds the runs in different steps.
      await sleep(i * 1_000);
      lifetimes[i].from = Date.now();
      try {
        return await stack.client.workflow.execute(failback, {
          taskQueue: ORCHESTRATION_TASK_QUEUE,
          workflowId: ids[i],
          args: [{ domain, type: 'planned', runbook: runbooks.get(domain)!, runbookVersion: 1, requestedBy: 'crash-test', declaredAt: Date.now() }],
        });
      } finally {
        lifetimes[i].to = Date.now();
      }
    });
    const all = Promise.allSettled(runs);
    // The first runs shut their VM down while it writes; not the later ones: on a loaded machine, where kills delay the shutdowns, the log to drain and apply would keep growing.
    const writesEnd = sleep(RECOVERY_WRITES_MS).then(() => admin(recovery, sites.token, '/admin/workload', undefined, 'DELETE'));
    const killedAt: number[] = [];
    const kills = await crashUntil(all, {
      pick: inRandomRounds(WORKERS),
      crash: (victim) => workers.crashAndRestart(victim),
      // At random points of each run's history, so that each is hit however fast the machine runs
      // it, and every few seconds besides (fifteen times), so that long steps are hit more often
      // (batched rebuilds made the failbacks quick: with two points per run and ten more kills, none
      // landed inside an activity in one CI run).
      // Not more: a site worker killed during a short activity stalls it for its 30 s timeout, and
      // on a loaded machine (slow restarts too) endless kills would keep the runs from ending.
      due: atRandomHistoryPoints(stack.client, ids, { perRun: KILLS_PER_RUN, within: HISTORY_POINTS, orAfter: { ms: [2_000, 5_000], times: 15 } }),
      onCrash: (_, at) => killedAt.push(at),
    });
    const results = await all;
    await writesEnd;
    await admin(primary, sites.token, '/admin/faults', { latencyMs: 0 });
    const killsPerRun = lifetimes.map(({ from, to }) => killedAt.filter((at) => at >= from && at <= to).length);
    t.diagnostic(`${kills.length} SIGKILLs in ${Math.round((Date.now() - began) / 1000)} s: ${kills.join(', ')}; during each run: ${killsPerRun.join(', ')}`);
    assert.deepEqual(failedRuns(results, domains), [], `after ${kills.length} kills (${kills.join(', ')})`);
    assert.ok(killsPerRun.every((n) => n >= KILLS_PER_RUN), `every run was hit at least ${KILLS_PER_RUN} times (kills during each run: ${killsPerRun.join(', ')})`);
    for (const victim of WORKERS) assert.ok(kills.filter((k) => k === victim).length >= 2, `${victim} was killed at least twice (${kills.join(', ')})`);
    const reports = results.map((r) => (r as PromiseFulfilledResult<OperationReport>).value);
    t.diagnostic(`kills by the step they hit: ${JSON.stringify(killsByStep(reports, killedAt))}`);
    t.diagnostic(`seconds spent in each step, all runs: ${JSON.stringify(secondsByStep(reports))}`);
    // The kills interrupted activities (which then ran again), not only idle workers.
    const childGroups = (d: string) => runbooks.get(d)!.spec.powerOn.groups.filter((g, _, groups) => !groupsPoweredOnInOperation(groups).has(g.name));
    const operations = domains.flatMap((d, i) => [ids[i], ...childGroups(d).map((g) => powerOnGroupWorkflowId(ids[i], g.name))]);
    const retried = await retriedActivities(stack.client, operations);
    t.diagnostic(`activities of the failbacks that ran again after a kill: ${JSON.stringify(retried)}`);
    t.diagnostic(`history lengths: ${(await Promise.all(ids.map(async (id) => (await stack.client.workflow.getHandle(id).describe()).historyLength))).join(', ')}`);
    assert.ok(Object.keys(retried).length > 0, 'some kill interrupted an activity of a failback');

    const [atPrimary, atRecovery] = [written('primary'), written('recovery')];
    for (const [i, domain] of domains.entries()) {
      const report = reports[i];
      assert.equal(report.outcome, 'succeeded', domain);
      // One handover, no other claim: the failover made epoch 2, the failback epoch 3.
      assert.equal(report.epoch, 3, `${domain}'s epoch after failback`);
      const expected = new Map<string, Buffer>();
      for (const [id, left] of leftBehind.get(domain)!) {
        expected.set(id, expectedDiskContent([...atPrimary, ...atRecovery], id, left.length, { sequence: Number.MAX_SAFE_INTEGER }));
        // Else a failback that moved no byte would pass.
        assert.ok(!expected.get(id)!.equals(left), `${id} was written at the recovery site after the failover`);
      }
      const writesThere = atRecovery.filter((w) => expected.has(w.diskId));
      const writtenThere = writesThere.reduce((sum, w) => sum + w.length, 0);
      const blocksThere = new Set(writesThere.map((w) => `${w.diskId}:${w.offset}`)).size * writesThere[0].length;
      if (damaged(i)) {
        assert.equal(report.rehydration?.kind, 'full', `${domain}: ${JSON.stringify(report.rehydration)}`);
        assert.match(report.rehydration.why ?? '', /differ/, domain);
      } else {
        assert.equal(report.rehydration?.kind, 'delta', `${domain}: ${JSON.stringify(report.rehydration)}`);
        // Only what was written at the recovery site goes back: every block it wrote, at least once, and at most as often as it was written.
        const { bytesWritten } = report.rehydration;
        assert.ok(bytesWritten >= blocksThere && bytesWritten <= writtenThere, `${domain}: ${bytesWritten} bytes written back; written at the recovery site: ${writtenThere} bytes, ${blocksThere} bytes of distinct blocks`);
        // And the report counts each byte the delta had to apply once, however often kills made it start again.
        assert.equal(bytesWritten, await deltaBytes(store, domain, new Set(expected.keys())), `${domain}'s delta bytes`);
      }
      await assertBackAtPrimary({ primary, recovery, store }, domain, domainVms(domain), expected);
    }

    // Counted over both sites: every VM and disk exactly where it belongs, once, and nothing else.
    const originalVms = domains.flatMap(domainVms).sort();
    assert.deepEqual((await primary.client.listVms()).map((vm) => `${vm.name}:${vm.kind}`), originalVms.map((vm) => `${vm}:vm`), 'the primary holds the original VMs and no RocVA or representation VM');
    assert.deepEqual(await disksAtSite(primary), [...leftBehind.values()].flatMap((disks) => [...disks.keys()]).sort(), 'the primary holds the original disks and no other');
    assert.deepEqual((await recovery.client.listVms()).map((vm) => vm.name), [], 'the recovery site holds no VM');
    assert.deepEqual(await disksAtSite(recovery), [], 'the recovery site holds no disk');

    // The original VMs were neither re-created nor restarted: powered on once each, and that is all that happened to them.
    const lifecycle = (events: SiteEvent[], vm: string) => events.filter((e) => e.vm === vm && LIFECYCLE.includes(e.type)).map((e) => e.type);
    const primaryEvents = await primary.client.events(eventsBefore.primary);
    for (const vm of originalVms) assert.deepEqual(lifecycle(primaryEvents, vm), ['VmPoweredOn'], `${vm} at the primary`);
    // One RocVA per full rehydration, deployed once and removed.
    const rocvas = primaryEvents.filter((e) => e.vm?.startsWith('rocva-'));
    assert.deepEqual(rocvas.filter((e) => e.type === 'VmRegistered').map((e) => e.vm!.replace(/[^-]+$/, '')).sort(), domains.filter((_, i) => damaged(i)).map((d) => `rocva-${d}-`).sort(), 'one RocVA per full rehydration');
    assert.equal(rocvas.filter((e) => e.type === 'VmUnregistered').length, rocvas.filter((e) => e.type === 'VmRegistered').length, 'every RocVA removed');
    // At the recovery site: shut down (and powered off again by the removal, harmlessly), never powered on again, removed once.
    const recoveryEvents = await recovery.client.events(eventsBefore.recovery);
    for (const vm of originalVms) assert.deepEqual(lifecycle(recoveryEvents, vm).filter((type) => type !== 'VmPoweredOff'), ['VmUnregistered'], `${vm} at the recovery site`);

    // Protection runs once per domain, at the primary, in the failback's epoch, and replicates.
    const protections = async () => {
      const ids: string[] = [];
      for await (const w of stack.client.workflow.list({ query: `WorkflowType = 'protect' AND ExecutionStatus = 'Running'` })) ids.push(w.workflowId);
      return ids.sort();
    };
    const resumed = domains.map((d) => protectionWorkflowId(d, 'primary', 3)).sort();
    await waitFor('one protection per domain, at the primary', async () => JSON.stringify(await protections()) === JSON.stringify(resumed), 60_000).catch(async (error: unknown) => {
      assert.deepEqual(await protections(), resumed, String(error));
    });
    for (const id of resumed) {
      await waitFor(`${id} replicating`, async () => (await stack.client.workflow.getHandle(id).query(protectStatusQuery)).mode === 'log', 60_000);
    }
  });
});

/** What a delta failback of `domain` applies: the log since its departure from the primary up to the failback's epoch (3), each segment's writes to `disks` coalesced. */
async function deltaBytes(store: ObjectStore, domain: string, disks: Set<string>): Promise<number> {
  const ownership = new Ownership(store, domain);
  const departure = await latestDeparture(store, ownership, 'primary');
  assert.ok(departure, `${domain} recorded its departure from the primary`);
  const links = (await resolveChain(store, ownership, { epoch: departure.position.epoch, segment: departure.position.segment + 1 })).filter((link) => link.epoch < 3);
  let bytes = 0;
  for await (const { segment } of readChain(store, links, 4)) bytes += coalesceWrites(segment.entries.filter((e) => disks.has(e.diskId))).reduce((sum, w) => sum + w.data.length, 0);
  return bytes;
}

/** Activities of these workflows that were started more than once, by type: a kill interrupted them and they ran again. */
async function retriedActivities(client: Client, workflowIds: string[]): Promise<Record<string, number>> {
  const retried: Record<string, number> = {};
  for (const id of workflowIds) {
    const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const types = new Map(events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [[String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?']] : [])));
    for (const started of events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes] : []))) {
      if ((started.attempt ?? 1) <= 1) continue;
      const type = types.get(String(started.scheduledEventId)) ?? '?';
      retried[type] = (retried[type] ?? 0) + 1;
    }
  }
  return retried;
}

/** How many kills landed in each step of the failbacks (a kill counts once per run it hit). */
function killsByStep(reports: OperationReport[], killedAt: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const report of reports) {
    for (const step of report.steps) {
      const hits = killedAt.filter((at) => at >= step.startedAt && at <= (step.endedAt ?? report.endedAt)).length;
      if (hits > 0) counts[stepOf(report, step.name)] = (counts[stepOf(report, step.name)] ?? 0) + hits;
    }
  }
  return counts;
}

/** The time all runs spent in each step, in seconds. */
function secondsByStep(reports: OperationReport[]): Record<string, number> {
  const ms: Record<string, number> = {};
  for (const report of reports) for (const step of report.steps) ms[stepOf(report, step.name)] = (ms[stepOf(report, step.name)] ?? 0) + (step.durationMs ?? 0);
  return Object.fromEntries(Object.entries(ms).map(([name, total]) => [name, Math.round(total / 1000)]));
}

/** A step's name the same in every run (some name the domain). */
const stepOf = (report: OperationReport, name: string) => name.replaceAll(report.domain, '<domain>');
