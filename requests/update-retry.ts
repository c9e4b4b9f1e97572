import { ServiceError, type UpdateDefinition, type WorkflowHandle } from '@temporalio/client';

/**
 * Executes an update until the workflow answers it. A worker that dies while the update is being
 * delivered, or a workflow task that fails meanwhile, aborts the call with a ServiceError ("Workflow
 * Update failed") although nothing went wrong with the update; the same update id makes each try
 * the same update, applied at most once. The update's own failure (a refusal) is never retried.
 */
export async function executeUpdateSurely<Ret, Args extends [unknown, ...unknown[]]>(
  handle: WorkflowHandle,
  update: UpdateDefinition<Ret, Args>,
  args: Args,
  updateId: string,
  { attempts = 10, pauseMs = 1_000 }: { attempts?: number; pauseMs?: number } = {},
): Promise<Ret> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate(update, { args, updateId });
    } catch (error) {
      if (!(error instanceof ServiceError) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
}
