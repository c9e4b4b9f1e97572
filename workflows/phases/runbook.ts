import { CancellationScope, proxyActivities } from '@temporalio/workflow';
import type { RunbookPageActivities } from '../../activities/runbook-pages';
import { CANNOT_HEAL } from '../../common/failures';
import type { Runbook } from '../../runbooks/schema';
import { ORCHESTRATION_TASK_QUEUE } from '../task-queues';

/**
 * A runbook version in the runbook store, named in an operation's input instead of carried whole:
 * a runbook of 10,000 VMs is some 2.4 MB of JSON, over Temporal's 2 MB per payload, and would
 * otherwise be in the desk's request, the operation's input and its history more than once.
 */
export interface RunbookByName {
  name: string;
}

/** What an operation's input carries of its runbook: its name (its version beside it), or the runbook itself (requests from before, tests). */
export type RunbookInInput = Runbook | RunbookByName;

const { readRunbookPage } = proxyActivities<RunbookPageActivities>({
  taskQueue: ORCHESTRATION_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: CANNOT_HEAL },
});

/** An operation's request with the runbook it names read: what its workflow runs by. */
export type WithRunbook<Request extends { runbook: RunbookInInput }> = Omit<Request, 'runbook'> & { runbook: Runbook };

/**
 * The request as the operation runs it: its runbook read when it is named (`readRunbook`). The read
 * is not cancelled: a cancel that arrives meanwhile (a continuous operation's run continued as new
 * holds a RocVA and representation VMs) reaches the operation once it can undo what it holds.
 */
export async function withRunbook<Request extends { runbook: RunbookInInput; runbookVersion: number }>(request: Request): Promise<WithRunbook<Request>> {
  return { ...request, runbook: await CancellationScope.nonCancellable(() => readRunbook(request.runbook, request.runbookVersion)) };
}

/** The runbook an operation runs by: read page by page by the orchestration worker when the input names it; the history holds it once. */
export async function readRunbook(runbook: RunbookInInput, version: number): Promise<Runbook> {
  if ('spec' in runbook) return runbook;
  const read = (page: number) => readRunbookPage.executeWithOptions({ summary: `read runbook ${runbook.name} v${version}${page > 0 ? ` (page ${page + 1})` : ''}` }, [{ name: runbook.name, version, page }]);
  const first = await read(0);
  const pages = [first.text];
  for (let page = 1; page < first.pages; page++) pages.push((await read(page)).text);
  return JSON.parse(pages.join('')) as Runbook;
}
