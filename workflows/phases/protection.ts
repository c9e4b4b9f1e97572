import { CancellationScope, getExternalWorkflowHandle, log, ParentClosePolicy, patched, startChild } from '@temporalio/workflow';
import { protectionPolicy, type ProtectionSettings } from '../../runbooks/protection-policy';
import { failureMessage } from '../failure-policy';
import { protect, stopProtectionSignal, type ProtectInput } from '../protect';
import { DR_DOMAIN, DR_OPERATION, DR_SITE } from '../search-attributes';
import { protectionWorkflowId } from '../workflow-ids';

export interface ProtectionStart {
  domain: string;
  site: string;
  /** The ownership epoch the protection writes in; a new protection claims epoch 1 itself. */
  epoch: number;
  vms: string[];
  /** The runbook's `spec.protection`; absent: the defaults. */
  settings?: ProtectionSettings;
  /** A new owner that has claimed `epoch` already: drain the journal from `cursor`; the initial sync makes its disks the epoch's base. */
  resumeAt?: { cursor: number };
  /** Shown as the workflow's summary in the Web UI: why it started. */
  reason: string;
}

/**
 * The options every start of a domain's protection uses, whether a workflow starts it as a child
 * (an operation at the domain's new owner) or a client does (the embedded stack at first start):
 * one workflow id per site and epoch, one policy from the runbook.
 */
export function protectionWorkflowOptions(start: ProtectionStart) {
  const input: ProtectInput = {
    domain: start.domain,
    site: start.site,
    vms: start.vms,
    ...protectionPolicy(start.settings),
    ...(start.resumeAt ? { start: { epoch: start.epoch, cursor: start.resumeAt.cursor }, initialSync: true } : {}),
  };
  return {
    workflowId: protectionWorkflowId(start.domain, start.site, start.epoch),
    args: [input] as [ProtectInput],
    staticSummary: `Protection of ${start.domain} at ${start.site} (epoch ${start.epoch}): ${start.reason}`,
    typedSearchAttributes: [
      { key: DR_DOMAIN, value: start.domain },
      { key: DR_OPERATION, value: 'protect' },
      { key: DR_SITE, value: start.site },
    ],
  };
}

/**
 * Starts protection from inside an operation; it outlives the operation. Returns its workflow id.
 * Started outside the operation's cancellation scope: the SDK cancels a running child when the
 * scope that started it is cancelled, whatever its parent close policy, and a cancel that leaves
 * the operation's goal in place (past the goal, or during a commit window) must not end the
 * domain's protection. An undo that must stop it cancels it by its id.
 */
export async function startProtection(start: ProtectionStart): Promise<string> {
  const options = protectionWorkflowOptions(start);
  const begin = () => startChild(protect, { ...options, parentClosePolicy: ParentClosePolicy.ABANDON });
  await (patched('protection-outlives-a-cancel') ? CancellationScope.nonCancellable(begin) : begin());
  return options.workflowId;
}

/**
 * Ends the protection of an epoch: `stop` after its current run (a planned handover, which drains
 * first), `cancel` at once (a fenced owner, whose replicator can write nothing more). A protection
 * that has already closed is fine; any other failure is the operation's.
 */
export async function endProtection(domain: string, site: string, epoch: number, how: 'stop' | 'cancel'): Promise<void> {
  const handle = getExternalWorkflowHandle(protectionWorkflowId(domain, site, epoch));
  try {
    if (how === 'stop') await handle.signal(stopProtectionSignal);
    else await handle.cancel();
  } catch (error) {
    if (!/not found/i.test(failureMessage(error))) throw error;
    log.info('protection had already closed', { domain, site, epoch });
  }
}
