import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { restorePointRefusal, type ProtectionNow } from '../../api/domain-protection';

describe('why a protection cannot take a restore point now (what a restore asks it for first)', () => {
  const logging: ProtectionNow = { domain: 'erp', site: 'primary', epoch: 3, cursor: 120, lagMs: 0, backlogEntries: 0, segmentsWritten: 4, mode: 'log', modeChanges: [], vms: ['db'], stopping: false };

  it('has nothing to say while every write is logged', () => {
    assert.equal(restorePointRefusal(logging, 2), undefined);
  });

  it('says how far the initial sync has copied the disks, or that it has copied none yet', () => {
    const copying = { ...logging, mode: 'initial-sync' as const, initialSyncCopied: { disk: 4212, bytesRead: 3 * 2 ** 30, chunksStored: 3072 } };
    assert.equal(restorePointRefusal(copying, 10_000), 'protection of epoch 3 is in its initial sync (copying disk 4213 of 10000, 3.0 GiB read so far) and takes restore points only once it is finished');
    assert.match(restorePointRefusal({ ...logging, mode: 'initial-sync' }, 10_000) ?? '', /10000 disks to copy, none copied yet/);
  });

  it('names the mode a fallen-behind replication is in, a disk sync\'s progress, and a log with no write yet', () => {
    assert.match(restorePointRefusal({ ...logging, mode: 'bitmap' }, 2) ?? '', /is in bitmap mode .* once every write is logged again/);
    assert.match(restorePointRefusal({ ...logging, mode: 'resync' }, 2) ?? '', /is in resync mode/);
    assert.match(restorePointRefusal({ ...logging, diskSync: { disks: ['d1', 'd2', 'd3'], copiedDisks: 1 } }, 5) ?? '', /copying new disks into its log \(1 of 3 copied\)/);
    assert.match(restorePointRefusal({ ...logging, cursor: 0 }, 2) ?? '', /has replicated no write yet/);
  });
});
