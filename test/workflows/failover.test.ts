/**
 * The failover workflow against stub sites (fast tier): the happy path, every activity step
 * failing in turn, a cancel at every phase, an approval gate that times out and a guest that never
 * heartbeats. Written against behaviour only (activity calls, the report, the outcome and what the
 * stub sites hold afterwards), so that it holds whatever shape the workflow's code takes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { failover } from '../../workflows/failover';
import type { HandoverType, OperationReport } from '../../workflows/operation-messages';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { failoverInput, vmNames, type RunbookOptions } from '../fixtures/workflow-runbooks';
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
  cancelWhenReached,
  failLastCallOf,
  holdFirstCallOf,
  outcomeAttribute,
  protection,
  sorted,
  stepsOf,
  type Step,
} from './operation-sweep';
import { assertOriginalsKept, originalsAt, type Originals } from './primary-originals';

/** The report's steps, in the order docs/failover.md gives the procedure: a planned and a forced failover differ only in how ownership moves. */
const REBUILD = [
  'resolve the recovery point',
  'deploy the RocVA',
  'create representation VMs',
  'rehydrate disks',
  'remove representation VMs',
  'register VMs',
  'resume protection',
  'power on by the runbook',
  'remove the RocVA',
  'set the domain mode',
];
const PROCEDURE: Record<HandoverType, string[]> = {
  planned: ['check ownership', 'shut down VMs at primary', 'wait until every disk is logged', 'drain replication', 'check every disk is logged after the drain', 'record the departure from primary', 'hand over ownership', ...REBUILD],
  forced: ['check ownership', 'take over ownership', 'record the departure from primary', ...REBUILD],
};

const t = useWorkflowEnv();
/** Each test domain's VMs and disks at the primary, recorded when it is made: no failover may destroy them. */
const originals = new Map<string, Originals>();
function newDomain(label: string): string {
  const domain = newStubDomain(t, label, vmNames);
  originals.set(domain, originalsAt(t.sites, PRIMARY, domain));
  return domain;
}

const failoverId = (domain: string) => `failover/${domain}/test`;

function startFailover(domain: string, type: HandoverType, options: RunbookOptions = {}): Promise<WorkflowHandle<typeof failover>> {
  return t.client.workflow.start(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: failoverId(domain), args: [failoverInput(domain, type, options)] });
}

/** The calls the failover and its power-on groups made (not those of the protection it started). */
const operationCalls = (domain: string) => callsOfOperation(t.sites, domain, failoverId(domain));

/**
 * After an abort or a cancel: whatever the failover created before it stopped was undone (the undo
 * calls happened and the stub sites hold nothing of it), nothing that was never created was
 * "undone", and for an abort the report's compensation says so.
 */
async function assertUndone(domain: string, type: HandoverType, report?: OperationReport): Promise<void> {
  const calls = operationCalls(domain);
  const ok = (name: StubCall['name'], site?: string) => calls.filter((c) => c.name === name && c.ended === 'ok' && (!site || c.site === site));
  const attempted = (name: StubCall['name'], site?: string) => calls.filter((c) => c.name === name && (!site || c.site === site));

  // What the failover created, going forward.
  const stopped = ok('shutdownForHandover').filter((c) => (c.result as { outcome: string }).outcome !== 'alreadyOff').map((c) => String(argOf(c).vm));
  const claimed = ok('claimDomain', RECOVERY).some((c) => (c.result as { won: boolean }).won);
  const rocvas = ok('deployRocva').map((c) => String(argOf(c).name));
  // A batch's undo is pushed before the batch starts: each VM it names may have been prepared.
  const prepared = [...attempted('prepareTargetDisks').map(argOf), ...attempted('prepareTargetDisksOfBatch').flatMap(argsOfBatch)].map((a) => String(a.vm));
  const registered = attempted('registerRecoveredVm').map((c) => String((argOf(c).spec as { name: string }).name));
  // Either way the recovery site's epoch is 2: handed over (planned) or taken over (forced) from epoch 1.
  const recoveryProtection = await protection(t.client, domain, RECOVERY, 2);

  // The undo calls.
  // The undo powers on what ran before the shutdown: a VM the shutdown had not reached yet answers that it is on already.
  const startedAgain = ok('powerOnVm', PRIMARY).filter((c) => !(c.result as { alreadyOn: boolean }).alreadyOn);
  assert.deepEqual(sorted(startedAgain.map((c) => String(argOf(c).vm))), sorted(stopped), 'the VMs shut down at the primary are powered on again, and only those');
  const handedBack = assertHandoverUndone(calls, { from: PRIMARY, to: RECOVERY });
  if (handedBack) {
    const resumed = await protection(t.client, domain, PRIMARY, t.sites.domain(domain).epoch);
    assert.equal((await resumed?.describe())?.status.name, 'RUNNING', 'protection resumes at the primary in its new epoch');
  }
  const destroyed = ok('destroyRocva').map((c) => String(argOf(c).name));
  for (const rocva of rocvas) assert.ok(destroyed.includes(rocva), `RocVA ${rocva} is destroyed`);
  for (const rocva of destroyed) assert.ok(attempted('deployRocva').some((c) => argOf(c).name === rocva), `RocVA ${rocva} was never deployed`);
  const removed = ok('removeRecoveredVm').map((c) => String(argOf(c).vm));
  assert.deepEqual(sorted(removed), sorted([...prepared, ...registered]), 'every VM prepared or registered at the recovery site is removed, and only those');
  if (recoveryProtection) await assertProtectionCancelled(recoveryProtection, RECOVERY);

  // What the sites hold now.
  assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), { vms: [], disks: [], rocvas: [] }, 'the recovery site holds nothing of the domain');
  assertOriginalsKept(t.sites, originals.get(domain)!, calls, 'restored');
  const owner = t.sites.domain(domain).owner;
  if (type === 'planned') {
    assert.equal(owner, PRIMARY, 'a planned failover that did not finish leaves the domain with the primary');
    const primaryVms = t.sites.inventoryOf(PRIMARY, domain).vms;
    assert.deepEqual(
      primaryVms.map(([name, vm]) => `${name}:${vm.powerState}`),
      vmNames(domain).sort().map((name) => `${name}:poweredOn`),
      'every VM runs at the primary again',
    );
  } else {
    assert.equal(owner, claimed ? RECOVERY : PRIMARY, 'a forced takeover is never handed back to the lost site');
    assert.deepEqual(
      t.sites.callsOf(domain).filter((c) => c.site === PRIMARY),
      [],
      'a forced failover schedules nothing on the lost site',
    );
  }

  if (!report?.compensation) return;
  const { undone, remains } = report.compensation;
  const mentions = (patterns: RegExp[]) => undone.filter((entry) => patterns.every((p) => p.test(entry)));
  const expected: Array<{ what: string; patterns: RegExp[] }> = [
    ...rocvas.map((rocva) => ({ what: `RocVA ${rocva}`, patterns: [new RegExp(rocva)] })),
    // One entry per batch of prepared VMs, naming its first and last VM.
    ...sorted(attempted('prepareTargetDisksOfBatch').map((c) => String(argsOfBatch(c)[0].vm))).map((first) => ({ what: `the batch of VMs from ${first}`, patterns: [/^VMs \S+ of \d+ \(/, new RegExp(`\\(${first}\\b`), new RegExp(`removed from ${RECOVERY}`)] })),
    ...(handedBack ? [{ what: 'ownership with the primary again', patterns: [/ownership/, /protection resumed/, new RegExp(PRIMARY)] }] : []),
    ...(recoveryProtection ? [{ what: 'protection at the recovery site', patterns: [/protection/, new RegExp(RECOVERY)] }] : []),
    ...(stopped.length > 0 ? [{ what: 'the VMs shut down at the primary', patterns: [/shut down/, new RegExp(PRIMARY)] }] : []),
  ];
  for (const { what, patterns } of expected) assert.ok(mentions(patterns).length > 0, `the report says ${what} was undone: ${JSON.stringify(undone)}`);
  // Every entry stands for something that was created (a planned failover's shutdown entry for a
  // shutdown that was begun, even if no VM had stopped yet).
  const shutdownBegun = type === 'planned' && ok('describeDomain').length > 0;
  for (const entry of undone) {
    const accounted = expected.some(({ patterns }) => patterns.every((p) => p.test(entry))) || (shutdownBegun && /shut down/.test(entry));
    assert.ok(accounted, `the report says "${entry}" was undone, but the failover never created it`);
  }
  if (type === 'forced' && claimed) {
    assert.equal(remains.length, 1, `only the takeover remains: ${JSON.stringify(remains)}`);
    assert.match(remains[0], new RegExp(`ownership of ${domain} stays with ${RECOVERY}`));
  } else {
    assert.deepEqual(remains, [], 'nothing remains');
  }
}

/** Runs one failover to the end and checks the happy path; returns its steps for the failure and cancel tests. */
async function happyPath(type: HandoverType): Promise<Step[]> {
  const domain = newDomain(`${type}-happy`);
  const handle = await startFailover(domain, type);
  const report = await handle.result();
  try {
    assert.equal(report.outcome, 'succeeded');
    assert.equal(await outcomeAttribute(handle), 'succeeded');
    assert.deepEqual(
      report.steps.map((s) => s.name),
      PROCEDURE[type],
    );
    for (const [i, step] of report.steps.entries()) {
      assert.equal(step.state, 'done', `step ${step.name}`);
      if (i > 0) assert.ok(step.startedAt >= report.steps[i - 1].endedAt!, `${step.name} starts after ${report.steps[i - 1].name} ended`);
    }
    assert.deepEqual(
      report.vms.map((vm) => `${vm.name}:${vm.state}`).sort(),
      vmNames(domain).sort().map((vm) => `${vm}:poweredOn`),
    );
    assert.equal(report.epoch, 2);
    assert.ok(report.rtoMs !== undefined && report.rtoMs >= 0, 'the report has an RTO');
    if (type === 'planned') assert.equal(report.rpoMs, 0, 'a planned failover loses no acknowledged write');

    const recovery = t.sites.inventoryOf(RECOVERY, domain);
    assert.deepEqual(
      recovery.vms.map(([name, vm]) => `${name}:${vm.kind}:${vm.powerState}`),
      vmNames(domain).sort().map((vm) => `${vm}:vm:poweredOn`),
      'the recovered VMs run at the recovery site; no representation VM is left',
    );
    assert.deepEqual(recovery.rocvas, [], 'the RocVA is removed');
    const record = t.sites.domain(domain);
    assert.equal(record.owner, RECOVERY);
    assert.equal(record.status?.mode, 'Running in Failover');
    assert.equal(record.status?.runningAt, RECOVERY);
    const protectedAtRecovery = await protection(t.client, domain, RECOVERY, 2);
    assert.equal((await protectedAtRecovery?.describe())?.status.name, 'RUNNING', 'protection runs at the recovery site as its new owner');
    if (type === 'planned') {
      assert.deepEqual(
        t.sites.inventoryOf(PRIMARY, domain).vms.map(([name, vm]) => `${name}:${vm.powerState}`),
        vmNames(domain).sort().map((vm) => `${vm}:poweredOff`),
        'the primary VMs were shut down',
      );
    } else {
      assert.deepEqual(
        t.sites.callsOf(domain).filter((c) => c.site === PRIMARY),
        [],
        'a forced failover schedules nothing on the lost site',
      );
    }
    const rehydration = t.sites.callsOf(domain).find((c) => c.name === 'rehydrateDomain');
    assert.equal(rehydration && argOf(rehydration).targetDisksPrepared, true, 'the rehydration does not create the disks the failover prepared again');
    assertOriginalsKept(t.sites, originals.get(domain)!, operationCalls(domain), 'as the operation left them');
    return stepsOf(operationCalls(domain));
  } finally {
    await t.closeDomain(domain);
  }
}

for (const type of ['planned', 'forced'] as const) {
  describe(`${type} failover on stub sites`, () => {
    let steps: Step[] | undefined;

    it('happy path: the report lists the procedure in order and every VM ends powered on at the recovery site', async () => {
      steps = await happyPath(type);
    });

    it('each activity step failing (non-retryable) aborts with OperationAborted and undoes what was created before it', { concurrency: PARALLEL }, async (ctx) => {
      assert.ok(steps, 'the happy path ran first');
      assert.ok(steps.length >= (type === 'planned' ? 15 : 13), `the happy path made the calls of every step: ${steps.map((s) => s.key).join(', ')}`);
      await Promise.all(
        steps.map((step) =>
          ctx.test(`${step.key} fails (call ${step.calls} of ${step.calls})`, async () => {
            const domain = newDomain(`${type} fail ${step.key}`);
            failLastCallOf(t.sites, domain, failoverId(domain), step);
            try {
              const handle = await startFailover(domain, type);
              const report = await abortReport(handle);
              assert.match(report.failure ?? '', new RegExp(`injected failure of ${step.key}`));
              await assertUndone(domain, type, report);
            } finally {
              await t.closeDomain(domain);
            }
          }),
        ),
      );
    });

    it('a cancel at each phase (while its activity runs) ends cancelled and undoes everything', { concurrency: PARALLEL }, async (ctx) => {
      assert.ok(steps, 'the happy path ran first');
      // A forced failover shares every phase but one with a planned one, and cancelling runs the
      // same undo as aborting, which the forced failure tests cover step by step: here only its
      // own phase (the takeover) and the power-on, when everything has been created.
      const phases = type === 'planned' ? steps : steps.filter((s) => s.key === `${RECOVERY}:claimDomain` || s.key === `${RECOVERY}:powerOnVm in app`);
      assert.equal(phases.length, type === 'planned' ? steps.length : 2);
      await Promise.all(
        phases.map((step) =>
          ctx.test(`cancelled during ${step.key}`, async () => {
            const domain = newDomain(`${type} cancel ${step.key}`);
            const reached = holdFirstCallOf(t.sites, domain, failoverId(domain), step);
            try {
              const handle = await startFailover(domain, type);
              await cancelWhenReached(handle, reached, step);
              await assertUndone(domain, type);
            } finally {
              await t.closeDomain(domain);
            }
          }),
        ),
      );
    });
  });
}

describe('runbook timeouts on stub sites', () => {
  it('an approval gate nobody answers before its timeout aborts the failover, which compensates', async () => {
    const domain = newDomain('approval-timeout');
    try {
      const handle = await startFailover(domain, 'planned', { approvalTimeout: '2s' });
      const report = await abortReport(handle);
      assert.match(report.failure ?? '', /approve-app: nobody approved within 2s/);
      const app = vmNames(domain).filter((vm) => vm.includes('-app-'));
      assert.deepEqual(
        operationCalls(domain).filter((c) => c.name === 'powerOnVm' && c.site === RECOVERY && app.includes(String(argOf(c).vm))),
        [],
        'the gated group never starts',
      );
      await assertUndone(domain, 'planned', report);
    } finally {
      await t.closeDomain(domain);
    }
  });

  it("a guest that never heartbeats fails its VM at the runbook's heartbeatTimeout; policy continue goes on without it", async () => {
    const domain = newDomain('heartbeat-continue');
    const [db] = vmNames(domain);
    t.sites.silenceGuest(db);
    try {
      const handle = await startFailover(domain, 'forced', { heartbeatTimeout: '2s', databasePolicy: 'continue' });
      const report = await handle.result();
      assert.equal(report.outcome, 'succeeded-with-failures', 'it finished, with a VM failed under the continue policy');
      assert.deepEqual(
        report.vms.map((vm) => `${vm.name}:${vm.state}`).sort(),
        vmNames(domain)
          .map((vm) => `${vm}:${vm === db ? 'failed' : 'poweredOn'}`)
          .sort(),
      );
      const waits = operationCalls(domain).filter((c) => c.name === 'waitForGuestHeartbeat');
      assert.deepEqual(
        waits.map((c) => `${String(argOf(c).vm)}:${c.ended}`),
        [`${db}:failed`],
        'the wait ends once, failed (HeartbeatTimeout is not retried)',
      );
      assert.match(waits[0].error ?? '', new RegExp(`the guest of ${db} did not heartbeat`));
    } finally {
      await t.closeDomain(domain);
    }
  });

  it('a guest that never heartbeats, with policy abort, aborts the failover, which compensates', async () => {
    const domain = newDomain('heartbeat-abort');
    const [db] = vmNames(domain);
    t.sites.silenceGuest(db);
    try {
      const handle = await startFailover(domain, 'planned', { heartbeatTimeout: '2s' });
      const report = await abortReport(handle);
      assert.match(report.failure ?? '', new RegExp(`${db}: the guest of ${db} did not heartbeat`));
      await assertUndone(domain, 'planned', report);
    } finally {
      await t.closeDomain(domain);
    }
  });
});

describe('planned handover on stub sites: the log grown past the drain', () => {
  it('drains again and seals the log at the second drain when the check after the drain finds the log grown past it, whether or not that attempt looked itself (a retry after one that did)', async () => {
    const domain = newDomain('grew-past-drain');
    let drains = 0;
    t.sites.intercept(domain, async (call, proceed) => {
      if (call.name === 'awaitEveryDiskLogged' && argOf(call).drainedThrough) return { lookedFor: [], logGrewPastDrain: true };
      if (call.name === 'drainReplication') return { ...(await proceed() as object), lastSegment: ++drains === 1 ? 7 : 9 };
      return proceed();
    });
    const report = await (await startFailover(domain, 'planned')).result();
    assert.equal(report.outcome, 'succeeded');
    const steps = report.steps.map((step) => step.name);
    assert.deepEqual(steps.slice(steps.indexOf('drain replication'), steps.indexOf('record the departure from primary')), ['drain replication', 'check every disk is logged after the drain', 'drain replication again']);
    const calls = operationCalls(domain);
    assert.deepEqual(argOf(calls.find((c) => c.name === 'awaitEveryDiskLogged' && argOf(c).drainedThrough)!).drainedThrough, { epoch: 1, lastSegment: 7 }, 'the check compares the log with where the first drain left it');
    assert.equal(argOf(calls.find((c) => c.name === 'releaseDomain')!).lastSegment, 9, 'the handover seals the log where the second drain left it');
  });
});
