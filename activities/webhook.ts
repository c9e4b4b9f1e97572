import { heartbeat } from '@temporalio/activity';
import type { SecretResolver } from '../common/secrets';
import { SecretNotFoundError } from '../common/secrets';
import { failure } from '../common/failures';

export interface WebhookCall {
  /** Step name, for messages. */
  step: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  /** Header name -> name of the secret whose value is sent. */
  secretHeaders: Record<string, string>;
  body?: string;
  expectedStatus: number[];
  timeoutMs: number;
  /** Identifies this call to the receiver so that a retried delivery can be recognised. */
  idempotencyKey: string;
}

export interface WebhookResult {
  status: number;
  durationMs: number;
}

export interface WebhookDependencies {
  secrets: SecretResolver;
}

/**
 * Runbook webhook steps (DNS updates, load-balancer changes, tickets). Retries come from the
 * activity's retry policy (the runbook's `retries`); an unexpected status is retryable, a missing
 * secret is not. The response body is not returned: it may echo credentials.
 */
export function createWebhookActivities({ secrets }: WebhookDependencies) {
  return {
    async callWebhook(call: WebhookCall): Promise<WebhookResult> {
      const headers: Record<string, string> = { 'idempotency-key': call.idempotencyKey };
      if (call.body !== undefined) headers['content-type'] = 'application/json';
      try {
        for (const [header, secretName] of Object.entries(call.secretHeaders)) headers[header] = await secrets.resolve(secretName);
      } catch (error) {
        if (error instanceof SecretNotFoundError) throw failure('SecretNotFound', error.message);
        throw error;
      }
      heartbeat();
      const started = Date.now();
      let response: Response;
      try {
        response = await fetch(call.url, {
          method: call.method,
          headers,
          ...(call.body !== undefined && call.method !== 'GET' ? { body: call.body } : {}),
          signal: AbortSignal.timeout(call.timeoutMs),
          redirect: 'manual',
        });
        await response.body?.cancel();
      } catch (error) {
        const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${call.timeoutMs} ms` : (error as Error).message;
        throw failure('WebhookUnreachable', `webhook ${call.step}: ${call.method} ${call.url} failed: ${reason}`);
      }
      const durationMs = Date.now() - started;
      if (!call.expectedStatus.includes(response.status)) {
        throw failure('WebhookUnexpectedStatus', `webhook ${call.step}: ${call.method} ${call.url} answered ${response.status}, expected ${call.expectedStatus.join(' or ')}`);
      }
      return { status: response.status, durationMs };
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
