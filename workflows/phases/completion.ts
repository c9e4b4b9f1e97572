import type { FollowResult } from '../../datapath/follower';
import { failure } from '../../common/failures';
import type { CompletionRequest } from '../continuous-failover-messages';
import type { Operation } from '../operation';
import { applyTail, type Following, type FollowerStopped, type PlaceTarget } from './follow';
import { checkOwnership, claimWithFencing, drainAndHandOver } from './ownership';
import { shutDownInReverseOrder } from './shutdown';

/**
 * The completion of a continuous operation, as a stage of its own: ownership moves (planned: the
 * site the domain leaves shuts its VMs down in reverse power-on order, drains and hands over;
 * forced: the site it moves to claims it, fencing the other) and the follower applies the tail of
 * the log that the move sealed, once the follower run that following stopped has ended. `check`
 * runs first, before anything changes: what it refuses (a VM the runbook cannot place) must not
 * strand the domain half-way. Returns the tail and the instant its newest write is from.
 */
export async function completeFollowing(op: Operation, following: Following, stopped: FollowerStopped, request: CompletionRequest, check: () => void, place?: PlaceTarget): Promise<{ tail: FollowResult; dataFrom: number }> {
  op.beginStage(`${request.type} completion requested by ${request.requestedBy}`, request.declaredAt, request.type);
  if (request.runbook) op.useRunbook(request.runbook.runbook, request.runbook.version);
  check();
  const owned = await checkOwnership(op, request.type === 'planned');
  if (request.type === 'planned') {
    await shutDownInReverseOrder(op, owned.vms);
    await drainAndHandOver(op, owned);
  } else {
    if (request.forcedConfirmation !== op.domain) throw failure('ConfirmationRequired', `a forced completion of ${op.domain} must be confirmed by repeating the domain name`);
    await claimWithFencing(op, owned);
  }
  const tail = await applyTail(op, following, stopped, place);
  const dataFrom = tail.appliedUpTo?.timestamp ?? following.status.appliedUpTo?.timestamp ?? request.declaredAt;
  op.recoveringTo({
    description: request.type === 'planned' ? 'the end of the log sealed at the handover' : `the last segment ${op.to} could read`,
    dataFrom,
    ...(tail.appliedUpTo ? { lastJournalSequence: tail.appliedUpTo.lastSequence } : {}),
  });
  return { tail, dataFrom };
}
