import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { restorePointsRouter } from '../../api/restore-points';
import { runbooksRouter } from '../../api/runbooks';
import { listBases } from '../../datapath/base-image';
import { Ownership } from '../../datapath/ownership';
import { rehydrate } from '../../datapath/rehydrate';
import { listRestorePoints } from '../../datapath/restore-points';
import { expectedDiskContent, readWorkloadRecord } from '../../sites/workload';
import { protectStatusQuery } from '../../workflows/protect';
import { protectionWorkflowId } from '../../workflows/workflow-ids';
import { apiCalls } from '../harness/api-calls';
import { admin, testSiteDefinitions } from '../harness/sites';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';
import { failoverSiteDefinitions, protectAtPrimary, runbookYaml, waitFor } from '../fixtures/failover-domains';
import { MemorySite } from '../unit/datapath-memory-site';

const DOMAIN = 'golf';
type ShownPoint = { id: string; time: string; label: string | null; pinned: { by: string } | null; retention: { keptBy: string[]; expiresAt: string | null } } & Record<string, unknown>;

describe('restore points API on real Temporal, S3, a site and its worker: list, take with a label, pin, and a retention policy changed under a running protection', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const viewer: ApiPrincipal = { name: 'auditor', role: 'viewer', token: generateToken() };
  const { stack, sites, primary, store, runbooks } = useTestbed({ definitions: failoverSiteDefinitions(testSiteDefinitions(), [DOMAIN, 'hotel']), sites: ['primary'], workers: ['orchestration', 'primary'] });
  const api = useTestApi({ principals: [operator, viewer], routers: (log) => [runbooksRouter({ store: runbooks, log }), restorePointsRouter({ client: stack.client, store, runbooks, log })] });
  const { call, submitRunbook } = apiCalls(() => api.url, operator.token);
  const protection = () => stack.client.workflow.getHandle(protectionWorkflowId(DOMAIN, 'primary', 1));
  const ownership = () => new Ownership(store, DOMAIN);
  const listed = async (query = '') => {
    const { status, body } = await call('GET', `/domains/${DOMAIN}/restore-points${query}`, undefined, viewer.token);
    assert.equal(status, 200, JSON.stringify(body));
    return body as { points: ShownPoint[]; retention: { source: string; tiers: string[] } };
  };

  before(async () => {
    await admin(primary, sites.token, '/admin/workload', { writesPerSecond: 40, blockSize: 4096, pattern: 'random', seed: 'restore-points' });
    // Garbage collection after every other replicator run (about every 2 s), compacting the log older than 4 s.
    await protectAtPrimary(stack.client, DOMAIN, { gcEveryRuns: 2, protectionWindowMs: 4_000 });
  });

  /** The runbook of the domain with these retention tiers (its own window is a day). */
  const withRetention = (tiers: string) =>
    runbookYaml(DOMAIN, {}).replace('  protection: { restorePointInterval: 1m, protectionWindow: 1d }', `  protection:\n    restorePointInterval: 1m\n    protectionWindow: 1d\n    retention: { tiers: [${tiers}] }`);

  it('takes labelled points, lists them, pins one, applies a retention policy submitted while protection runs, and the pinned point rebuilds byte-identical', async () => {
    // Every point for an hour, so that the points outlive the protection's 4 s window until the policy changes.
    await submitRunbook(withRetention('{ every: all, for: 1h }'));
    const taken: string[] = [];
    for (const label of ['before the upgrade', undefined, 'after the upgrade']) {
      const { status, body } = await call('POST', `/domains/${DOMAIN}/restore-points`, label !== undefined ? { label } : {});
      assert.equal(status, 201, JSON.stringify(body));
      assert.equal(body.label, label ?? null);
      taken.push(String(body.id));
      // The next point is a new one only once a write after this one is in the log.
      const { consistency } = (await call('GET', `/domains/${DOMAIN}/restore-points/${String(body.id)}`)).body as { consistency: { lastJournalSequence: number } };
      await waitFor('a write logged after the point', async () => (await protection().query(protectStatusQuery)).cursor > consistency.lastJournalSequence, 30_000);
    }

    const { points, retention } = await listed();
    assert.deepEqual(points.map((p) => p.id), [...taken].reverse(), 'newest first');
    assert.deepEqual(points.map((p) => p.label), ['after the upgrade', null, 'before the upgrade']);
    assert.match(retention.source, /runbook golf v1 spec.protection.retention/);
    const newest = points[0];
    const consistency = newest.consistency as { kind: string; position: { epoch: number }; scope: string };
    assert.deepEqual([consistency.kind, consistency.position.epoch, newest.id.startsWith('0000000001-')], ['log-position', 1, true]);
    assert.match(consistency.scope, /every VM and disk of the domain/);
    assert.deepEqual(newest.vms, [{ name: 'g-app-1', cpus: 2, memoryMiB: 4096, disks: 1, networks: ['prod-app'], datastore: 'ds-a' }]);
    assert.deepEqual([newest.tested, newest.pinned, newest.retention.keptBy], [null, null, ['tier 1: every point for 1h']]);
    assert.equal(Date.parse(newest.retention.expiresAt!), Date.parse(newest.time) + 3_600_000);
    const one = await call('GET', `/domains/${DOMAIN}/restore-points/${taken[1]}`, undefined, viewer.token);
    assert.deepEqual([one.status, one.body.id, one.body.label], [200, taken[1], null]);
    const full = (await listed('?detail=full')).points[0].vms as Array<{ diskIds: string[]; nics: unknown[] }>;
    assert.equal(full[0].diskIds.length, 1);
    assert.equal(full[0].nics.length, 1);

    const pinned = await call('POST', `/domains/${DOMAIN}/restore-points/${taken[0]}/pin`);
    assert.equal(pinned.status, 200, JSON.stringify(pinned.body));
    assert.equal((pinned.body.pinned as { by: string }).by, 'dr-lead');

    // Collections compact the log older than 4 s past the first point, and the policy keeps every point.
    const first = (await listRestorePoints(store, ownership())).find((p) => p.id === taken[0])!;
    const basesBefore = async (sequence: number) => (await listBases(store, ownership())).filter((b) => b.cursor <= sequence).length;
    await waitFor('a compaction past the first point', async () => (await listBases(store, ownership())).some((b) => b.kind === 'compaction' && b.cursor > first.lastJournalSequence), 30_000);
    assert.deepEqual((await listed()).points.map((p) => p.id), [...taken].reverse());

    const runId = (await protection().describe()).runId;
    await submitRunbook(withRetention('{ every: all, for: 1s }'));
    await waitFor('the policy applied: of the points taken, only the pinned one left', async () => !(await listed()).points.some((p) => taken.includes(p.id) && p.id !== taken[0]), 30_000);
    const after = await listed();
    assert.match(after.retention.source, /runbook golf v2 spec.protection.retention/);
    assert.deepEqual(after.retention.tiers, ['every point for 1s']);
    assert.deepEqual(after.points.filter((p) => taken.includes(p.id)).map((p) => [p.id, p.retention.keptBy, p.retention.expiresAt]), [[taken[0], ['pinned'], null]]);
    assert.equal((await protection().describe()).runId, runId, 'the same protection run applied it');

    // Older than the window and than a compaction base: the base it starts from stays, and the log after it.
    const pinnedPoint = first;
    assert.ok((await basesBefore(pinnedPoint.lastJournalSequence)) > 0, 'the base the pinned point starts from is kept');
    const record = readWorkloadRecord(path.join(stack.dir, 'primary', 'workload-record.jsonl'));
    const target = new MemorySite();
    await rehydrate({ store, ownership: ownership(), target, disks: pinnedPoint.disks!, datastore: 'ds', upTo: { kind: 'position', position: pinnedPoint.position } });
    for (const disk of pinnedPoint.disks!) {
      assert.ok(target.disks.get(disk.diskId)!.equals(expectedDiskContent(record, disk.diskId, disk.sizeBytes, { sequence: pinnedPoint.lastJournalSequence })), `${disk.diskId} at the pinned point`);
    }

    const unpinned = await call('DELETE', `/domains/${DOMAIN}/restore-points/${taken[0]}/pin`);
    assert.equal(unpinned.status, 200, JSON.stringify(unpinned.body));
    await waitFor('the unpinned point collected, and the base only it needed', async () => !(await listed()).points.some((p) => p.id === taken[0]) && (await basesBefore(pinnedPoint.lastJournalSequence)) === 0, 30_000);
  });

  it('answers 400 for a bad label, query or id, 403 to a viewer, 404 for an unknown domain or point, 409 without a running protection', async () => {
    const expectStatus = async (method: string, route: string, status: number, body?: unknown, token?: string) => {
      const answer = await call(method, route, body, token);
      assert.equal(answer.status, status, `${method} ${route}: ${JSON.stringify(answer.body)}`);
      return answer.body;
    };
    const errors = await expectStatus('POST', `/domains/${DOMAIN}/restore-points`, 400, { label: '' });
    assert.equal((errors.errors as Array<{ path: string }>)[0].path, 'label');
    await expectStatus('POST', `/domains/${DOMAIN}/restore-points`, 400, { name: 'x' });
    await expectStatus('GET', `/domains/${DOMAIN}/restore-points?detail=everything`, 400);
    await expectStatus('POST', `/domains/${DOMAIN}/restore-points/latest/pin`, 400);
    await expectStatus('POST', `/domains/${DOMAIN}/restore-points`, 403, {}, viewer.token);
    await expectStatus('POST', `/domains/${DOMAIN}/restore-points/0000000001-0000000000000001-1/pin`, 403, undefined, viewer.token);
    await expectStatus('POST', `/domains/${DOMAIN}/restore-points/0000000001-0000000000000001-1/pin`, 404);
    await expectStatus('DELETE', `/domains/${DOMAIN}/restore-points/0000000001-0000000000000001-1/pin`, 404);
    await expectStatus('GET', `/domains/${DOMAIN}/restore-points/0000000001-0000000000000001-1`, 404, undefined, viewer.token);
    await expectStatus('GET', '/domains/nowhere/restore-points', 404);
    await expectStatus('POST', '/domains/nowhere/restore-points', 404, {});
    // Owned by the primary, but nothing protects it there.
    await new Ownership(store, 'hotel').claim('primary');
    const refused = await expectStatus('POST', '/domains/hotel/restore-points', 409, { label: 'x' });
    assert.match(String(refused.detail), /hotel is not being protected at primary \(epoch 1\): no protection workflow protect\/hotel\/primary\/epoch-1 is running/);
  });
});
