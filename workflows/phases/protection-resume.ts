import { getExternalWorkflowHandle, workflowInfo } from '@temporalio/workflow';
import type { RecoveryPoint } from '../../activities/handover';
import { recordsDeparture } from './ownership';
import type { Operation } from '../operation';
import { startProtection } from './protection';
import type { RebuildTarget } from './rebuild';
import { activitiesAt } from './site-activities';

/**
 * Protection resumes at the domain's new owner: the rebuilt disks start journaling, and a new
 * protection of the operation's epoch drains the journal from there. Its initial sync makes the
 * rebuilt disks the epoch's base, so a recovery to an earlier point never mixes with the old
 * chain's later writes. Undo: that protection is cancelled. Rebuilt to a position of the log
 * (`point`), the new owner records that its epoch starts from there: a later failback back to the
 * site the domain left checks that lineage before it applies only the changes. `vms`: the domain's
 * VMs it protects (by default the rebuilt ones; a restore of some VMs protects all of them).
 */
export async function resumeProtection(op: Operation, targets: RebuildTarget[], point?: Pick<RecoveryPoint, 'upTo'>, vms = targets.map((t) => t.name)): Promise<void> {
  const epoch = op.epoch;
  if (epoch === undefined) throw new Error('protection resumes only after the operation holds the domain');
  await op.step('resume protection', async () => {
    const { id, cursor } = await protectFromNow(op, epoch, targets.flatMap((t) => t.disks.map((d) => d.diskId)), vms);
    op.undo.push(`protection at ${op.to} stopped`, () => getExternalWorkflowHandle(id).cancel());
    if (point?.upTo.kind === 'position' && recordsDeparture()) {
      await activitiesAt(op.to).recordArrival.executeWithOptions({ summary: `record that epoch ${epoch} of ${op.domain} starts from the rebuilt disks` }, [
        { domain: op.domain, epoch, from: point.upTo.position, cursor },
      ]);
    }
  });
}

/**
 * `diskIds` start journaling at the operation's site and a protection of `epoch` starts there from
 * the journal's position then, its initial sync making the domain's disks as they are the epoch's
 * base. Pushes no undo: a compensation that protects the domain again uses it too.
 */
export async function protectFromNow(op: Operation, epoch: number, diskIds: string[], vms: string[]): Promise<{ id: string; cursor: number }> {
  const { cursor } = await activitiesAt(op.to).protectRecoveredDisks.executeWithOptions({ summary: `journal the recovered disks of ${op.domain}` }, [{ diskIds }]);
  const id = await startProtection({
    domain: op.domain,
    site: op.to,
    epoch,
    vms,
    settings: op.runbook.spec.protection,
    resumeAt: { cursor },
    reason: `resumed by ${workflowInfo().workflowId}`,
  });
  return { id, cursor };
}
