/**
 * The power-on plan's workflows on the real Temporal server. The site side is a small in-test
 * recorder of power-on calls (the end-to-end failover tests drive real sites): what is under test
 * here is ordering, parallelism, delays, approvals, operator decisions and failure policies.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { createWebhookActivities } from '../../activities/webhook';
import { fileSecretResolver } from '../../common/secrets';
import { validateRunbook } from '../../runbooks/validate';
import { approveUpdate, operatorDecisionUpdate, powerOnGroupProgressQuery, powerOnPlanProgressQuery } from '../../workflows/power-on-messages';
import { powerOnPlan, type PowerOnPlanInput } from '../../workflows/power-on-plan';
import { powerOnGroupWorkflowId } from '../../workflows/workflow-ids';
import { DR_OUTCOME } from '../../workflows/search-attributes';
import { ORCHESTRATION_TASK_QUEUE } from '../../workflows/task-queues';
import { replayClosedHistories } from '../harness/histories';
import { recordingSite, recordingSiteRunbook } from '../harness/recording-site';
import { useTestStack } from '../harness/stack';
import { useHttpServer } from '../harness/testbed';
import { useInProcessWorkers } from '../harness/workers';


function plan(yamlGroups: string, vms: string[]): PowerOnPlanInput {
  const text = recordingSiteRunbook('test-plan', vms.map((v) => `{ name: ${v} }`), `    maxParallel: 3
    groups:
${yamlGroups}`);
  const result = validateRunbook(text);
  assert.ok(result.runbook, JSON.stringify(result.errors));
  return { domain: 'demo', site: 'recovery', powerOn: result.runbook.spec.powerOn, leavePoweredOff: [] };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch {
      // the workflow may not exist yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('power-on plan: groups in runbook order, as child workflows where an operator may act', () => {
  const { stack } = useTestStack();
  const site = recordingSite();
  const webhookCalls: Array<{ auth?: string; key?: string }> = [];
  let webhookStatus = 204;
  const webhook = useHttpServer((req, res) => {
    webhookCalls.push({ auth: req.headers.authorization, key: req.headers['idempotency-key'] as string });
    res.statusCode = webhookStatus;
    res.end();
  });
  useInProcessWorkers(stack, 'recovery', () => {
    const secretsFile = path.join(stack.dir, 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify({ 'dns-token': 's3cr3t-value' }));
    return { ...site.activities, ...createWebhookActivities({ secrets: fileSecretResolver(secretsFile) }) };
  });

  const start = (workflowId: string, input: PowerOnPlanInput) =>
    stack.client.workflow.start(powerOnPlan, { taskQueue: ORCHESTRATION_TASK_QUEUE, workflowId, args: [input] });

  it('starts groups after their dependencies, honours delays and the parallelism limit', async () => {
    site.poweredOn.length = 0;
    const input = plan(
      `      - name: database
        vms: [{ name: db-1, delayAfterPowerOn: 2s, waitForHeartbeat: true }]
      - name: app
        dependsOn: [database]
        maxParallel: 2
        vms: [{ name: app-1 }, { name: app-2 }, { name: app-3 }, { name: app-4 }]
      - name: web
        dependsOn: [app]
        vms: [{ name: web-1 }]`,
      ['db-1', 'app-1', 'app-2', 'app-3', 'app-4', 'web-1'],
    );
    const handle = await start('power-on/order', input);
    const results = await handle.result();
    const at = (vm: string) => site.poweredOn.find((p) => p.vm === vm)!.at;
    assert.deepEqual(site.poweredOn.map((p) => p.vm).slice(0, 1), ['db-1']);
    for (const app of ['app-1', 'app-2', 'app-3', 'app-4']) assert.ok(at(app) - at('db-1') >= 2000, `${app} waited for db-1's 2s delay`);
    for (const app of ['app-1', 'app-2', 'app-3', 'app-4']) assert.ok(at('web-1') > at(app), `web-1 after ${app}`);
    assert.ok(site.maxConcurrent() <= 2, `at most 2 power-ons at once, saw ${site.maxConcurrent()}`);
    assert.deepEqual(
      results.map((g) => [g.group, g.vms.map((v) => v.state)]),
      [
        ['database', ['poweredOn']],
        ['app', ['poweredOn', 'poweredOn', 'poweredOn', 'poweredOn']],
        ['web', ['poweredOn']],
      ],
    );
    // No group needs an operator (no steps, nothing paused on failure): the plan's own workflow powers them on, no child each.
    await assert.rejects(stack.client.workflow.getHandle(powerOnGroupWorkflowId('power-on/order', 'app')).describe(), WorkflowNotFoundError);
    const events = (await handle.fetchHistory()).events ?? [];
    assert.equal(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'powerOnVm').length, 6, 'every power-on in the plan\'s own history');
    const app = (await handle.query(powerOnPlanProgressQuery)).groups.find((g) => g.name === 'app')!;
    assert.equal(app.workflowId, 'power-on/order');
    assert.deepEqual(app.inOperation?.vms.map((v) => v.state), ['poweredOn', 'poweredOn', 'poweredOn', 'poweredOn'], 'the plan\'s progress carries the group\'s');
  });

  it('blocks at an approval gate until an allowed approver approves', async () => {
    site.poweredOn.length = 0;
    const input = plan(
      `      - name: app
        before:
          - { name: go-ahead, type: approval, approvers: [dr-lead], timeout: 5m }
        vms: [{ name: app-1 }]`,
      ['app-1'],
    );
    const handle = await start('power-on/approval', input);
    const group = stack.client.workflow.getHandle(powerOnGroupWorkflowId('power-on/approval', 'app'));
    const waiting = await until(async () => (await group.query(powerOnGroupProgressQuery)).waitingForApproval, 'the approval gate');
    assert.deepEqual(waiting.approvers, ['dr-lead']);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(site.poweredOn.length, 0, 'nothing powers on before approval');

    await assert.rejects(group.executeUpdate(approveUpdate, { args: [{ step: 'go-ahead', approver: 'mallory', decision: 'approve' }] }), (e: unknown) => {
      assert.ok(e instanceof WorkflowUpdateFailedError);
      assert.match(String((e.cause as Error)?.message), /"mallory" may not approve step "go-ahead"/);
      return true;
    });
    await assert.rejects(group.executeUpdate(approveUpdate, { args: [{ step: 'other', approver: 'dr-lead', decision: 'approve' }] }), /WorkflowUpdateFailedError|not waiting/);
    await group.executeUpdate(approveUpdate, { args: [{ step: 'go-ahead', approver: 'dr-lead', decision: 'approve' }] });
    const [result] = await handle.result();
    assert.equal(result.steps[0].state, 'done');
    assert.equal(result.steps[0].approvedBy, 'dr-lead');
    assert.deepEqual(site.poweredOn.map((p) => p.vm), ['app-1']);
  });

  it('aborts the plan when a webhook with policy abort keeps failing, after its retries', async () => {
    webhookCalls.length = 0;
    webhookStatus = 500;
    const input = plan(
      `      - name: web
        vms: [{ name: web-1 }]
        after:
          - name: update-dns
            type: webhook
            url: ${webhook.url}/records
            headers: { Authorization: { secret: dns-token } }
            body: '{"a": 1}'
            retries: 1
            onFailure: abort`,
      ['web-1'],
    );
    const handle = await start('power-on/webhook-abort', input);
    await assert.rejects(handle.result(), (e: unknown) => {
      assert.ok(e instanceof WorkflowFailedError);
      return true;
    });
    assert.equal(webhookCalls.length, 2, 'one call and one retry');
    assert.equal(webhookCalls[0].auth, 's3cr3t-value', 'the header carries the named secret');
    assert.equal(webhookCalls[0].key, webhookCalls[1].key, 'a retry is recognisable by its idempotency key');
    const history = JSON.stringify(await stack.client.workflow.getHandle(powerOnGroupWorkflowId('power-on/webhook-abort', 'web')).fetchHistory());
    assert.ok(!history.includes('s3cr3t-value'), 'the secret never enters workflow history');
    webhookStatus = 204;
  });

  it('replays every recorded history against the current workflow code (determinism)', async () => {
    // `DR_RECORD_HISTORIES=1 npm test -- power-on-plan` refreshes the recorded histories.
    const replayed = await replayClosedHistories(stack.client, ['powerOnPlan', 'powerOnGroup']);
    // The three plans above, the approval's group and the webhook's group (the order test's groups ran in its plan).
    assert.ok(replayed >= 5, `replayed ${replayed} histories`);
  });

  it('pauses a failed VM for an operator, who retries it; continue records a failure and goes on', async () => {
    site.poweredOn.length = 0;
    site.failuresLeft.set('db-1', 1);
    site.failuresLeft.set('app-1', 1);
    const input = plan(
      `      - name: database
        onFailure: pause
        vms: [{ name: db-1 }]
      - name: app
        dependsOn: [database]
        onFailure: continue
        vms: [{ name: app-1 }, { name: app-2 }]`,
      ['db-1', 'app-1', 'app-2'],
    );
    const handle: WorkflowHandle = await start('power-on/pause', input);
    const group = stack.client.workflow.getHandle(powerOnGroupWorkflowId('power-on/pause', 'database'));
    const paused = await until(async () => {
      const p = await group.query(powerOnGroupProgressQuery);
      return p.pausedOn.length > 0 ? p.pausedOn : undefined;
    }, 'the pause');
    assert.equal(paused[0].target, 'db-1');
    assert.match(paused[0].reason, /no host with enough memory/);
    await assert.rejects(group.executeUpdate(operatorDecisionUpdate, { args: [{ target: 'web-9', action: 'retry', operator: 'ops' }] }));
    await group.executeUpdate(operatorDecisionUpdate, { args: [{ target: 'db-1', action: 'retry', operator: 'ops' }] });
    const results = (await handle.result()) as Awaited<ReturnType<typeof powerOnPlan>>;
    assert.deepEqual(results.map((g) => g.vms.map((v) => [v.name, v.state])), [
      [['db-1', 'poweredOn']],
      [
        ['app-1', 'failed'],
        ['app-2', 'poweredOn'],
      ],
    ]);
    const description = await handle.describe();
    assert.equal(description.typedSearchAttributes.get(DR_OUTCOME), 'succeeded-with-failures');
  });
});
