import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRecoverySiteActivities } from '../../activities/recovery-site';
import { representationVmName } from '../../common/resource-names';
import type { SiteService } from '../../sites/launch';
import { SiteClient } from '../../sites/client';
import { admin, prepareTestSites, type TestSites } from '../harness/sites';

const MiB = 1024 * 1024;
const placement = { datacenter: 'dc-b', cluster: 'cluster-b1', resourcePool: 'dr-pool', datastore: 'ds-b' };

/** The failure a worker reports for the activity: a Temporal failure of the site's own type, retryable or not. */
function failureOf(type: string, retryable: boolean) {
  return (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
    assert.equal(error.type, type);
    assert.equal(error.nonRetryable, !retryable);
    return true;
  };
}

describe('recovery-site activities when the site cannot answer whether a VM exists', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-recovery-outage-'));
  const environment = new MockActivityEnvironment();
  const env = { run: <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) => environment.run<A, R, typeof fn>(fn, ...args) };
  let sites: TestSites;
  let recovery: SiteService;

  before(async () => {
    sites = await prepareTestSites(dir);
    recovery = await sites.start('recovery');
  });
  after(async () => {
    await recovery?.process.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('compensation during a site outage fails retryably as SiteUnavailable, and removes the VM once the site is back', async () => {
    const acts = createRecoverySiteActivities({ provider: recovery.client });
    await env.run(acts.prepareTargetDisks, { vm: 'web-1', placement, disks: [{ diskId: 'web-1-disk-0', sizeBytes: MiB }] });
    const spec = { name: 'web-1', kind: 'vm' as const, cpus: 2, memoryMiB: 2048, placement, nics: [], diskIds: [] };
    await env.run(acts.registerRecoveredVm, { spec });
    assert.deepEqual((await recovery.client.listVms()).map((v) => v.name).sort(), ['repr-web-1', 'web-1']);

    await admin(recovery, sites.token, '/admin/outage');
    try {
      await assert.rejects(env.run(acts.removeRecoveredVm, { vm: 'web-1' }), failureOf('SiteUnavailable', true));
      await assert.rejects(env.run(acts.registerRecoveredVm, { spec }), failureOf('SiteUnavailable', true));
    } finally {
      await admin(recovery, sites.token, '/admin/restore');
    }

    assert.deepEqual((await recovery.client.listVms()).map((v) => v.name).sort(), ['repr-web-1', 'web-1'], 'nothing was removed while the site was down');
    await env.run(acts.removeRecoveredVm, { vm: 'web-1' });
    assert.deepEqual(await recovery.client.listVms(), []);
    await assert.rejects(recovery.client.getVm(representationVmName('web-1')), /does not exist/);
    await assert.rejects(recovery.client.getDisk('web-1-disk-0'), /does not exist/);
  });

  it('a site error that retrying cannot heal keeps its type and is not retried', async () => {
    const wrongToken = new SiteClient({ site: 'recovery', url: recovery.url, token: 'not-the-token' });
    const acts = createRecoverySiteActivities({ provider: wrongToken });
    await recovery.client.registerVm({ name: 'api-1', kind: 'vm', cpus: 1, memoryMiB: 512, placement, nics: [], diskIds: [] });
    await assert.rejects(env.run(acts.removeRecoveredVm, { vm: 'api-1' }), failureOf('Unauthorized', false));
    await assert.rejects(env.run(acts.registerRecoveredVm, { spec: { name: 'api-1', kind: 'vm', cpus: 1, memoryMiB: 512, placement, nics: [], diskIds: [] } }), failureOf('Unauthorized', false));
    assert.equal((await recovery.client.getVm('api-1')).name, 'api-1');
  });
});
