/**
 * The domain's operations desk (workflows/domain-operations.ts) on stub sites: it continues as new
 * without losing an operation, and it keeps why an operation did not succeed where
 * `GET /domains/{d}/operations` shows it.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createApp } from '../../api/app';
import { hashToken, generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import type { S3Settings } from '../../common/config';
import { createLogger } from '../../common/logger';
import { ObjectStore } from '../../datapath/object-store';
import { RunbookStore } from '../../runbooks/store';
import {
  domainOperations,
  domainOperationsQuery,
  startOperationUpdate,
  type DomainOperationsState,
  type OperationRecord,
  type OperationRequest,
} from '../../workflows/domain-operations';
import type { PowerOnPlanInput } from '../../workflows/power-on-plan';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { failoverInput, runbook, vmNames } from '../fixtures/workflow-runbooks';
import { eventually } from '../harness/eventually';
import { cancelsRequestedBy } from './operation-sweep';
import { holdUntilCancelled } from '../harness/stub-sites';
import { RECOVERY, requestOperation, startWorkflowEnv, type WorkflowEnv } from '../harness/workflow-env';
import { domainOperationsWorkflowId } from '../../workflows/workflow-ids';

let t: WorkflowEnv;
before(async () => {
  t = await startWorkflowEnv();
});
after(async () => {
  await t?.teardown();
});

function powerOnRequest(domain: string): OperationRequest {
  const input: PowerOnPlanInput = { domain, site: RECOVERY, powerOn: runbook(domain).spec.powerOn, leavePoweredOff: [] };
  return { operation: 'power-on', requestedBy: 'test-operator', summary: `power on ${domain}`, input };
}

/** The desk's state once it has recorded the end of `workflowId`. */
function recorded(desk: WorkflowHandle, workflowId: string): Promise<DomainOperationsState> {
  return eventually(`the desk records the end of ${workflowId}`, async () => {
    const state = await desk.query(domainOperationsQuery);
    return !state.running && state.recent.some((r) => r.workflowId === workflowId) ? state : undefined;
  });
}

describe('domain operations desk on stub sites', () => {
  it('an operation accepted in the workflow task that reaches the continue-as-new bound is started and recorded, and the next one is accepted', async () => {
    const domain = 'desk-bound';
    t.sites.placeVms(RECOVERY, vmNames(domain));
    const desk = t.client.workflow.getHandle(domainOperationsWorkflowId(domain));
    const started = await t.client.workflow.start(domainOperations, {
      taskQueue: ORCHESTRATION_TASK_QUEUE,
      workflowId: domainOperationsWorkflowId(domain),
      // One event more than the run began with: the task that accepts the request reaches the bound.
      args: [{ domain, recent: [], maxEventsPerRun: 1 }],
    });
    try {
      await eventually("the desk's first workflow task", async () => ((await desk.fetchHistory()).events ?? []).some((e) => e.workflowTaskCompletedEventAttributes) || undefined);

      const first = await desk.executeUpdate(startOperationUpdate, { args: [powerOnRequest(domain)] });
      assert.match(first.workflowId, new RegExp(`^power-on/${domain}/`));
      await t.client.workflow.getHandle(first.workflowId).result();
      const state = await recorded(desk, first.workflowId);
      assert.deepEqual(
        state.recent.map((r) => `${r.workflowId}:${r.outcome}`),
        [`${first.workflowId}:succeeded`],
      );
      assert.notEqual((await desk.describe()).runId, started.firstExecutionRunId, 'the desk continued as new');

      const second = await desk.executeUpdate(startOperationUpdate, { args: [powerOnRequest(domain)] });
      await t.client.workflow.getHandle(second.workflowId).result();
      assert.deepEqual(
        (await recorded(desk, second.workflowId)).recent.map((r) => `${r.workflowId}:${r.outcome}`),
        [`${second.workflowId}:succeeded`, `${first.workflowId}:succeeded`],
      );
    } finally {
      await desk.terminate('test finished').catch(() => undefined);
      await t.closeDomain(domain);
    }
  });

  it('keeps the API call’s request id in the memo of the operation it starts, where the Web UI shows it beside the audit record', async () => {
    const domain = 'desk-request-id';
    t.sites.placeVms(RECOVERY, vmNames(domain));
    const desk = t.client.workflow.getHandle(domainOperationsWorkflowId(domain));
    try {
      const started = await requestOperation(t, domain, { ...powerOnRequest(domain), requestId: 'req-7f3a' });
      const operation = t.client.workflow.getHandle(started.workflowId);
      assert.deepEqual((await operation.describe()).memo, { requestId: 'req-7f3a' });
      await operation.result();
    } finally {
      await desk.terminate('test finished').catch(() => undefined);
      await t.closeDomain(domain);
    }
  });

  it('refuses a request whose VM count cannot size a workflow task timeout, and starts nothing', async () => {
    const domain = 'desk-bad-vms';
    t.sites.placeVms(RECOVERY, vmNames(domain));
    const desk = t.client.workflow.getHandle(domainOperationsWorkflowId(domain));
    try {
      for (const vms of [-1, 2.5, Number.NaN]) {
        await assert.rejects(
          requestOperation(t, domain, { ...powerOnRequest(domain), vms }),
          (error: unknown) => error instanceof Error && /vms must be the runbook's number of VMs/.test(String(error.cause)),
          `vms ${vms}`,
        );
      }
      assert.equal((await desk.query(domainOperationsQuery)).running, undefined, 'no operation started');
    } finally {
      await desk.terminate('test finished').catch(() => undefined);
      await t.closeDomain(domain);
    }
  });

  it('a cancel of the desk cancels neither the operation it started nor the desk, which still refuses a second operation', async () => {
    const domain = 'desk-cancelled';
    t.sites.addDomain(domain, vmNames(domain));
    t.sites.placeVms(RECOVERY, vmNames(domain));
    let entered: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => (entered = resolve));
    t.sites.intercept(domain, async (call, proceed) => {
      if (call.name !== 'powerOnVm') return proceed();
      entered();
      return holdUntilCancelled();
    });
    try {
      const running = await requestOperation(t, domain, powerOnRequest(domain));
      await reached;
      const desk = t.client.workflow.getHandle(domainOperationsWorkflowId(domain));
      await desk.cancel();
      // The desk has taken the cancel in (a workflow task after it) and answers queries.
      await eventually('the desk processes the cancel', async () => {
        const { events } = await desk.fetchHistory();
        const at = (events ?? []).findIndex((e) => e.workflowExecutionCancelRequestedEventAttributes);
        return at >= 0 && (events ?? []).slice(at).some((e) => e.workflowTaskCompletedEventAttributes) ? true : undefined;
      });
      assert.deepEqual(await cancelsRequestedBy(desk), []);
      assert.equal((await desk.describe()).status.name, 'RUNNING');
      assert.equal((await t.client.workflow.getHandle(running.workflowId).describe()).status.name, 'RUNNING');
      assert.equal((await desk.query(domainOperationsQuery)).running?.workflowId, running.workflowId);
      await assert.rejects(requestOperation(t, domain, powerOnRequest(domain)), (error: Error) => /is running for domain desk-cancelled/.test(`${error.message} ${String((error as { cause?: Error }).cause?.message)}`));

      // The operation is cancelled by its own id, and the desk records it.
      await t.client.workflow.getHandle(running.workflowId).cancel();
      const state = await recorded(desk, running.workflowId);
      assert.equal(state.recent[0].outcome, 'cancelled');
    } finally {
      await t.closeDomain(domain);
    }
  });

  describe('outcomes and why', () => {
    const domain = 'desk-outcomes';
    const tokens = { viewer: generateToken() };
    let server: Server;
    let url: string;

    before(async () => {
      // GET /domains/{d}/operations reads only Temporal: the object stores are never called.
      const s3Settings: S3Settings = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'unused', prefix: '', forcePathStyle: true, embedded: false };
      const s3 = new S3Client({ endpoint: s3Settings.endpoint, region: s3Settings.region, credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' } });
      const log = createLogger('desk-test', new Writable({ write: (_chunk, _enc, done) => done() }));
      const app = createApp({
        log,
        tokens: { tokens: [{ name: 'auditor', role: 'viewer', sha256: hashToken(tokens.viewer) }] },
        healthChecks: [],
        routers: [operationsRouter({ client: t.client, runbooks: new RunbookStore(s3, s3Settings), store: new ObjectStore(s3, s3Settings), log })],
      });
      server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      await new Promise((resolve) => server?.close(resolve));
      await t.closeDomain(domain);
    });

    it('records succeeded, cancelled and aborted, with the failure and an aborted failover’s report summary, and the API shows them', async () => {
      t.sites.addDomain(domain, vmNames(domain));
      let holdPowerOn = false;
      let entered: () => void = () => undefined;
      t.sites.intercept(domain, async (call, proceed) => {
        if (call.name === 'deployRocva') throw ApplicationFailure.nonRetryable('injected failure of deployRocva', 'InjectedFailure');
        if (call.name === 'powerOnVm' && holdPowerOn) {
          entered();
          return holdUntilCancelled();
        }
        return proceed();
      });
      const desk = t.client.workflow.getHandle(domainOperationsWorkflowId(domain));

      // A planned failover that aborts: the RocVA cannot be deployed.
      const failover = await requestOperation(t, domain, { operation: 'failover', requestedBy: 'test-operator', summary: `fail ${domain} over`, input: failoverInput(domain, 'planned') });
      await recorded(desk, failover.workflowId);

      // A power-on cancelled while it powers on.
      t.sites.placeVms(RECOVERY, vmNames(domain));
      holdPowerOn = true;
      const reached = new Promise<void>((resolve) => (entered = resolve));
      const cancelled = await requestOperation(t, domain, powerOnRequest(domain));
      await reached;
      await t.client.workflow.getHandle(cancelled.workflowId).cancel();
      await recorded(desk, cancelled.workflowId);

      // A power-on that succeeds.
      holdPowerOn = false;
      const succeeded = await requestOperation(t, domain, powerOnRequest(domain));
      const state = await recorded(desk, succeeded.workflowId);

      assert.deepEqual(
        state.recent.map((r) => `${r.operation}:${r.outcome}`),
        ['power-on:succeeded', 'power-on:cancelled', 'failover:aborted'],
      );
      const [ok, stopped, aborted] = state.recent;
      assert.equal(ok.failure, undefined);
      assert.equal(stopped.failure, undefined);
      assert.match(aborted.failure ?? '', /injected failure of deployRocva/);
      assert.equal(aborted.report?.failedStep, 'deploy the RocVA');
      assert.match(aborted.report?.failure ?? '', /injected failure of deployRocva/);
      assert.ok(
        aborted.report?.compensation.undone.some((entry) => /ownership/.test(entry)),
        `the summary says what was undone: ${JSON.stringify(aborted.report)}`,
      );
      assert.deepEqual(aborted.report?.compensation.remains, []);

      const response = await fetch(`${url}/domains/${domain}/operations`, { headers: { authorization: `Bearer ${tokens.viewer}` } });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { running: unknown; recent: OperationRecord[] };
      assert.equal(body.running, null);
      assert.deepEqual(
        body.recent.map((r) => ({ workflowId: r.workflowId, outcome: r.outcome, failure: r.failure, report: r.report })),
        state.recent.map((r) => ({ workflowId: r.workflowId, outcome: r.outcome, failure: r.failure, report: r.report })),
      );
    });
  });
});
