import { condition, isCancellation } from '@temporalio/workflow';
import type { FailurePolicy } from '../runbooks/schema';
import type { OperatorAction, PausedOn } from './power-on-messages';
import { workflowNow } from './clock';
import { failure } from '../common/failures';

export type PolicyOutcome = 'done' | 'failed' | 'skipped' | 'resumedByOperator';

/**
 * Runs steps and VMs under the runbook's failure policy: `abort` rethrows (the operation then
 * compensates), `continue` records the failure and goes on, `pause` waits for an operator to
 * resume (treat as done), retry, skip or abort. Several VMs of a group may be paused at once.
 */
export class FailurePolicyRunner {
  private readonly paused = new Map<string, PausedOn>();
  private readonly decisions = new Map<string, OperatorAction>();

  pausedTargets(): PausedOn[] {
    return [...this.paused.values()];
  }

  isPaused(target: string): boolean {
    return this.paused.has(target);
  }

  /** Called by the operatorDecision update handler once its validator accepted the target. */
  decide(target: string, action: OperatorAction): void {
    this.decisions.set(target, action);
  }

  async run(target: string, policy: FailurePolicy, action: () => Promise<void>, onError: (message: string) => void): Promise<PolicyOutcome> {
    for (;;) {
      try {
        await action();
        return 'done';
      } catch (error) {
        // A cancelled operation is not a failed step: no policy applies, the cancellation goes on up.
        if (isCancellation(error)) throw error;
        const message = failureMessage(error);
        onError(message);
        if (policy === 'abort') throw failure('RunbookStepAborted', `${target}: ${message}`);
        if (policy === 'continue') return 'failed';
        this.paused.set(target, { target, reason: message, since: workflowNow() });
        await condition(() => this.decisions.has(target));
        const decision = this.decisions.get(target);
        this.decisions.delete(target);
        this.paused.delete(target);
        if (decision === 'abort') throw failure('RunbookStepAborted', `${target}: aborted by an operator after: ${message}`);
        if (decision === 'skip') return 'skipped';
        if (decision === 'resume') return 'resumedByOperator';
        // retry: go round again
      }
    }
  }
}

/** The words an operator needs from a failure: the activity's own message rather than its wrapper's. */
export function failureMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? cause.message : error.message;
  }
  return String(error);
}
