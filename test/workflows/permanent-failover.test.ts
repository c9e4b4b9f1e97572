/**
 * The permanent failover workflow against stub sites (fast tier), after a planned failover of each
 * test's domain: the old primary answers and is cleared at once; it does not answer and is cleared
 * by the retire workflow once it does; the operation aborts before its goal and undoes what it did.
 * Whatever happens, nothing of the domain is removed at the new primary.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { failover } from '../../workflows/failover';
import { permanentFailover } from '../../workflows/permanent-failover';
import type { retireSite } from '../../workflows/retire';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { retireWorkflowId } from '../../workflows/workflow-ids';
import { failoverInput, permanentFailoverInput, runbookYaml, vmNames } from '../fixtures/workflow-runbooks';
import type { StubSites } from '../harness/stub-sites';
import { PRIMARY, RECOVERY, newStubDomain, useWorkflowEnv } from '../harness/workflow-env';
import { abortReport, cancelWhenReached, holdFirstCallOf, protection } from './operation-sweep';

const t = useWorkflowEnv();

const permanentId = (domain: string) => `permanent-failover/${domain}/test`;

/** A new domain whose runbook is stored as v1, failed over by plan: it runs at the recovery site, which owns it. */
async function failedOverDomain(label: string): Promise<string> {
  const domain = newStubDomain(t, label, vmNames);
  t.sites.runbookVersions(domain).push({ version: 1, text: runbookYaml(domain), submittedBy: 'test-operator' });
  const report = await t.client.workflow.execute(failover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: `failover/${domain}/test`, args: [failoverInput(domain, 'planned')] });
  assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
  return domain;
}

/** The old primary does not answer (its site is down) for the domain's calls there until `returns()`. */
function primaryDown(domain: string): { returns: () => void } {
  let down = true;
  t.sites.intercept(domain, async (call, proceed) => {
    if (down && call.site === PRIMARY) throw ApplicationFailure.retryable(`site ${PRIMARY} does not answer`, 'SiteUnavailable');
    return proceed();
  });
  return { returns: () => (down = false) };
}

const diskIdsOf = (domain: string) => t.sites.domain(domain).disks.map((d) => d.diskId).sort();

/** The new primary is as the failover left it: the VMs run there on their disks, protected. */
async function assertNewPrimaryUntouched(domain: string, before: ReturnType<StubSites['inventoryOf']>): Promise<void> {
  assert.deepEqual(t.sites.inventoryOf(RECOVERY, domain), before, 'nothing of the domain is removed at the new primary');
  assert.ok(t.sites.callsOf(domain).every((c) => !(c.site === RECOVERY && c.name === 'removeDomainHoldings')), 'no removal is asked of the new primary');
  const protectedThere = await protection(t.client, domain, RECOVERY, 2);
  assert.equal((await protectedThere?.describe())?.status.name, 'RUNNING', 'the protection the failover started at the new primary runs on');
}

describe('permanent failover (stub sites)', () => {
  it('a reachable old primary: the domain is removed there, the runbook gets a version for the new direction, the mode is Protected at the new primary', async () => {
    const domain = await failedOverDomain('reachable');
    const atNewPrimary = t.sites.inventoryOf(RECOVERY, domain);
    const input = permanentFailoverInput(domain);
    const report = await t.client.workflow.execute(permanentFailover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: permanentId(domain), args: [input] });

    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.deepEqual(
      report.steps.map((s) => `${s.name}: ${s.state}`),
      [
        'check ownership',
        `ask ${PRIMARY} what it holds of ${domain}`,
        `write runbook ${domain} for the new direction`,
        'record the permanent failover',
        'set the domain mode',
        `remove ${domain} from ${PRIMARY}`,
      ].map((name) => `${name}: done`),
    );
    assert.equal(report.retirement?.state, 'removed', JSON.stringify(report.retirement));
    assert.deepEqual(report.retirement.removed?.vms.map((vm) => vm.name), [...vmNames(domain)].sort());
    assert.deepEqual(report.retirement.removed?.diskIds, diskIdsOf(domain));
    assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain), { vms: [], disks: [], rocvas: [] }, 'the old primary holds nothing of the domain');
    await assertNewPrimaryUntouched(domain, atNewPrimary);

    const versions = t.sites.runbookVersions(domain);
    assert.deepEqual(versions.map((v) => `v${v.version} by ${v.submittedBy}`), ['v1 by test-operator', `v2 by ${permanentId(domain)}`]);
    assert.equal(versions[1].text, input.newDirection.text);
    assert.deepEqual(report.newDirection, { runbook: { name: domain, version: 2 }, primary: RECOVERY });
    const record = t.sites.domain(domain);
    assert.equal(record.status?.mode, 'Protected');
    assert.equal(record.status?.runningAt, RECOVERY);
    assert.deepEqual(
      { retired: record.permanentFailover?.retiredSite, primary: record.permanentFailover?.newPrimary, runbook: record.permanentFailover?.runbook, by: record.permanentFailover?.retiredBy },
      { retired: PRIMARY, primary: RECOVERY, runbook: { name: domain, version: 2 }, by: retireWorkflowId(domain, PRIMARY) },
    );
  });

  it('an unreachable old primary: the removal is recorded, the operation ends, and the retire workflow removes the domain once the site answers', async () => {
    const domain = await failedOverDomain('unreachable');
    const atNewPrimary = t.sites.inventoryOf(RECOVERY, domain);
    const atOldPrimary = t.sites.inventoryOf(PRIMARY, domain);
    const site = primaryDown(domain);
    const report = await t.client.workflow.execute(permanentFailover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: permanentId(domain), args: [permanentFailoverInput(domain)] });

    assert.equal(report.outcome, 'succeeded', JSON.stringify(report));
    assert.equal(report.retirement?.state, 'pending');
    assert.equal(report.retirement.workflowId, retireWorkflowId(domain, PRIMARY));
    assert.match(report.retirement.why ?? '', new RegExp(`${PRIMARY} did not answer within`));
    assert.equal(report.steps.at(-1)?.name, `leave the removal of ${domain} from ${PRIMARY} to ${retireWorkflowId(domain, PRIMARY)} for when it returns`);
    assert.equal(t.sites.domain(domain).status?.mode, 'Protected');
    assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain), atOldPrimary, 'nothing is removed while the site is down');

    const retire = t.client.workflow.getHandle<typeof retireSite>(retireWorkflowId(domain, PRIMARY));
    assert.equal((await retire.describe()).status.name, 'RUNNING', 'the removal waits for the site, on its own');
    site.returns();
    const removed = await retire.result();
    assert.deepEqual(removed.vms.map((vm) => vm.name), [...vmNames(domain)].sort());
    assert.deepEqual(removed.diskIds, diskIdsOf(domain));
    assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain), { vms: [], disks: [], rocvas: [] }, 'the returned site holds nothing of the domain');
    await assertNewPrimaryUntouched(domain, atNewPrimary);
  });

  it('aborted before its goal: the record is withdrawn, the earlier runbook version submitted again, the domain runs in failover as before, nothing is removed', async () => {
    const domain = await failedOverDomain('aborted');
    const atNewPrimary = t.sites.inventoryOf(RECOVERY, domain);
    const atOldPrimary = t.sites.inventoryOf(PRIMARY, domain);
    t.sites.intercept(domain, async (call, proceed) => {
      if (call.workflowId === permanentId(domain) && call.name === 'setDomainStatus') throw ApplicationFailure.nonRetryable('injected failure of the mode', 'InjectedFailure');
      return proceed();
    });
    const handle = await t.client.workflow.start(permanentFailover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: permanentId(domain), args: [permanentFailoverInput(domain)] });
    const report = await abortReport(handle);

    assert.deepEqual(report.compensation?.undone, ['the record of the permanent failover withdrawn', `runbook ${domain} back to its direction before (the version before the new direction's submitted again)`]);
    const versions = t.sites.runbookVersions(domain);
    assert.deepEqual(versions.map((v) => `v${v.version} by ${v.submittedBy}`), ['v1 by test-operator', `v2 by ${permanentId(domain)}`, `v3 by ${permanentId(domain)}/undo`]);
    assert.equal(versions[2].text, versions[0].text, 'the newest version is the direction it failed over by again');
    const record = t.sites.domain(domain);
    assert.equal(record.permanentFailover, undefined);
    assert.equal(record.status?.mode, 'Running in Failover');
    assert.equal(record.status?.runningAt, RECOVERY);
    assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain), atOldPrimary, 'the old primary is as it was');
    await assert.rejects(t.client.workflow.getHandle(retireWorkflowId(domain, PRIMARY)).describe(), WorkflowNotFoundError, 'no removal was started');
    await assertNewPrimaryUntouched(domain, atNewPrimary);
  });

  it('cancelled while it asks the old primary: it ends cancelled, and nothing has changed', async () => {
    const domain = await failedOverDomain('cancelled');
    const atOldPrimary = t.sites.inventoryOf(PRIMARY, domain);
    const step = { key: `${PRIMARY}:domainHoldings`, calls: 1 };
    const reached = holdFirstCallOf(t.sites, domain, permanentId(domain), step);
    const handle = await t.client.workflow.start(permanentFailover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: permanentId(domain), args: [permanentFailoverInput(domain)] });
    await cancelWhenReached(handle, reached, step);
    assert.equal(t.sites.runbookVersions(domain).length, 1, 'no runbook version was written');
    assert.equal(t.sites.domain(domain).status?.mode, 'Running in Failover');
    assert.deepEqual(t.sites.inventoryOf(PRIMARY, domain), atOldPrimary);
  });

  it('is refused unless confirmed by the domain name, before anything changes', async () => {
    const domain = await failedOverDomain('unconfirmed');
    const handle = await t.client.workflow.start(permanentFailover, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId: permanentId(domain), args: [permanentFailoverInput(domain, 'another-domain')] });
    const report = await abortReport(handle);
    assert.match(report.failure ?? '', /must be confirmed by repeating the domain name/);
    assert.deepEqual(report.steps, []);
    assert.equal(t.sites.runbookVersions(domain).length, 1);
  });
});
