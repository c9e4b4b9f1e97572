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
 * site the domain left checks that lineage before it applies only the changes.
 */
export async function resumeProtection(op: Operation, targets: RebuildTarget[], point?: Pick<RecoveryPoint, 'upTo'>): Promise<void> {
  const epoch = op.epoch;
  if (epoch === undefined) throw new Error('protection resumes only after the operation holds the domain');
  await op.step('resume protection', async () => {
    const { cursor } = await activitiesAt(op.to).protectRecoveredDisks.executeWithOptions({ summary: `journal the recovered disks of ${op.domain}` }, [
      { diskIds: targets.flatMap((t) => t.disks.map((d) => d.diskId)) },
    ]);
    const id = await startProtection({
      domain: op.domain,
      site: op.to,
      epoch,
      vms: targets.map((t) => t.name),
      settings: op.runbook.spec.protection,
      resumeAt: { cursor },
      reason: `resumed by ${workflowInfo().workflowId}`,
    });
    op.undo.push(`protection at ${op.to} stopped`, () => getExternalWorkflowHandle(id).cancel());
    if (point?.upTo.kind === 'position' && recordsDeparture()) {
      await activitiesAt(op.to).recordArrival.executeWithOptions({ summary: `record that epoch ${epoch} of ${op.domain} starts from the rebuilt disks` }, [
        { domain: op.domain, epoch, from: point.upTo.position, cursor },
      ]);
    }
  });
}
