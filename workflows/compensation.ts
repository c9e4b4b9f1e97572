import { CancellationScope, log } from '@temporalio/workflow';
import { failureMessage } from './failure-policy';

export interface CompensationOutcome {
  /** What was removed or given back, in the order it was undone. */
  undone: string[];
  /** What is still in place, each with the reason. */
  remains: string[];
}

/**
 * The undo steps of an operation, pushed as it creates things and unwound newest first when it
 * aborts or is cancelled. Unwinding runs in a non-cancellable scope, so a cancel cannot stop the
 * cleanup half-way, and one failed undo does not prevent the others.
 */
export class Compensations {
  private readonly steps: Array<{ what: string; undo: () => Promise<void> }> = [];
  private readonly kept: string[] = [];

  push(what: string, undo: () => Promise<void>): void {
    this.steps.push({ what, undo });
  }

  /** Something that deliberately stays when the operation is undone, with why. */
  keep(what: string): void {
    this.kept.push(what);
  }

  /**
   * A point of no return (something is about to be removed for good): what was pushed so far is
   * no longer undone, and `what` says what stays. Steps pushed afterwards are undone as usual.
   */
  settle(what: string): void {
    this.steps.length = 0;
    this.kept.push(what);
  }

  async unwind(): Promise<CompensationOutcome> {
    const outcome: CompensationOutcome = { undone: [], remains: [...this.kept] };
    await CancellationScope.nonCancellable(async () => {
      for (const step of this.steps.reverse()) {
        try {
          await step.undo();
          outcome.undone.push(step.what);
        } catch (error) {
          log.error('compensation step failed', { step: step.what, error: String(error) });
          outcome.remains.push(`${step.what}: undo failed (${failureMessage(error)})`);
        }
      }
    });
    this.steps.length = 0;
    return outcome;
  }
}
