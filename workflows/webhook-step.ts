import { proxyActivities } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhook';
import { CANNOT_HEAL } from '../common/failures';
import type { RunbookWebhookStep } from '../runbooks/schema';
import { parseDuration } from '../runbooks/units';
import { siteTaskQueue } from './task-queues';

/**
 * Calls a runbook's webhook step from the worker of `site`, with the step's timeout and retries.
 * `idempotencyKey` is sent with every attempt, so the receiver can tell a retry from a new call.
 */
export async function callWebhookStep(site: string, step: RunbookWebhookStep, idempotencyKey: string): Promise<void> {
  const timeoutMs = parseDuration(step.timeout) ?? 0;
  const { callWebhook } = proxyActivities<WebhookActivities>({
    taskQueue: siteTaskQueue(site),
    startToCloseTimeout: timeoutMs + 10_000,
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: step.retries + 1, nonRetryableErrorTypes: CANNOT_HEAL },
  });
  await callWebhook.executeWithOptions({ summary: `webhook ${step.name}: ${step.method} ${new URL(step.url).host}` }, [
    {
      step: step.name,
      method: step.method,
      url: step.url,
      secretHeaders: Object.fromEntries(Object.entries(step.headers).map(([h, ref]) => [h, ref.secret])),
      ...(step.body !== undefined ? { body: step.body } : {}),
      expectedStatus: step.expectedStatus,
      timeoutMs,
      idempotencyKey,
    },
  ]);
}
