import { workflowInfo } from '@temporalio/workflow';
import type { DomainMode } from '../../common/domain-modes';
import type { Operation } from '../operation';
import { activitiesAt } from './site-activities';

/**
 * Records the domain's mode and where its VMs run (by default the site the operation moves them
 * to) in the storage site, where every site and the API read it.
 */
export async function setDomainMode(op: Operation, mode: DomainMode, vms: string[], runningAt = op.to): Promise<void> {
  await op.step('set the domain mode', () =>
    activitiesAt(op.to).setDomainStatus.executeWithOptions({ summary: `${op.domain}: ${mode}, running at ${runningAt}` }, [
      { domain: op.domain, mode, runningAt, vms: vms.map((name) => ({ name, protection: 'Recoverable' as const })), setBy: workflowInfo().workflowId },
    ]),
  );
}
