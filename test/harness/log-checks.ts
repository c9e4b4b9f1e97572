/**
 * What the fault tests check once the faults are over: the domain's log, as a fresh reader sees
 * it, holds each write once and in order and rebuilds the primary's disks; a domain recovered at
 * the recovery site is there once, its disks equal to the primary's.
 */
import assert from 'node:assert/strict';
import { readChain, resolveChain } from '../../datapath/log-chain';
import type { ObjectStore } from '../../datapath/object-store';
import { Ownership } from '../../datapath/ownership';
import { manifestSchema, parseRecord } from '../../datapath/records';
import { rehydrate } from '../../datapath/rehydrate';
import type { SiteService } from '../../sites/launch';
import { domainVms } from '../fixtures/failover-domains';

/**
 * The log of `epoch` holds each journal write once and in order: every segment starts where the
 * one before it ends (no write stored twice under two names, none skipped), and its writes follow
 * their journal sequence. A resync segment's reads all carry the sequence it ends at.
 */
export async function assertLogHoldsEachWriteOnce(store: ObjectStore, domain: string, epoch: number): Promise<void> {
  const chain = (await resolveChain(store, new Ownership(store, domain))).filter((link) => link.epoch === epoch);
  let end: number | undefined;
  for await (const { link, segment } of readChain(store, chain, 4)) {
    if (end !== undefined) assert.equal(segment.afterSequence, end, `${link.key} starts where the segment before it ends`);
    end = segment.lastSequence;
    if (segment.entries.every((entry) => entry.sequence === segment.lastSequence)) continue;
    let last = segment.afterSequence;
    for (const entry of segment.entries) {
      assert.ok(entry.sequence > last && entry.sequence <= segment.lastSequence, `${link.key}: journal sequence ${entry.sequence} after ${last}, up to ${segment.lastSequence}`);
      last = entry.sequence;
    }
  }
}

/** Rebuilds the end of the domain's log at `target` (new disks, ids prefixed) and checks each disk equals the primary's now: the primary must be idle and the log caught up. */
export async function assertLogRebuildsPrimary(store: ObjectStore, domain: string, primary: SiteService, target: SiteService, datastore: string): Promise<void> {
  const ownership = new Ownership(store, domain);
  const key = ownership.keys.manifest();
  const { disks } = parseRecord(manifestSchema, key, (await store.get(key))!);
  const targetDiskId = (diskId: string) => `rebuilt-${diskId}`;
  await rehydrate({ store, ownership, target: target.client, disks, datastore, upTo: { kind: 'latest' }, targetDiskId });
  for (const disk of disks) {
    const [rebuilt, original] = await Promise.all([target.client.readDisk(targetDiskId(disk.diskId), 0, disk.sizeBytes), primary.client.readDisk(disk.diskId, 0, disk.sizeBytes)]);
    assert.ok(rebuilt.equals(original), `${disk.diskId} rebuilt from the log equals the primary's`);
  }
}

/** After a failover with the primary shut down: the recovery site holds the domain's VMs and nothing else, as `assertRecoveredEqualsSource` checks them. */
export async function assertRecoveredEqualsPrimary(domain: string, primary: SiteService, recovery: SiteService): Promise<void> {
  assert.deepEqual((await recovery.client.listVms()).map((v) => v.name).sort(), domainVms(domain).sort(), 'the recovery site holds the domain\'s VMs only');
  await assertRecoveredEqualsSource(domain, primary, recovery);
}

/**
 * After a failover from `source` with its VMs shut down: no appliance left at `target`, each VM of
 * the domain there once (other domains' VMs may run there too), every disk equal to the source's.
 */
export async function assertRecoveredEqualsSource(domain: string, source: SiteService, target: SiteService): Promise<void> {
  const vms = await target.client.listVms();
  assert.deepEqual(vms.filter((v) => v.kind !== 'vm').map((v) => v.name), [], 'no RocVA or representation VM is left');
  const names = new Set(domainVms(domain));
  const recovered = vms.filter((v) => names.has(v.name));
  assert.deepEqual(recovered.map((v) => v.name).sort(), [...names].sort(), 'each recovered VM exactly once');
  for (const vm of recovered) {
    for (const diskId of vm.diskIds) {
      const { sizeBytes } = await target.client.getDisk(diskId);
      const [copy, original] = await Promise.all([target.client.readDisk(diskId, 0, sizeBytes), source.client.readDisk(diskId, 0, sizeBytes)]);
      assert.ok(copy.equals(original), `${diskId} equals the disk at ${source.client.site} after its shutdown${copy.equals(original) ? '' : `: ${whereTheyDiffer(copy, original)}`}`);
    }
  }
}

/** Which 4 KiB blocks of two disk images differ (the first few by offset, and how many): enough to tell a lost write from a misordered one. */
function whereTheyDiffer(copy: Buffer, original: Buffer, blockBytes = 4096): string {
  const differing: number[] = [];
  for (let offset = 0; offset < Math.max(copy.length, original.length); offset += blockBytes) {
    if (!copy.subarray(offset, offset + blockBytes).equals(original.subarray(offset, offset + blockBytes))) differing.push(offset);
  }
  return `${differing.length} block(s) of ${blockBytes} bytes differ, the first at offsets ${differing.slice(0, 8).join(', ')}`;
}
