import assert from 'node:assert/strict';
import path from 'node:path';
import { readDomainStatus } from '../../datapath/domain-status';
import { DR_STATE, INACTIVE } from '../../datapath/conflict';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { Ownership } from '../../datapath/ownership';
import type { SiteService } from '../../sites/launch';
import { diskContentAfter, readWorkloadRecord, type WorkloadWrite } from '../../sites/workload';
import type { OperationReport } from '../../workflows/operation-messages';
import { disksOf } from './failback';
import { domainVms, waitFor } from '../fixtures/failover-domains';
import type { ApiCalls } from './api-calls';
import { admin } from './sites';
import type { Testbed } from './testbed';

/** A split-brain conflict as `GET /domains/{d}` shows it. */
export interface ShownConflict {
  conflict: 'split-brain';
  site: string;
  vms: string[];
  since: string;
  owner: { site: string; epoch: number };
}

/**
 * The steps the end-to-end tests of forced failover, split-brain and failback share, taken through
 * the HTTP API as an operator takes them (and through the sites' admin ports, which stage the
 * disasters), with the checks that say where the domain's data went: workload records against
 * disks, side copies, the chain.
 */
export function domainJourney(bed: Testbed, api: ApiCalls) {
  const { call, operationResult } = api;

  /** Starts an operation (202, its workflow id matching `id`) and waits for its successful end: its report. */
  async function operate(route: string, body: unknown, id: RegExp): Promise<OperationReport> {
    const started = await call('POST', route, body);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, id);
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    return report;
  }

  /** The primary site goes down (its VMs keep running and writing, unreplicated); the domain fails over by force. */
  async function forcedFailover(domain: string): Promise<OperationReport> {
    await waitFor(`${domain} recorded as Protected`, async () => (await readDomainStatus(bed.store, domain))?.mode === 'Protected', 30_000);
    await admin(bed.primary, bed.sites.token, '/admin/outage');
    return operate(`/domains/${domain}/failover`, { type: 'forced', confirm: domain }, new RegExp(`^failover/${domain}/`));
  }

  async function shownConflict(domain: string): Promise<ShownConflict | null> {
    return (await call('GET', `/domains/${domain}`)).body.conflict as ShownConflict | null;
  }

  /**
   * A fenced site comes back with the domain's VMs running: the conflict must show in
   * `GET /domains/{d}` within seconds, naming that site, every VM of the domain there and the owner.
   */
  async function siteReturns(site: SiteService, domain: string, owner: string): Promise<{ conflict: ShownConflict; restoredAt: number }> {
    await admin(site, bed.sites.token, '/admin/restore');
    const restoredAt = Date.now();
    let conflict: ShownConflict | null = null;
    await waitFor(`the conflict of ${domain} in GET /domains/${domain}`, async () => Boolean((conflict = await shownConflict(domain))), 20_000);
    const detectedInMs = Date.now() - restoredAt;
    assert.ok(detectedInMs < 15_000, `detected ${detectedInMs} ms after ${site.client.site} returned`);
    const shown = conflict!;
    assert.equal(shown.site, site.client.site);
    assert.deepEqual(shown.vms, domainVms(domain).sort());
    assert.equal(shown.owner.site, owner);
    assert.ok(Date.parse(shown.since) >= restoredAt - 1_000, shown.since);
    return { conflict: shown, restoredAt };
  }

  async function resolveConflict(domain: string): Promise<OperationReport> {
    const report = await operate(`/domains/${domain}/resolve-conflict`, { action: 'deactivate' }, new RegExp(`^resolve-conflict/${domain}/`));
    assert.ok(report.steps.every((s) => s.state === 'done' && s.durationMs! >= 0));
    assert.equal(await shownConflict(domain), null, 'no conflict once resolved');
    return report;
  }

  function failBack(domain: string, body: { type: 'planned' } | { type: 'forced'; confirm: string }): Promise<OperationReport> {
    return operate(`/domains/${domain}/failback`, body, new RegExp(`^failback/${domain}/`));
  }

  /** What a site's workload wrote, write by write (journal positions are the site's own). */
  function workloadRecord(site: SiteService): WorkloadWrite[] {
    return readWorkloadRecord(path.join(bed.stack.dir, site.client.site, 'workload-record.jsonl'));
  }


  /**
   * What the domain's disks must hold after a failback that followed a failover: the primary's
   * writes up to the failover's recovery point, then the recovery site's writes up to the failback's
   * (each report names the last journal position of its site that it recovered).
   */
  async function expectedAfterFailback(domain: string, failover: OperationReport, failback: OperationReport): Promise<Map<string, Buffer>> {
    const failedOverAt = failover.recoveryPoint?.lastJournalSequence;
    const failedBackAt = failback.recoveryPoint?.lastJournalSequence;
    assert.ok(failedOverAt !== undefined && failedBackAt !== undefined, 'both reports name the journal position they recovered');
    const records = new Map([bed.primary, bed.recovery].map((site) => [site.client.site, workloadRecord(site)]));
    const periods = [
      { site: bed.primary.client.site, after: 0, upTo: failedOverAt },
      { site: bed.recovery.client.site, after: 0, upTo: failedBackAt },
    ];
    const expected = new Map<string, Buffer>();
    for (const vm of (await bed.primary.client.listVms()).filter((v) => domainVms(domain).includes(v.name))) {
      for (const id of vm.diskIds) expected.set(id, diskContentAfter((site) => records.get(site)!, periods, id, (await bed.primary.client.getDisk(id)).sizeBytes));
    }
    return expected;
  }

  /** The domain is back at the primary: its original VMs run (active) on disks that hold `expected`, mode Protected. */
  async function assertOriginalsRun(domain: string, expected: Map<string, Buffer>): Promise<void> {
    const atPrimary = await disksOf(bed.primary, domain);
    assert.deepEqual([...atPrimary.keys()].sort(), [...expected.keys()].sort());
    for (const [id, content] of expected) assert.ok(atPrimary.get(id)!.equals(content), `${id} at the primary holds what the domain last wrote at the recovery site`);
    const vms = (await bed.primary.client.listVms()).filter((vm) => domainVms(domain).includes(vm.name));
    assert.deepEqual(vms.map((vm) => `${vm.name}:${vm.powerState}`).sort(), domainVms(domain).sort().map((vm) => `${vm}:poweredOn`), 'the original VMs run again');
    for (const vm of vms) assert.notEqual(vm.metadata[DR_STATE], INACTIVE, `${vm.name} is active`);
    const status = await readDomainStatus(bed.store, domain);
    assert.equal(status?.mode, 'Protected');
    assert.equal(status?.runningAt, bed.primary.client.site);
  }

  /** The site holds no VM (nor representation VM) of the domain, and none of its disks. */
  async function assertNothingOfDomainAt(site: SiteService, domain: string, diskIds: string[]): Promise<void> {
    assert.deepEqual((await site.client.listVms()).filter((vm) => domainVms(domain).some((name) => vm.name.includes(name))).map((vm) => vm.name), [], `${site.client.site} holds no VM of ${domain}`);
    for (const id of diskIds) await assert.rejects(site.client.getDisk(id), /does not exist/, `disk ${id} is gone from ${site.client.site}`);
  }

  /** The fenced epoch's chain ends at the fence: none of its segments holds a write after `afterSequence`. */
  async function assertChainEndsAtFence(domain: string, fencedEpoch: number, afterSequence: number): Promise<void> {
    const chain = (await resolveChain(bed.store, new Ownership(bed.store, domain))).filter((link) => link.epoch === fencedEpoch);
    for await (const { segment } of readChain(bed.store, chain, 4)) {
      assert.ok(segment.entries.every((e) => e.sequence <= afterSequence), `segment after ${segment.afterSequence} of epoch ${segment.epoch} holds no write after the fence`);
    }
  }

  return { call, operate, forcedFailover, shownConflict, siteReturns, resolveConflict, failBack, workloadRecord, disksOf, expectedAfterFailback, assertOriginalsRun, assertNothingOfDomainAt, assertChainEndsAtFence };
}
