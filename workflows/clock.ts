/**
 * The workflow's clock. Inside the Temporal sandbox Date.now() is deterministic: it returns the
 * time of the current workflow task as recorded in history, so replay sees the same values.
 */
export function workflowNow(): number {
  return Date.now();
}
