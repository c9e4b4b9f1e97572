import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readConflict } from '../../datapath/conflict';
import { readDomainStatus } from '../../datapath/domain-status';
import { readChain, resolveChain } from '../../datapath/log-chain';
import { Ownership } from '../../datapath/ownership';
import { readSideCopy } from '../../datapath/side-copy';
import { blockContent, readWorkloadRecord } from '../../sites/workload';
import type { OperationReport } from '../../workflows/operation-messages';
import { conflictWatchWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { domainVms, failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('split-brain after a forced failover, on real Temporal, S3, sites and worker processes: detected, shown, refused for, resolved', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, sites, primary, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), ['echo']), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook, operationResult } = apiCalls(() => api.url, operator.token);
  const vms = domainVms('echo').sort();

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'split-brain-e2e' });
    await protectAtPrimary(stack.client, 'echo');
    await submitRunbook(runbookYaml('echo', {}));
  });

  it('the old primary returns running its VMs: the conflict shows within seconds, refuses continuous failover, and resolving it deactivates the stale copies and keeps their writes apart from the chain', async () => {
    await waitFor('echo recorded as Protected', async () => (await readDomainStatus(store, 'echo'))?.mode === 'Protected', 30_000);
    await admin(primary, sites.token, '/admin/outage');
    const failover = await call('POST', '/domains/echo/failover', { type: 'forced', confirm: 'echo' });
    assert.equal(failover.status, 202, JSON.stringify(failover.body));
    const failedOver = await operationResult(String(failover.body.workflowId));
    assert.equal(failedOver.status, 'COMPLETED', JSON.stringify(failedOver.result));
    assert.equal((await call('GET', '/domains/echo')).body.conflict, null, 'the lost primary cannot be looked at: no conflict yet');
    // The recovery site runs echo's VMs and owns it: its own VMs are no conflict.
    await sleep(3_000);
    assert.equal(await readConflict(store, 'echo'), undefined);

    await admin(primary, sites.token, '/admin/restore');
    const restoredAt = Date.now();
    let shown: { site: string; vms: string[]; since: string; owner: { site: string } } | undefined;
    await waitFor('the conflict in GET /domains/echo', async () => {
      shown = (await call('GET', '/domains/echo')).body.conflict as typeof shown;
      return Boolean(shown);
    }, 20_000);
    const detectedInMs = Date.now() - restoredAt;
    assert.ok(detectedInMs < 15_000, `detected ${detectedInMs} ms after the primary returned`);
    assert.equal(shown!.site, 'primary');
    assert.deepEqual(shown!.vms, vms);
    assert.equal(shown!.owner.site, 'recovery');
    assert.ok(Date.parse(shown!.since) >= restoredAt - 1_000, shown!.since);
    const domain = await call('GET', '/domains/echo');
    assert.deepEqual(domain.body.allowedOperations, ['power-on', 'resolve-conflict']);

    // The Web UI: the site's watch names the conflict in its search attribute.
    const watch = await stack.client.workflow.getHandle(conflictWatchWorkflowId('primary')).describe();
    assert.deepEqual(watch.typedSearchAttributes.getAll().find((pair) => pair.key.name === 'DrConflict')?.value, ['echo']);

    const refused = await call('POST', '/domains/echo/continuous-failover', {});
    assert.equal(refused.status, 409);
    assert.match(String(refused.body.detail), /continuous-failover is refused while echo is Running in Failover with a split-brain conflict open: site primary runs e-app-1, e-db-1 since .* while recovery owns the domain/);
    assert.equal((refused.body.conflict as { site: string }).site, 'primary');

    // The stale copies keep writing at the primary: those writes must end in the side copy, not in the chain.
    await sleep(2_000);
    assert.equal((await call('POST', '/domains/echo/resolve-conflict', { action: 'reactivate' })).status, 400);
    const started = await call('POST', '/domains/echo/resolve-conflict', { action: 'deactivate' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const workflowId = String(started.body.workflowId);
    assert.match(workflowId, /^resolve-conflict\/echo\//);
    const { status, result } = await operationResult(workflowId);
    assert.equal(status, 'COMPLETED', JSON.stringify(result));
    const report = result as OperationReport;
    assert.equal(report.outcome, 'succeeded');
    assert.ok(report.steps.every((s) => s.state === 'done' && s.durationMs! >= 0));

    for (const name of vms) {
      const vm = await primary.client.getVm(name);
      assert.equal(vm.powerState, 'poweredOff', `${name} at the primary is off`);
      assert.equal(vm.metadata.drState, 'inactive', `${name} at the primary is inactive`);
    }

    const sideCopy = report.sideCopy!;
    assert.equal(sideCopy.journalGap, false);
    const copy = await readSideCopy(store, 'echo', sideCopy.name);
    assert.ok(copy, `side copy ${sideCopy.name} is readable`);
    const record = readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));
    const diverged = record.filter((w) => vms.includes(w.vm) && w.sequence > sideCopy.afterSequence && w.sequence <= sideCopy.lastSequence);
    assert.ok(diverged.some((w) => w.at > restoredAt), 'the primary wrote after it returned');
    assert.deepEqual(copy.writes.map((w) => w.sequence), diverged.map((w) => w.sequence), 'the side copy holds every write after the fence');
    for (const [i, w] of diverged.entries()) assert.ok(copy.writes[i].data.equals(blockContent(w.seed, w.n, w.length)), `write ${w.sequence} kept byte for byte`);

    // The chain of the fenced epoch ends at the fence: none of the diverged writes is in it.
    const chain = (await resolveChain(store, new Ownership(store, 'echo'))).filter((link) => link.epoch === sideCopy.fencedEpoch);
    for await (const { segment } of readChain(store, chain, 4)) {
      assert.ok(segment.entries.every((e) => e.sequence <= sideCopy.afterSequence), `segment after ${segment.afterSequence} of epoch ${segment.epoch} holds no write after the fence`);
    }

    assert.equal((await call('GET', '/domains/echo')).body.conflict, null);
    // Two more passes of the watch: the deactivated copies are not flagged again.
    await sleep(5_000);
    assert.equal((await call('GET', '/domains/echo')).body.conflict, null);
    const again = await call('POST', '/domains/echo/resolve-conflict', { action: 'deactivate' });
    assert.equal(again.status, 409);
    assert.match(String(again.body.detail), /has no split-brain conflict open/);
  });
});
