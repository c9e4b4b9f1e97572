import { ApplicationFailure, CancellationScope, condition, patched, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { TestedPoint } from '../activities/datapath';
import type { InventoryNames } from '../activities/recovery-site';
import type { CheckGuestInput } from '../activities/vm-power';
import { failure } from '../common/failures';
import type { RehydrationTarget } from '../datapath/records';
import { drillId, drillResourceName, representationVmName } from '../common/resource-names';
import type { RunbookCheck } from '../runbooks/schema';
import { parseDuration } from '../runbooks/units';
import { workflowNow } from './clock';
import { CLEANUP_REFUSED, cleanupDrillUpdate, type CheckedVm, type CheckResult, type CleanupRequest, type DrillCleanup, type DrillInput, type DrillReport, type DrillResource, type ResourceCounts } from './drill-messages';
import { failureMessage } from './failure-policy';
import { addToListing, listingOf } from './listing';
import { towardsRecoverySite, type Operation } from './operation';
import type { OperationReport } from './operation-messages';
import { powerOnByPlan } from './phases/power-on';
import { withRunbook } from './phases/runbook';
import { deployRocva, prepareTargetDisks, registerVms, rehydrate, removeRepresentationVms, removeRocva, resolveRecoveryPoint, targetVmOf, type RebuildTarget } from './phases/rebuild';
import { activitiesAt, batchActivitiesAt, SITE_RETRY } from './phases/site-activities';
import type { PowerOnPlanInput } from './power-on-plan';
import { drillVm } from './recovered-vm';
import { forEachBatch, forEachVm } from './vm-fan-out';
import { callWebhookStep } from './webhook-step';

/**
 * A drill: a test failover at the recovery site that touches nothing in production. Ownership,
 * protection and the primary are left alone; the domain is rebuilt from a point of its log under
 * names of its own (`drill-<id>-...`, each recorded before it is created), on the runbook's test
 * networks, powered on by its plan (webhooks only where they opt in), and its checks decide pass or
 * fail. After `keepFor` (a durable timer) or a cleanup request, every recorded resource is removed,
 * the site's inventory is compared with the one taken before the drill created anything, and the
 * runbook's postCleanup webhooks run. An abort or a cancel runs the same cleanup as compensation.
 */
export async function drill(request: DrillInput): Promise<OperationReport> {
  // Accepted from the first instant: a cleanup request never meets a drill still reading its runbook.
  const cleanupRequest = acceptCleanup(`drill of ${request.domain}`);
  const input = await withRunbook(request);
  const id = drillId(workflowInfo().runId);
  const op = towardsRecoverySite('drill', input, { memo: { pointInTime: input.pointInTime ?? 'latest', drill: id } });
  return op.run(async () => {
    if (!op.runbook.spec.testNetworkMapping) {
      throw failure('RunbookMismatch', `runbook ${op.runbook.metadata.name} v${op.runbookVersion} has no spec.testNetworkMapping: ${op.domain} cannot be drilled without isolated test networks`);
    }
    const before = await op.step(`take the inventory of ${op.to}`, () => inventoryNames(op));
    // Pushed first, so it runs last: whatever the phases' own undo left, and what they never knew of.
    op.undo.push(`the drill's resources removed from ${op.to}`, async () => {
      await cleanUp(op, id, before, { requestedBy: 'the compensation of the drill' });
    });

    const { point, targets } = await resolveRecoveryPoint(op, input.pointInTime, drillVm(id));
    const rocva = { name: drillResourceName(id, 'rocva') };
    op.creates([{ kind: 'rocva', name: rocva.name }]);
    await deployRocva(op, rocva.name);
    const drillVms = targets.map(targetVmOf);
    op.creates(drillVms.flatMap((t) => [{ kind: 'representation' as const, name: representationVmName(t.name) }, ...t.disks.map((d) => ({ kind: 'disk' as const, name: d.diskId }))]));
    // Progress shows each VM under the domain's name throughout, as the later phases do.
    await prepareTargetDisks(op, drillVms, undefined, (name) => name.slice(drillResourceName(id, '').length));
    await rehydrate(op, point, targets, 'new disks', drillResourceName(id, ''));
    await removeRocva(op, rocva);
    await removeRepresentationVms(op, targets);
    op.creates(drillVms.map((t) => ({ kind: 'vm' as const, name: t.name })));
    await registerVms(op, targets);
    const { plan, skippedWebhooks } = drillPlan(op.planInput, (vm) => drillResourceName(id, vm));
    op.usePowerOnPlan(plan);
    await powerOnByPlan(op, (planned) => planned.slice(drillResourceName(id, '').length));
    const rtoMs = op.sinceDeclared();
    const rpoMs = Math.max(0, input.declaredAt - point.dataFrom);

    const checks = await runChecks(op, targets, id);
    const notUp = targets.filter((t) => !t.recovered.leavePoweredOff && op.vmState(t.name) !== 'poweredOn').map((t) => t.name);
    const notUpListed = listingOf(notUp);
    const failedBecause = [
      ...checks.filter((c) => !c.passed).map((c) => `check ${c.name} failed`),
      ...notUpListed.first.map((vm) => `${vm} did not come up`),
      ...(notUpListed.count > notUpListed.first.length ? [`${notUpListed.count - notUpListed.first.length} more VMs did not come up`] : []),
    ];
    const outcome = failedBecause.length === 0 ? 'passed' : 'failed';
    upsertMemo({ drillOutcome: outcome });
    const testedPoint = patched('drill-tags-tested-point') ? await tagTestedPoint(op, point.upTo, id, outcome) : undefined;

    const kept = await keep(op, input.keepForMs, cleanupRequest);
    const cleanup = await cleanUp(op, id, before, kept.request);
    await postCleanupWebhooks(op);
    const report: DrillReport = {
      id,
      outcome,
      ...(failedBecause.length > 0 ? { failedBecause } : {}),
      checks,
      ...(testedPoint ? { testedPoint } : {}),
      skippedWebhooks,
      kept: { forMs: input.keepForMs, endedBy: kept.endedBy },
      cleanup,
    };
    return { rtoMs, rpoMs, drill: report };
  });
}

/**
 * The drill's power-on plan: the runbook's, for the drill's copies of the VMs, without the
 * webhooks that did not opt in with `runInDrill` (they usually reach production: DNS, load balancers).
 */
function drillPlan(plan: PowerOnPlanInput, drillName: (vm: string) => string): { plan: PowerOnPlanInput; skippedWebhooks: string[] } {
  const skippedWebhooks: string[] = [];
  const inDrill = <S extends { type: string; name: string; runInDrill?: boolean }>(step: S) => {
    const runs = step.type !== 'webhook' || step.runInDrill === true;
    if (!runs) skippedWebhooks.push(step.name);
    return runs;
  };
  const groups = plan.powerOn.groups.map((g) => ({ ...g, before: g.before.filter(inDrill), after: g.after.filter(inDrill), vms: g.vms.map((v) => ({ ...v, name: drillName(v.name) })) }));
  return { plan: { ...plan, powerOn: { ...plan.powerOn, groups }, leavePoweredOff: plan.leavePoweredOff.map(drillName) }, skippedWebhooks };
}

/** A kept drill accepts one cleanup request until its cleanup begins; a refused one leaves no trace in history. */
function acceptCleanup(title: string): { request?: CleanupRequest; begun: boolean } {
  const state: { request?: CleanupRequest; begun: boolean } = { begun: false };
  setHandler(
    cleanupDrillUpdate,
    (request) => {
      state.request = request;
      return { workflowId: workflowInfo().workflowId, requestedBy: request.requestedBy, force: request.force ?? false };
    },
    {
      validator: (_request: CleanupRequest) => {
        if (state.request) throw ApplicationFailure.create({ type: CLEANUP_REFUSED, message: `the cleanup of this ${title} was requested by ${state.request.requestedBy} already` });
        if (state.begun) throw ApplicationFailure.create({ type: CLEANUP_REFUSED, message: `the ${title} is cleaning up already` });
      },
    },
  );
  return state;
}

/** The drill stays up for `keepForMs` (a durable timer) or until a cleanup request, whichever is first. */
async function keep(op: Operation, keepForMs: number, cleanup: { request?: CleanupRequest; begun: boolean }): Promise<{ endedBy: string; request: CleanupRequest }> {
  const requested = () => cleanup.request !== undefined;
  if (keepForMs > 0 && !requested()) {
    await op.step(`keep the drill for ${Math.round(keepForMs / 1000)} s`, () => condition(requested, keepForMs));
  }
  cleanup.begun = true;
  const request = cleanup.request;
  if (request) return { endedBy: `the cleanup requested by ${request.requestedBy}${request.force ? ' (forced)' : ''}`, request };
  return { endedBy: keepForMs > 0 ? 'the end of keepFor' : 'the checks (keepFor 0)', request: { requestedBy: 'the drill, once kept' } };
}

/**
 * Runs every check of the runbook against the drill's copies: a check passes when each VM it
 * names passes within its timeout. A VM the drill did not bring up fails its checks. The VMs of a
 * check are probed by batch activities of VMS_PER_BATCH, one batch of a check at a time (a group
 * check of 4,800 VMs adds 48 activities to the drill's history, not 4,800).
 */
async function runChecks(op: Operation, targets: RebuildTarget[], id: string): Promise<CheckResult[]> {
  const { checks, powerOn } = op.runbook.spec;
  if (checks.length === 0) return [];
  const rebuilt = new Set(targets.map((t) => t.name));
  const inBatches = patched('drill-checks-in-batches');
  return op.step('run the checks', () =>
    Promise.all(
      checks.map(async (check): Promise<CheckResult> => {
        const vms = check.vm !== undefined ? [check.vm] : (powerOn.groups.find((g) => g.name === check.group)?.vms.map((v) => v.name) ?? []);
        const timeoutMs = parseDuration(check.timeout) ?? 120_000;
        const probe = { probe: probeOf(check), ...(check.type === 'http' ? { expectStatus: check.expectStatus } : {}) };
        const notRebuilt = vms.filter((vm) => !rebuilt.has(vm)).map((vm): CheckedVm => ({ vm, passed: false, detail: `${vm} is not in the recovery point the drill used`, waitedMs: 0 }));
        const toCheck = vms.filter((vm) => rebuilt.has(vm));
        // One deadline for the whole check: each batch's own would make 100 batches of VMs that never answer wait 100 timeouts.
        const notAfter = workflowNow() + timeoutMs;
        const checked = await (inBatches ? checkInBatches : checkOneByOne)(op, check, toCheck, (vm) => ({ vm: drillResourceName(id, vm), ...probe, notAfter }), timeoutMs);
        const results = [...notRebuilt, ...checked];
        const failed = results.filter((r) => !r.passed);
        return { name: check.name, type: check.type, passed: results.length > 0 && failed.length === 0, vms: listingOf([...failed, ...results.filter((r) => r.passed)]), failed: failed.length };
      }),
    ),
  );
}

type CheckInput = (vm: string) => CheckGuestInput;

async function checkInBatches(op: Operation, check: RunbookCheck, vms: string[], input: CheckInput, timeoutMs: number): Promise<CheckedVm[]> {
  const atTo = batchActivitiesAt(op.to, { startToCloseTimeout: timeoutMs + 60_000, heartbeatTimeout: '20 seconds' });
  const answers = new Map<string, CheckedVm>();
  // One batch at a time: its VMs are probed at once, as many as the per-VM activities had in flight.
  await forEachBatch(
    vms,
    async (batch, range) => {
      const answered = await atTo.checkGuestsOfBatch.executeWithOptions({ summary: `check ${check.name}: ${check.type} on VMs ${range}` }, [{ vms: batch.map(input) }]);
      answered.forEach(({ passed, detail, waitedMs }, i) => answers.set(batch[i], { vm: batch[i], passed, detail, waitedMs }));
    },
    1,
  );
  return vms.map((vm) => answers.get(vm)!);
}

/** An activity per VM, as drills recorded before the batches ran their checks. */
function checkOneByOne(op: Operation, check: RunbookCheck, vms: string[], input: CheckInput, timeoutMs: number): Promise<CheckedVm[]> {
  const atTo = activitiesAt(op.to, { startToCloseTimeout: timeoutMs + 30_000, heartbeatTimeout: '20 seconds' });
  return Promise.all(vms.map(async (vm) => ({ vm, ...(await atTo.checkGuest.executeWithOptions({ summary: `check ${check.name}: ${check.type} on ${vm}` }, [input(vm)])) })));
}

/**
 * The restore point the drill rebuilt the domain to is tagged with the outcome, next to the point
 * (see docs/restore-points.md). Not the drill's goal: a store that keeps refusing is reported, not fatal.
 */
async function tagTestedPoint(op: Operation, upTo: RehydrationTarget, id: string, outcome: DrillReport['outcome']): Promise<TestedPoint> {
  const atTo = activitiesAt(op.to, { retry: { ...SITE_RETRY, maximumAttempts: 5 } });
  try {
    return await op.step('tag the restore point tested', () =>
      atTo.recordPointTested.executeWithOptions({ summary: `tag the restore point of ${op.domain} the drill used: ${outcome}` }, [
        { domain: op.domain, upTo, drill: id, workflowId: workflowInfo().workflowId, outcome },
      ]),
    );
  } catch (error) {
    return { point: null, why: `the tag could not be written: ${failureMessage(error)}` };
  }
}

function probeOf(check: RunbookCheck): CheckGuestInput['probe'] {
  if (check.type === 'tcp') return { kind: 'tcp', port: check.port };
  if (check.type === 'http') return { kind: 'http', port: check.port, path: check.path };
  return { kind: 'heartbeat' };
}

function inventoryNames(op: Operation): Promise<InventoryNames> {
  return activitiesAt(op.to).inventoryNames.executeWithOptions({ summary: `every VM and disk name at ${op.to}` }, []);
}

/** A forced cleanup gives each removal (or batch of them) a few attempts, then reports what still fails. */
const FORCED_RETRY = { initialInterval: '1 second', maximumAttempts: 3 };

/** VMs (appliances and representation VMs too) before the disks they hold. */
const REMOVAL_ORDER: Array<DrillResource['kind']> = ['rocva', 'vm', 'representation', 'disk'];

/**
 * Removes every resource the drill recorded and compares the site's names with those before the
 * drill. Not cancellable: a cancel asks for exactly this. Unforced, a site that does not answer is
 * retried until it does; forced, each removal gets a few attempts and what still fails is reported.
 */
async function cleanUp(op: Operation, id: string, before: InventoryNames, request: CleanupRequest): Promise<DrillCleanup> {
  const force = request.force ?? false;
  const inBatches = patched('drill-cleanup-in-batches');
  return CancellationScope.nonCancellable(() =>
    op.step('clean up the drill', async () => {
      const removals: Removals = { removed: {}, alreadyGone: {}, notRemoved: listingOf([]) };
      for (const kind of REMOVAL_ORDER) {
        const resources = op.resources.filter((r) => r.kind === kind);
        await (inBatches ? removeInBatches(op, resources, force, removals) : removeOneByOne(op, resources, force, removals));
      }
      return { requestedBy: request.requestedBy, force, ...removals, inventory: compareInventory(before, await inventoryNames(op), drillResourceName(id, '')) };
    }),
  );
}

type Removals = Pick<DrillCleanup, 'removed' | 'alreadyGone' | 'notRemoved'>;

function count(counts: ResourceCounts, resources: DrillResource[]): void {
  for (const { kind } of resources) counts[kind] = (counts[kind] ?? 0) + 1;
}

/** The site's names after the cleanup against those before the drill (sets: 10,000 VMs each side). */
function compareInventory(before: InventoryNames, after: InventoryNames, prefix: string): DrillCleanup['inventory'] {
  const beforeNames = new Set([...before.vms, ...before.disks]);
  const afterNames = new Set([...after.vms, ...after.disks]);
  const appeared = [...afterNames].filter((n) => !beforeNames.has(n));
  const disappeared = [...beforeNames].filter((n) => !afterNames.has(n));
  return {
    asBefore: appeared.length === 0 && disappeared.length === 0,
    before: { vms: before.vms.length, disks: before.disks.length },
    leftBehind: listingOf(appeared.filter((n) => n.startsWith(prefix))),
    otherChanges: { appeared: listingOf(appeared.filter((n) => !n.startsWith(prefix))), disappeared: listingOf(disappeared) },
  };
}

/**
 * Resources removed by batch activities (VMS_PER_BATCH each): the drill's history grows by one
 * activity per batch, not per resource. Forced, each removal has a few attempts in its batch, and
 * the batch itself as many (a killed worker's retry resumes from its heartbeat).
 */
async function removeInBatches(op: Operation, resources: DrillResource[], force: boolean, removals: Removals): Promise<void> {
  const atTo = batchActivitiesAt(op.to, force ? { retry: FORCED_RETRY } : {});
  await forEachBatch(resources, async (batch, range) => {
    const outcome = await atTo.removeDrillResourcesOfBatch.executeWithOptions({ summary: `remove ${batch[0].kind}s ${range} from ${op.to}` }, [{ resources: batch, force }]);
    count(removals.removed, outcome.removed);
    count(removals.alreadyGone, outcome.alreadyGone);
    addToListing(removals.notRemoved, outcome.notRemoved);
  });
}

/** An activity per resource, as drills recorded before batches were. */
async function removeOneByOne(op: Operation, resources: DrillResource[], force: boolean, removals: Removals): Promise<void> {
  const atTo = activitiesAt(op.to, force ? { retry: FORCED_RETRY } : {});
  await forEachVm(resources, async (resource) => {
    try {
      const { removed } = await atTo.removeDrillResource.executeWithOptions({ summary: `remove ${resource.kind} ${resource.name} from ${op.to}` }, [resource]);
      count(removed ? removals.removed : removals.alreadyGone, [resource]);
    } catch (error) {
      if (!force) throw error;
      addToListing(removals.notRemoved, [{ ...resource, why: failureMessage(error) }]);
    }
  });
}

/**
 * The runbook's postCleanup webhooks, in order, once the cleanup is done. Nothing is left to undo,
 * so a failure is recorded on its step (the drill ends succeeded-with-failures); one under the
 * abort policy stops the webhooks after it.
 */
async function postCleanupWebhooks(op: Operation): Promise<void> {
  for (const step of op.runbook.spec.postCleanup) {
    let failed = false;
    await op.stepPastGoal(`webhook ${step.name} after the cleanup`, async () => {
      try {
        await callWebhookStep(op.to, step, `${workflowInfo().workflowId}/postCleanup/${step.name}`);
      } catch (error) {
        failed = true;
        throw error;
      }
    });
    if (failed && step.onFailure === 'abort') return;
  }
}
