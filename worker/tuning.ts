/**
 * How much work one worker process takes on at once. The defaults are measured, not guessed:
 * bench/worker-options.ts runs 50 domains failing over at once with each candidate, interleaved,
 * and bench/results/worker-options.json holds its figures. An operator overrides them with the
 * DR_WORKER_* variables (docs/operations.md) for a machine of another size.
 */
import type { WorkerOptions } from '@temporalio/worker';
import type { WorkerCapacity } from '../common/config';

export type WorkerRole = 'orchestration' | 'site';

type CapacityOptions = Pick<WorkerOptions, 'maxCachedWorkflows' | 'maxConcurrentWorkflowTaskExecutions' | 'maxConcurrentActivityTaskExecutions'>;

const MEASURED_DEFAULTS: Record<WorkerRole, CapacityOptions> = {
  orchestration: {
    maxCachedWorkflows: 500,
  },
  site: {},
};

export function workerCapacity(role: WorkerRole, set: WorkerCapacity): CapacityOptions {
  return { ...MEASURED_DEFAULTS[role], ...set };
}
