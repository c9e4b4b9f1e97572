import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { sitesRouter } from '../../api/sites';
import { SiteClient } from '../../sites/client';
import { apiCalls } from '../harness/api-calls';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

describe('GET /sites on real sites and Temporal: each site answers or is listed unreachable, with what it holds and whether a worker polls its queue', () => {
  const viewer: ApiPrincipal = { name: 'noc', role: 'viewer', token: generateToken() };
  // The recovery site runs without a worker: its queue has no poller.
  const { stack, primary, recovery } = useTestbed({ workers: ['orchestration', 'primary'] });
  const lost = new SiteClient({ site: 'lost', url: 'http://127.0.0.1:9', token: 'unused', timeoutMs: 1_000 });
  const api = useTestApi({
    principals: [viewer],
    routers: (log) => [sitesRouter({ client: stack.client, sites: new Map([['primary', primary.client], ['recovery', recovery.client], ['lost', lost]]), log })],
  });
  const { call } = apiCalls(() => api.url, viewer.token);

  it('lists every site: inventory counts as the site has them, the last poll of its worker, and the one that does not answer', async () => {
    const before = Date.now();
    const { status, body } = await call('GET', '/sites');
    assert.equal(status, 200, JSON.stringify(body));
    type Shown = { name: string; reachable: boolean; error?: string; inventory?: { vms: number; poweredOn: number; disks: number }; worker: { taskQueue: string; pollers: unknown[]; lastPollAt: string | null } };
    const sites = body.sites as Shown[];
    assert.deepEqual(sites.map((s) => [s.name, s.reachable]), [['lost', false], ['primary', true], ['recovery', true]]);

    const vms = (await primary.client.listVms()).filter((vm) => vm.kind === 'vm');
    const shownPrimary = sites.find((s) => s.name === 'primary')!;
    assert.deepEqual(shownPrimary.inventory && [shownPrimary.inventory.vms, shownPrimary.inventory.poweredOn, shownPrimary.inventory.disks], [vms.length, vms.filter((vm) => vm.powerState === 'poweredOn').length, (await primary.client.listDisks()).length]);
    assert.ok(vms.length > 0);
    assert.equal(shownPrimary.worker.taskQueue, 'site.primary');
    assert.ok(shownPrimary.worker.pollers.length >= 1 && shownPrimary.worker.lastPollAt !== null, JSON.stringify(shownPrimary.worker));
    assert.ok(Date.parse(shownPrimary.worker.lastPollAt) > before - 120_000, 'polled within the last two minutes');

    assert.deepEqual(sites.find((s) => s.name === 'recovery')!.worker.pollers, [], 'no worker polls the recovery site\'s queue');
    const shownLost = sites.find((s) => s.name === 'lost')!;
    assert.match(shownLost.error ?? '', /./);
    assert.equal(shownLost.inventory, undefined);
    assert.ok(((body.orchestration as { worker: { pollers: unknown[] } }).worker.pollers.length) >= 1, 'the orchestration worker polls');
  });

  it('needs a token', async () => {
    assert.equal((await call('GET', '/sites', undefined, null)).status, 401);
  });
});
