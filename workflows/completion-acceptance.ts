import type { UpdateDefinition } from '@temporalio/common';
import { ApplicationFailure, setHandler, workflowInfo } from '@temporalio/workflow';
import { COMPLETION_REFUSED, type CompletionAccepted, type CompletionRequest } from './continuous-failover-messages';
import type { Operation } from './operation';

/**
 * A continuous operation (failover or failback) accepts one completion, planned or forced, while it
 * follows the log. The validator refuses a second one, a forced one without the domain's name, and
 * whatever `refuse` names (e.g. a VM the completion's runbook cannot place): a refused completion
 * leaves no trace in history and the copy keeps following. Returns the accepted request, once there is one.
 */
export function acceptCompletion(
  update: UpdateDefinition<CompletionAccepted, [CompletionRequest]>,
  op: Operation,
  operation: 'continuous failover' | 'continuous failback',
  refuse: (request: CompletionRequest) => string | undefined = () => undefined,
): () => CompletionRequest | undefined {
  let completion: CompletionRequest | undefined;
  setHandler(
    update,
    (request) => {
      completion = request;
      return { workflowId: workflowInfo().workflowId, type: request.type, requestedBy: request.requestedBy };
    },
    {
      validator: (request: CompletionRequest) => {
        if (completion) throw ApplicationFailure.create({ type: COMPLETION_REFUSED, message: `the ${completion.type} completion of this ${operation} was requested by ${completion.requestedBy} already` });
        if (request.type === 'forced' && request.forcedConfirmation !== op.domain) {
          throw ApplicationFailure.create({ type: COMPLETION_REFUSED, message: `a forced completion fences ${op.from}: confirm it by repeating the domain name ${op.domain}` });
        }
        const refusal = refuse(request);
        if (refusal) throw ApplicationFailure.create({ type: COMPLETION_REFUSED, message: refusal });
      },
    },
  );
  return () => completion;
}
