import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { storageSiteRouter } from '../../api/storage-site';
import type { ImportableDomain } from '../../datapath/import-scan';
import { DomainKeys } from '../../datapath/keys';
import { Ownership } from '../../datapath/ownership';
import { RECORD_FORMAT_VERSION, type Manifest } from '../../datapath/records';
import { createRestorePoint } from '../../datapath/restore-points';
import { SegmentWriter } from '../../datapath/segment-writer';
import { useTestStack } from '../harness/stack';
import { useTestApi } from '../harness/testbed';

function manifest(domain: string, site: string, protectionWindowMs: number): Manifest {
  return { formatVersion: RECORD_FORMAT_VERSION, domain, protectedSite: site, disks: [{ vm: 'vm-1', diskId: 'd0', sizeBytes: 4096 }], vms: [], protectionWindowMs, updatedAt: 1 };
}

describe('GET /storage/domains on real S3: the domains a storage site holds, for import', () => {
  const viewer = generateToken();
  // A prefix, as a storage site shared by several deployments would use.
  const { store } = useTestStack({ prefix: 'site-x/' });
  const api = useTestApi({ principals: [{ name: 'vera', role: 'viewer', token: viewer }], routers: (log) => [storageSiteRouter({ store, log })] });

  it('lists owner, epoch, latest restore point and window per domain, and a damaged manifest as that domain’s problem', async () => {
    const shop = new Ownership(store, 'shop');
    await shop.claim('primary');
    await shop.claim('recovery');
    await store.put(shop.keys.manifest(), JSON.stringify(manifest('shop', 'recovery', 7_200_000)));
    const writer = new SegmentWriter(store, shop, 2, 'recovery');
    await writer.write(0, [{ sequence: 1, timestamp: 5_000, vm: 'vm-1', diskId: 'd0', offset: 0, data: Buffer.alloc(512, 1) }], 1);
    await createRestorePoint(store, shop, { reason: 'policy', vms: [], now: 6_000 });
    await writer.write(1, [{ sequence: 2, timestamp: 7_000, vm: 'vm-1', diskId: 'd0', offset: 0, data: Buffer.alloc(512, 2) }], 2);
    const latest = await createRestorePoint(store, shop, { reason: 'on-demand', vms: [], now: 8_000 });

    const broken = new Ownership(store, 'broken');
    await broken.claim('primary');
    await store.put(new DomainKeys(store.prefix, 'broken').manifest(), '{"formatVersion": 1, "domain": "broken"');
    await new Ownership(store, 'unrecorded').claim('primary');

    const unauthenticated = await fetch(`${api.url}/storage/domains`);
    assert.equal(unauthenticated.status, 401);
    assert.match(unauthenticated.headers.get('content-type') ?? '', /application\/problem\+json/);

    const response = await fetch(`${api.url}/storage/domains`, { headers: { authorization: `Bearer ${viewer}` } });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { bucket: string; prefix: string; domains: ImportableDomain[] };
    assert.equal(body.prefix, 'site-x/');
    const byName = new Map(body.domains.map((d) => [d.domain, d]));
    assert.deepEqual([...byName.keys()].sort(), ['broken', 'shop', 'unrecorded']);
    assert.deepEqual(byName.get('shop'), {
      domain: 'shop',
      epoch: 2,
      ownerSite: 'recovery',
      protectedSite: 'recovery',
      protectionWindowMs: 7_200_000,
      latestRestorePoint: { id: latest.id, timestamp: 7_000 },
    });
    const damaged = byName.get('broken')!;
    assert.deepEqual([damaged.epoch, damaged.ownerSite], [1, 'primary'], 'what is readable is still listed');
    assert.match(damaged.problem ?? '', /domains\/broken\/manifest\.json is not JSON/);
    assert.match(byName.get('unrecorded')!.problem ?? '', /no manifest/);
  });
});
