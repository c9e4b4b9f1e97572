/** Workflows run on the orchestration queue; every side effect at a site runs on that site's queue. */
export const ORCHESTRATION_TASK_QUEUE = 'orchestration';

export function siteTaskQueue(site: string): string {
  return `site.${site}`;
}
