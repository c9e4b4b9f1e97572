import type { UpdateDefinition } from '@temporalio/common';
import { ApplicationFailure, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import { COMPLETION_REFUSED, type CompletionAccepted, type CompletionRequest } from './continuous-failover-messages';
import type { Operation } from './operation';

/**
 * A continuous operation (failover or failback) accepts one completion, planned or forced, while it
 * follows the log. The validator refuses a second one, a forced one without the domain's name, and
 * whatever `refuse` names (e.g. a VM the completion's runbook cannot place): a refused completion
 * leaves no trace in history and the copy keeps following. The handler is set before the run reads
 * its runbook (`operationOf` answers nothing until then), so a completion never meets a run that
 * continued as new and cannot take it yet: what needs the runbook is checked once it is read, and a
 * completion refused then fails with the same refusal. Returns the accepted request, once there is one.
 */
export function acceptCompletion(
  update: UpdateDefinition<CompletionAccepted, [CompletionRequest]>,
  domain: string,
  operationOf: () => Operation | undefined,
  operation: 'continuous failover' | 'continuous failback',
  refuse: (request: CompletionRequest, op: Operation) => string | undefined = () => undefined,
): () => CompletionRequest | undefined {
  let completion: CompletionRequest | undefined;
  const refused = (message: string) => ApplicationFailure.create({ type: COMPLETION_REFUSED, message });
  const alreadyRequested = () => completion && refused(`the ${completion.type} completion of this ${operation} was requested by ${completion.requestedBy} already`);
  setHandler(
    update,
    async (request) => {
      // Only a run still reading its runbook waits here; otherwise the completion is taken at once, as before.
      if (!operationOf()) await condition(() => operationOf() !== undefined);
      const second = alreadyRequested();
      if (second) throw second;
      const refusal = refuse(request, operationOf()!);
      if (refusal) throw refused(refusal);
      completion = request;
      return { workflowId: workflowInfo().workflowId, type: request.type, requestedBy: request.requestedBy };
    },
    {
      validator: (request: CompletionRequest) => {
        const second = alreadyRequested();
        if (second) throw second;
        const op = operationOf();
        if (request.type === 'forced' && request.forcedConfirmation !== domain) {
          throw refused(`a forced completion fences ${op?.from ?? `the site ${domain} runs at`}: confirm it by repeating the domain name ${domain}`);
        }
        const refusal = op && refuse(request, op);
        if (refusal) throw refused(refusal);
      },
    },
  );
  return () => completion;
}
