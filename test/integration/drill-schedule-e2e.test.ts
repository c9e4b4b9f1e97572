import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { drillsRouter } from '../../api/drills';
import type { DrillHistoryEntry } from '../../api/drill-history';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { readDomainStatus } from '../../datapath/domain-status';
import type { OperationProgress } from '../../workflows/operation-messages';
import { apiCalls } from '../harness/api-calls';
import { replayClosedHistories } from '../harness/histories';
import { admin, testSiteDefinitions } from '../harness/sites';
import { runCli } from '../harness/cli';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';

const DOMAIN = 'india';
const SCHEDULE = `drill-schedule/${DOMAIN}`;
const BY_SCHEDULE = `schedule ${SCHEDULE}`;

describe('scheduled drills end to end, on real Temporal, S3, sites and worker processes: a Temporal Schedule runs drills by itself, skips a run the domain cannot take, and the history lists each outcome', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const viewer: ApiPrincipal = { name: 'auditor', role: 'viewer', token: generateToken() };
  const { stack, sites, primary, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN]), workers: ['orchestration', 'primary', 'recovery'] });
  const api = useTestApi({
    principals: [operator, viewer],
    routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log }), drillsRouter({ client: stack.client, runbooks, log })],
  });
  const { call, submitRunbook } = apiCalls(() => api.url, operator.token);
  const drills = async () => ((await call('GET', `/domains/${DOMAIN}/drills`, undefined, viewer.token)).body.drills ?? []) as DrillHistoryEntry[];

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 10, blockSize: 4096, pattern: 'random', seed: 'drill-schedule-e2e' });
    await protectAtPrimary(stack.client, DOMAIN);
    await waitFor(`${DOMAIN} recorded as Protected`, async () => (await readDomainStatus(store, DOMAIN))?.mode === 'Protected', 30_000);
  });

  it('refuses a bad cron with 400 naming it, a viewer with 403, a runbook without test networks with 409, and answers 404 without a schedule', async () => {
    await submitRunbook(runbookYaml(DOMAIN, {}));
    const undrillable = await call('POST', `/domains/${DOMAIN}/drill-schedule`, { cron: '0 3 * * *' });
    assert.equal(undrillable.status, 409, JSON.stringify(undrillable.body));
    assert.match(String(undrillable.body.detail), /has no spec\.testNetworkMapping/);
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: ['{ name: db-up, type: heartbeat, vm: i-db-1, timeout: 1m }'] } }));
    for (const cron of ['not a cron', '61 * * * *', '@every 3x', '']) {
      const refused = await call('POST', `/domains/${DOMAIN}/drill-schedule`, { cron });
      assert.equal(refused.status, 400, `${cron}: ${JSON.stringify(refused.body)}`);
      assert.deepEqual((refused.body.errors as Array<{ path: string }>).map((e) => e.path), ['cron'], JSON.stringify(refused.body));
    }
    const badKeep = await call('POST', `/domains/${DOMAIN}/drill-schedule`, { cron: '@daily', keepFor: '31d' });
    assert.equal(badKeep.status, 400);
    assert.match(JSON.stringify(badKeep.body), /keepFor/);
    const byViewer = await call('POST', `/domains/${DOMAIN}/drill-schedule`, { cron: '@daily' }, viewer.token);
    assert.equal(byViewer.status, 403, JSON.stringify(byViewer.body));
    assert.equal((await call('DELETE', `/domains/${DOMAIN}/drill-schedule`, undefined, viewer.token)).status, 403);
    assert.equal((await call('GET', `/domains/${DOMAIN}/drill-schedule`, undefined, viewer.token)).status, 404);
    assert.equal((await call('DELETE', `/domains/${DOMAIN}/drill-schedule`)).status, 404);
    assert.equal((await call('GET', `/domains/${DOMAIN}/drills?limit=0`, undefined, viewer.token)).status, 400);
    assert.deepEqual(await drills(), [], 'nothing was scheduled or drilled');
  });

  it('a schedule every 10 s skips its runs while a failed drill holds the desk, then drills by itself and passes; the history and the domain show each outcome; DELETE removes it', async () => {
    // A drill whose check fails, kept: it holds the domain's desk while the schedule's first runs come.
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: ['{ name: ldap-port, type: tcp, vm: i-app-1, port: 389, timeout: 3s }'] } }));
    const held = await call('POST', `/domains/${DOMAIN}/drill`, { keepFor: '10m' });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const heldId = String(held.body.workflowId);
    const heldUrl = `/operations/${encodeURIComponent(heldId)}`;
    await waitFor('the failed drill kept', async () => ((await call('GET', heldUrl)).body.progress as OperationProgress | undefined)?.phase.startsWith('keep the drill') === true, 120_000);
    // The schedule's runs take the latest runbook at each run: this one's check passes.
    await submitRunbook(runbookYaml(DOMAIN, { drill: { checks: ['{ name: db-up, type: heartbeat, vm: i-db-1, timeout: 1m }'] } }));

    // Set through the command line, as an operator would.
    const set = await runCli({ url: api.url, token: operator.token }, 'drill-schedule', 'set', DOMAIN, '--cron', '0 3 * * *');
    assert.equal(set.code, 0, set.stderr);
    const daily = JSON.parse(set.stdout) as { scheduleId: string; paused: boolean; nextRunTimes: string[] };
    assert.equal(daily.scheduleId, SCHEDULE);
    assert.equal(daily.paused, false);
    assert.match(daily.nextRunTimes[0], /T03:00:00\.000Z$/);
    assert.equal((await runCli({ url: api.url, token: operator.token }, 'drill-schedule', 'set', DOMAIN)).code, 2, 'set needs --cron');
    const replaced = await call('POST', `/domains/${DOMAIN}/drill-schedule`, { cron: '@every 10s' });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    assert.equal(replaced.body.cron, '@every 10s');
    assert.equal(replaced.body.keepFor, '0s');
    const [next, after] = (replaced.body.nextRunTimes as string[]).map((t) => Date.parse(t));
    assert.equal(after - next, 10_000, 'the replaced spec runs every 10 s');

    await waitFor('a scheduled run skipped while the failed drill holds the desk', async () => (await drills()).some((d) => d.status === 'skipped'), 60_000);
    const skipped = (await drills()).find((d) => d.status === 'skipped')!;
    assert.match(skipped.workflowId, new RegExp(`^scheduled-drill/${DOMAIN}`));
    assert.equal(skipped.requestedBy, BY_SCHEDULE);
    assert.ok(skipped.reason?.includes(heldId), `the reason names the drill holding the desk: ${skipped.reason}`);
    const schedule = await call('GET', `/domains/${DOMAIN}/drill-schedule`, undefined, viewer.token);
    assert.equal(schedule.status, 200);
    const runs = schedule.body.recentRuns as Array<{ status: string; reason?: string }>;
    assert.ok(runs.some((r) => r.status === 'skipped' && r.reason?.includes(heldId)), JSON.stringify(runs));

    assert.equal((await call('POST', `${heldUrl}/cleanup`, {})).status, 202);
    await waitFor('the failed drill listed, and shown on the domain', async () => ((await call('GET', `/domains/${DOMAIN}`)).body.lastDrill as { workflowId?: string } | null)?.workflowId === heldId, 90_000);
    const failing = (await call('GET', `/domains/${DOMAIN}`, undefined, viewer.token)).body;
    assert.deepEqual({ ...(failing.lastDrill as object), endedAt: undefined }, { workflowId: heldId, outcome: 'failed', endedAt: undefined });
    assert.match(String((failing.warnings as string[])[0]), new RegExp(`${heldId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, failed`));
    const failed = (await drills()).find((d) => d.workflowId === heldId)!;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.requestedBy, 'dr-lead');
    assert.deepEqual(failed.failedBecause, ['check ldap-port failed']);
    assert.equal(failed.cleanupAsBefore, true);

    await waitFor('a scheduled drill passed', async () => (await drills()).some((d) => d.requestedBy === BY_SCHEDULE && d.status === 'passed'), 120_000);
    // Paused as the Web UI pauses it: GET says so.
    await stack.client.schedule.getHandle(SCHEDULE).pause('paused from the Web UI');
    const paused = (await call('GET', `/domains/${DOMAIN}/drill-schedule`, undefined, viewer.token)).body;
    assert.equal(paused.paused, true);
    assert.equal(paused.note, 'paused from the Web UI');
    assert.ok((paused.recentRuns as Array<{ status: string }>).some((r) => r.status === 'started'), JSON.stringify(paused.recentRuns));
    assert.equal((await call('DELETE', `/domains/${DOMAIN}/drill-schedule`)).status, 200);
    const passed = (await drills()).find((d) => d.requestedBy === BY_SCHEDULE && d.status === 'passed')!;
    assert.match(passed.workflowId, new RegExp(`^drill/${DOMAIN}/`));
    assert.ok(passed.rtoMs! > 0 && passed.rpoMs! >= 0, JSON.stringify(passed));
    assert.ok(passed.recoveryPoint?.description, 'the point the drill used');
    assert.equal(passed.cleanupAsBefore, true);
    assert.equal(passed.failedBecause, undefined);

    const listed = await drills();
    assert.deepEqual(listed.map((d) => d.startedAt), listed.map((d) => d.startedAt).sort().reverse(), 'newest first');
    const limited = await call('GET', `/domains/${DOMAIN}/drills?limit=1`, undefined, viewer.token);
    assert.deepEqual((limited.body.drills as DrillHistoryEntry[]).map((d) => d.workflowId), [listed[0].workflowId]);
    assert.equal((await call('GET', `/domains/${DOMAIN}/drill-schedule`)).status, 404);
    assert.equal((await call('DELETE', `/domains/${DOMAIN}/drill-schedule`)).status, 404);
    await waitFor('the domain shows a passed last drill', async () => ((await call('GET', `/domains/${DOMAIN}`)).body.lastDrill as { outcome?: string } | null)?.outcome === 'passed', 90_000);
    assert.equal((await call('GET', `/domains/${DOMAIN}`)).body.warnings, undefined);
  });

  it('replays every closed drill and scheduled run against the current workflow code', async () => {
    const replayed = await replayClosedHistories(stack.client, ['drill', 'scheduledDrill']);
    assert.ok(replayed >= 3, `replayed ${replayed} histories`);
  });
});
