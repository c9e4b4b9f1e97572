/**
 * The failback workflow against stub sites (fast tier), after a planned failover of each test's
 * domain: planned and forced failback by delta and by full rehydration, every activity step
 * failing in turn, a cancel at every phase, and a failover by the runbook with its sites swapped.
 * Whatever path a failback takes, the original VMs and disks at the primary stay (issue 12).
 * Written against behaviour only: activity calls, the report, the outcome and what the stub sites hold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { failback } from '../../workflows/failback';
import { failover } from '../../workflows/failover';
import type { HandoverType, OperationReport } from '../../workflows/operation-messages';
import { protectStatusQuery } from '../../workflows/protect';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { failbackInput, failoverInput, storedRunbook, vmNames } from '../fixtures/workflow-runbooks';
import type { StubCall } from '../harness/stub-sites';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import {
  PARALLEL,
  abortReport,
  argOf,
  argsOfBatch,
  assertHandoverUndone,
  assertProtectionCancelled,
  callsOfOperation,
  cancelsRequestedBy,
  cancelWhenReached,
  failLastCallOf,
  holdFirstCallOf,
  outcomeAttribute,
  protection,
  sorted,
  stepKey,
  stepsOf,
  type Step,
} from './operation-sweep';
import { assertOriginalsExist, assertOriginalsKept, namesIn, originalsAt, type Originals } from './primary-originals';

type Rehydration = 'delta' | 'full';

const t = useWorkflowEnv();

const failoverId = (domain: string) => `failover/${domain}/test`;
const failbackId = (domain: string) => `failback/${domain}/test`;

/** The report's steps, in the order docs/failback.md gives the procedure. */
function procedure(domain: string, type: HandoverType, rehydration: Rehydration): string[] {
  return [
    'check ownership',
    `find the original VMs at ${PRIMARY}`,
    ...(type === 'planned' ? [`shut down VMs at ${RECOVERY}`, 'wait until every disk is logged', 'drain replication', 'check every disk is logged after the drain', `record the departure from ${RECOVERY}`, 'hand over ownership'] : ['take over ownership', `record the departure from ${RECOVERY}`]),
    'resolve the recovery point',
    `stop journaling the original disks at ${PRIMARY}`,
    'check the original disks for a delta',
    ...(rehydration === 'delta' ? ['rehydrate the changes since the failover (delta)'] : ['deploy the RocVA', 'rehydrate the original disks fully', 'remove the RocVA']),
    'resume protection',
    'power on by the runbook',
    'set the domain mode',
    ...(type === 'planned' ? [`remove ${domain} from ${RECOVERY}`] : []),
  ];
}

/** A planned failback's removal of the domain from the recovery site: past the failback's goal, it is not undone. */
const REMOVAL = `${RECOVERY}:removeRecoveredVm`;
/** The batch activity over REMOVAL's calls: failed before it removes anything, its VMs all stay. */
const REMOVAL_BATCH = `${RECOVERY}:removeRecoveredVmsOfBatch`;
const isRemoval = (step: Step) => step.key === REMOVAL || step.key === REMOVAL_BATCH;

/** A domain the failback starts from, and what the primary and the recovery site held of it then. */
interface FailedOver {
  domain: string;
  originals: Originals;
  atRecovery: string[];
}

/** `name:kind:powerState` of each VM a site holds of the domain, and its disks. */
function inventory(site: string, domain: string): string[] {
  const { vms, disks, rocvas } = t.sites.inventoryOf(site, domain);
  return [...vms.map(([name, vm]) => `${name}:${vm.kind}:${vm.powerState}`), ...disks, ...rocvas];
}

/**
 * A new domain, failed over (planned) to the recovery site and running there in epoch 2: the
 * primary's original VMs are shut down on their disks, where the departure was recorded. `full`:
 * that record is gone (as after a failover that predates departure records), so failback cannot
 * take a delta and rehydrates the original disks fully.
 */
async function failedOverDomain(label: string, rehydration: Rehydration): Promise<FailedOver> {
  const domain = newStubDomain(t, label, vmNames);
  const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: failoverId(domain), args: [failoverInput(domain, 'planned')] });
  assert.equal(report.outcome, 'succeeded', `the failover that failback returns from: ${JSON.stringify(report)}`);
  if (rehydration === 'full') delete t.sites.domain(domain).departures[PRIMARY];
  return { domain, originals: originalsAt(t.sites, PRIMARY, domain), atRecovery: inventory(RECOVERY, domain) };
}

function startFailback(domain: string, type: HandoverType): Promise<WorkflowHandle<typeof failback>> {
  return t.client.workflow.start(failback, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: failbackId(domain), args: [{ ...failbackInput(domain, type), runbook: storedRunbook(t, domain) }] });
}

/** The calls the failback and its power-on groups made (not the failover's before it, nor a protection's). */
const failbackCalls = (domain: string) => callsOfOperation(t.sites, domain, failbackId(domain));

/** The domain's running protection at a site, in its newest epoch there; undefined when none runs or it is stopping. */
async function runningProtection(domain: string, site: string): Promise<number | undefined> {
  for (let epoch = t.sites.domain(domain).epoch; epoch >= 1; epoch--) {
    const handle = await protection(t.client, domain, site, epoch);
    if (!handle || (await handle.describe()).status.name !== 'RUNNING') continue;
    if (!(await handle.query(protectStatusQuery)).stopping) return epoch;
  }
  return undefined;
}

/**
 * After an abort or a cancel: what the failback created or changed before it stopped was undone,
 * the domain runs where it ran before (at the recovery site, protected), the primary's original
 * VMs and disks are as they were, and for an abort the report's compensation says so and claims
 * nothing that never happened.
 */
async function assertUndone({ domain, originals, atRecovery }: FailedOver, type: HandoverType, report?: OperationReport): Promise<void> {
  const calls = failbackCalls(domain);
  const ok = (name: StubCall['name'], site: string) => calls.filter((c) => c.name === name && c.ended === 'ok' && c.site === site);
  const attempted = (name: StubCall['name'], site: string) => calls.filter((c) => c.name === name && c.site === site);

  // What the failback created or changed, going forward.
  const stopped = ok('shutdownForHandover', RECOVERY).filter((c) => (c.result as { outcome: string }).outcome !== 'alreadyOff').map((c) => String(argOf(c).vm));
  const claimed = ok('claimDomain', PRIMARY).some((c) => (c.result as { won: boolean }).won);
  const rocvas = ok('deployRocva', PRIMARY).map((c) => String(argOf(c).name));
  const startedAtPrimary = ok('powerOnVm', PRIMARY).map((c) => String(argOf(c).vm));
  // Either way the primary's epoch is 3: handed back (planned) or taken (forced) from the recovery site's epoch 2.
  const primaryProtection = await protection(t.client, domain, PRIMARY, 3);

  // The undo calls.
  // The undo powers on what ran before the shutdown: a VM the shutdown had not reached yet answers that it is on already.
  const startedAgain = ok('powerOnVm', RECOVERY).filter((c) => !(c.result as { alreadyOn: boolean }).alreadyOn);
  assert.deepEqual(sorted(startedAgain.map((c) => String(argOf(c).vm))), sorted(stopped), 'the VMs shut down at the recovery site are powered on again, and only those');
  const handedBack = assertHandoverUndone(calls, { from: RECOVERY, to: PRIMARY });
  const destroyed = ok('destroyRocva', PRIMARY).map((c) => String(argOf(c).name));
  for (const rocva of rocvas) assert.ok(destroyed.includes(rocva), `RocVA ${rocva} is destroyed`);
  for (const rocva of destroyed) assert.ok(attempted('deployRocva', PRIMARY).some((c) => argOf(c).name === rocva), `RocVA ${rocva} was never deployed`);
  if (primaryProtection) await assertProtectionCancelled(primaryProtection, PRIMARY);

  // What the sites hold now.
  assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain).rocvas, [], 'no RocVA is left at the primary');
  assertOriginalsKept(t.sites, originals, calls, 'restored');
  const record = t.sites.domain(domain);
  assert.equal(record.status?.mode, 'Running in Failover', 'the domain keeps the mode it had');
  assert.equal(record.status?.runningAt, RECOVERY);
  if (type === 'planned') {
    assert.equal(record.owner, RECOVERY, 'a planned failback that did not finish leaves the domain with the recovery site');
    assert.deepEqual(inventory(RECOVERY, domain), atRecovery, 'the recovery site holds the domain as before, every VM running');
    assert.ok(await runningProtection(domain, RECOVERY), 'the domain is protected at the recovery site again');
  } else {
    assert.equal(record.owner, claimed ? PRIMARY : RECOVERY, 'a forced takeover is never handed back to the lost site');
    assert.deepEqual(
      calls.filter((c) => c.site === RECOVERY),
      [],
      'a forced failback schedules nothing on the lost recovery site',
    );
  }

  if (!report?.compensation) return;
  const { undone, remains } = report.compensation;
  const mentions = (patterns: RegExp[]) => undone.filter((entry) => patterns.every((p) => p.test(entry)));
  const expected: Array<{ what: string; patterns: RegExp[] }> = [
    ...rocvas.map((rocva) => ({ what: `RocVA ${rocva}`, patterns: [new RegExp(rocva)] })),
    ...(handedBack ? [{ what: 'ownership with the recovery site again', patterns: [/ownership/, /protection resumed/, new RegExp(RECOVERY)] }] : []),
    ...(primaryProtection ? [{ what: 'protection at the primary', patterns: [/protection/, new RegExp(PRIMARY)] }] : []),
    ...(stopped.length > 0 ? [{ what: 'the VMs shut down at the recovery site', patterns: [/shut down/, new RegExp(RECOVERY)] }] : []),
    ...(startedAtPrimary.length > 0 ? [{ what: 'the VMs powered on at the primary', patterns: [/powered on/, /off/, new RegExp(PRIMARY)] }] : []),
  ];
  for (const { what, patterns } of expected) assert.ok(mentions(patterns).length > 0, `the report says ${what} was undone: ${JSON.stringify(undone)}`);
  // Every entry stands for something that happened (a planned failback's shutdown entry and the
  // power-on's for a phase that was begun, even if no VM had changed yet).
  const shutdownBegun = type === 'planned' && ok('findExisting', PRIMARY).length > 0;
  const powerOnBegun = report.steps.some((s) => s.name === 'power on by the runbook');
  for (const entry of undone) {
    const accounted = expected.some(({ patterns }) => patterns.every((p) => p.test(entry))) || (shutdownBegun && /shut down/.test(entry)) || (powerOnBegun && /powered on at/.test(entry));
    assert.ok(accounted, `the report says "${entry}" was undone, but the failback never did it`);
  }
  if (type === 'forced' && claimed) {
    assert.equal(remains.length, 1, `only the takeover remains: ${JSON.stringify(remains)}`);
    assert.match(remains[0], new RegExp(`ownership of ${domain} stays with ${PRIMARY}`));
  } else {
    assert.deepEqual(remains, [], 'nothing remains');
  }
}

/** The domain runs at the primary again: its original VMs on their disks, owned and protected there, mode Protected. */
async function assertBackAtPrimary({ domain, originals }: FailedOver): Promise<void> {
  assert.deepEqual(
    inventory(PRIMARY, domain),
    [...vmNames(domain).sort().map((vm) => `${vm}:vm:poweredOn`), ...originals.disks],
    'the original VMs run at the primary on their disks; no representation VM or RocVA is there',
  );
  assertOriginalsKept(t.sites, originals, failbackCalls(domain), 'as the operation left them');
  const record = t.sites.domain(domain);
  assert.equal(record.owner, PRIMARY);
  assert.equal(record.status?.mode, 'Protected');
  assert.equal(record.status?.runningAt, PRIMARY);
  assert.equal(await runningProtection(domain, PRIMARY), 3, 'protection runs at the primary as its owner again');
}

/**
 * A failure or a cancel while the domain is removed from the recovery site comes after the
 * failback reached its goal: nothing is undone (the undo would return the domain to the copies
 * being removed), the domain runs at the primary, and what was not removed stays at the recovery site.
 */
async function assertPastGoal(before: FailedOver, report: OperationReport, notRemoved: string[]): Promise<void> {
  const { domain } = before;
  const calls = failbackCalls(domain);
  await assertBackAtPrimary(before);
  assert.deepEqual(report.compensation, undefined, 'nothing is undone');
  assert.deepEqual(
    calls.filter((c) => (c.site === RECOVERY && c.name === 'powerOnVm') || (c.site === PRIMARY && (c.name === 'releaseDomain' || c.name === 'shutdownForHandover'))),
    [],
    'no undo call ran',
  );
  const left = t.sites.inventoryOf(RECOVERY, domain);
  assert.deepEqual(
    left.vms.map(([name]) => name),
    notRemoved,
    'the recovery site holds what was not removed, and nothing else',
  );
  assert.deepEqual(left.disks, notRemoved.flatMap((vm) => t.sites.domain(domain).disks.filter((d) => d.vm === vm).map((d) => d.diskId)));
}

/** Runs one failback to the end and checks the happy path; returns its steps for the failure and cancel tests. */
async function happyPath(type: HandoverType, rehydration: Rehydration): Promise<Step[]> {
  const before = await failedOverDomain(`${type}-${rehydration}-happy`, rehydration);
  const { domain } = before;
  try {
    const handle = await startFailback(domain, type);
    const report = await handle.result();
    assert.equal(report.outcome, 'succeeded');
    assert.equal(await outcomeAttribute(handle), 'succeeded');
    assert.deepEqual(
      report.steps.map((s) => s.name),
      procedure(domain, type, rehydration),
    );
    for (const [i, step] of report.steps.entries()) {
      assert.equal(step.state, 'done', `step ${step.name}`);
      if (i > 0) assert.ok(step.startedAt >= report.steps[i - 1].endedAt!, `${step.name} starts after ${report.steps[i - 1].name} ended`);
    }
    assert.deepEqual(
      report.vms.map((vm) => `${vm.name}:${vm.state}`).sort(),
      vmNames(domain).sort().map((vm) => `${vm}:poweredOn`),
    );
    assert.equal(report.epoch, 3, "the primary's epoch follows the recovery site's");
    assert.ok(report.rtoMs !== undefined && report.rtoMs >= 0, 'the report has an RTO');
    if (type === 'planned') assert.equal(report.rpoMs, 0, 'a planned failback loses no acknowledged write');
    const disksBytes = t.sites.domain(domain).disks.reduce((sum, d) => sum + d.sizeBytes, 0);
    if (rehydration === 'delta') {
      assert.equal(report.rehydration?.kind, 'delta');
      assert.ok(report.rehydration.bytesWritten > 0 && report.rehydration.bytesWritten < disksBytes, `a delta writes less than the disks hold: ${report.rehydration.bytesWritten}`);
    } else {
      assert.equal(report.rehydration?.kind, 'full');
      assert.equal(report.rehydration.bytesWritten, disksBytes, 'a full rehydration writes every disk');
      assert.match(report.rehydration.why ?? '', new RegExp(`no departure from site ${PRIMARY}`));
    }

    await assertBackAtPrimary(before);
    if (type === 'planned') {
      assert.deepEqual(inventory(RECOVERY, domain), [], 'the recovery site holds nothing of the domain');
      assert.equal(await runningProtection(domain, RECOVERY), undefined, 'the recovery site no longer protects the domain');
    } else {
      assert.deepEqual(
        failbackCalls(domain).filter((c) => c.site === RECOVERY),
        [],
        'a forced failback schedules nothing on the lost recovery site',
      );
      assert.deepEqual(inventory(RECOVERY, domain), before.atRecovery, 'what the lost site holds is removed when it returns, not now');
      const fenced = await protection(t.client, domain, RECOVERY, 2);
      assert.ok(fenced, 'the failover protected the domain at the recovery site');
      await assertProtectionCancelled(fenced, RECOVERY);
    }
    return stepsOf(failbackCalls(domain));
  } finally {
    await t.closeDomain(domain);
  }
}

/** A cancel while the recovery site's copies are being removed comes too late: the removal goes on, and the failback succeeds. */
async function cancelPastGoal(before: FailedOver, step: Step): Promise<void> {
  const { domain } = before;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (entered = resolve));
  let held = false;
  t.sites.intercept(domain, async (call, proceed) => {
    if (!held && call.workflowId === failbackId(domain) && stepKey(call) === step.key) {
      held = true;
      entered();
      await released;
    }
    return proceed();
  });
  try {
    const handle = await startFailback(domain, 'planned');
    await reached;
    await handle.cancel();
    release();
    const report = await handle.result();
    assert.equal(report.outcome, 'succeeded');
    await assertPastGoal(before, report, []);
    assert.ok(!(await cancelsRequestedBy(handle)).includes(protectionWorkflowId(domain, PRIMARY, 3)), 'the cancel does not reach the protection resumed at the primary');
  } finally {
    await t.closeDomain(domain);
  }
}

for (const type of ['planned', 'forced'] as const) {
  describe(`${type} failback on stub sites`, () => {
    const steps: Partial<Record<Rehydration, Step[]>> = {};

    for (const rehydration of ['delta', 'full'] as const) {
      it(`happy path by ${rehydration} rehydration: the report lists the procedure in order, and the original VMs run at the primary again`, async () => {
        steps[rehydration] = await happyPath(type, rehydration);
      });
    }

    /** Each step of either happy path once: a step both take is failed or held on the delta path. */
    const sweep = () => {
      const { delta, full } = steps;
      assert.ok(delta && full, 'both happy paths ran first');
      return [...delta.map((step) => ({ step, rehydration: 'delta' as const })), ...full.filter((s) => !delta.some((d) => d.key === s.key)).map((step) => ({ step, rehydration: 'full' as const }))];
    };

    it('each activity step failing (non-retryable) aborts with OperationAborted, undoes what it did, and leaves the original VMs and disks', { concurrency: PARALLEL }, async (ctx) => {
      const cases = sweep();
      assert.ok(cases.length >= (type === 'planned' ? 18 : 14), `the happy paths made the calls of every step: ${cases.map((c) => c.step.key).join(', ')}`);
      await Promise.all(
        cases.map(({ step, rehydration }) =>
          ctx.test(`${step.key} fails (call ${step.calls} of ${step.calls}, ${rehydration})`, async () => {
            const before = await failedOverDomain(`${type} fail ${step.key}`, rehydration);
            failLastCallOf(t.sites, before.domain, failbackId(before.domain), step);
            try {
              const handle = await startFailback(before.domain, type);
              if (isRemoval(step)) {
                const report = await handle.result();
                assert.equal(report.outcome, 'succeeded-with-failures');
                assert.equal(await outcomeAttribute(handle), 'succeeded-with-failures');
                const removal = report.steps.find((s) => s.name === `remove ${before.domain} from ${RECOVERY}`);
                assert.equal(removal?.state, 'failed');
                assert.match(removal.detail ?? '', new RegExp(`injected failure of ${step.key}`));
                const failed = failbackCalls(before.domain).filter((c) => stepKey(c) === step.key && c.ended === 'failed');
                await assertPastGoal(before, report, sorted(failed.flatMap((c) => (step.key === REMOVAL_BATCH ? argsOfBatch(c) : [argOf(c)]).map((a) => String(a.vm)))));
                return;
              }
              const report = await abortReport(handle);
              assert.match(report.failure ?? '', new RegExp(`injected failure of ${step.key}`));
              await assertUndone(before, type, report);
            } finally {
              await t.closeDomain(before.domain);
            }
          }),
        ),
      );
    });

    it('a cancel at each phase (while its activity runs) ends cancelled, undoes what it did, and leaves the original VMs and disks', { concurrency: PARALLEL }, async (ctx) => {
      // A forced failback shares every phase but its takeover with a planned one, and cancelling
      // runs the same undo as aborting, which its failure tests cover step by step: here only the
      // takeover and the power-on, when everything has been done.
      const cases = sweep().filter(({ step }) => type === 'planned' || step.key === `${PRIMARY}:claimDomain` || step.key === `${PRIMARY}:powerOnVm in app`);
      assert.ok(type === 'planned' || cases.length === 2, `the forced failback's takeover and power-on: ${cases.map((c) => c.step.key).join(', ')}`);
      await Promise.all(
        cases.map(({ step, rehydration }) =>
          ctx.test(`cancelled during ${step.key} (${rehydration})`, async () => {
            const before = await failedOverDomain(`${type} cancel ${step.key}`, rehydration);
            if (isRemoval(step)) return cancelPastGoal(before, step);
            const reached = holdFirstCallOf(t.sites, before.domain, failbackId(before.domain), step);
            try {
              const handle = await startFailback(before.domain, type);
              await cancelWhenReached(handle, reached, step);
              await assertUndone(before, type);
            } finally {
              await t.closeDomain(before.domain);
            }
          }),
        ),
      );
    });
  });
}

describe('a failover by the runbook with its sites swapped, sent to fail back by hand (the API refuses it with 409)', () => {
  const swappedId = (domain: string) => `failover/${domain}/swapped`;

  function startSwappedFailover(domain: string): Promise<WorkflowHandle<typeof failover>> {
    const input = failoverInput(domain, 'planned');
    const runbook = { ...input.runbook, spec: { ...input.runbook.spec, sites: { primary: RECOVERY, recovery: PRIMARY } } };
    return t.client.workflow.start(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: swappedId(domain), args: [{ ...input, runbook }] });
  }

  let steps: Step[] | undefined;

  it('runs at the workflow level, preparing target disks over the original VMs: only the API refuses it', async () => {
    const { domain, originals } = await failedOverDomain('swapped-happy', 'delta');
    try {
      const report = await (await startSwappedFailover(domain)).result();
      assert.equal(report.outcome, 'succeeded');
      const calls = callsOfOperation(t.sites, domain, swappedId(domain));
      assert.ok(
        calls.some((c) => c.site === PRIMARY && c.name === 'prepareTargetDisks' && originals.vms.has(String(argOf(c).vm))),
        'it prepares target disks for the original VMs at the primary',
      );
      steps = stepsOf(calls);
    } finally {
      await t.closeDomain(domain);
    }
  });

  it('each step failing: the undo keeps every original VM and disk it found at the primary', { concurrency: PARALLEL }, async (ctx) => {
    assert.ok(steps && steps.length >= 15, `the happy path made the calls of every step: ${steps?.map((s) => s.key).join(', ')}`);
    await Promise.all(
      steps.map((step) =>
        ctx.test(`${step.key} fails (call ${step.calls} of ${step.calls})`, async () => {
          const { domain, originals } = await failedOverDomain(`swapped fail ${step.key}`, 'delta');
          failLastCallOf(t.sites, domain, swappedId(domain), step);
          try {
            const report = await abortReport(await startSwappedFailover(domain));
            assert.match(report.failure ?? '', new RegExp(`injected failure of ${step.key}`));
            assertOriginalsExist(t.sites, originals);
            const calls = callsOfOperation(t.sites, domain, swappedId(domain));
            const originalNames = (value: unknown) => namesIn(value).filter((n) => originals.vms.has(n) || originals.disks.includes(n));
            const removals = calls.filter((c) => c.site === PRIMARY && c.name === 'removeRecoveredVm');
            for (const removal of removals) {
              const { found, ...target } = argOf(removal);
              const kept = new Set(originalNames(found));
              assert.deepEqual(
                originalNames(target).filter((n) => !kept.has(n)),
                [],
                `the undo's removal of ${String(target.vm)} keeps the originals it names: ${JSON.stringify(removal.args)}`,
              );
            }
            if (calls.some((c) => c.site === PRIMARY && c.name === 'prepareTargetDisks')) {
              assert.ok(
                removals.some((c) => originalNames(argOf(c).vm).length > 0),
                'target disks were prepared over the originals, so the undo reached them',
              );
            }
          } finally {
            await t.closeDomain(domain);
          }
        }),
      ),
    );
  });
});
