/** The runbook format as JSON Schema, for editors (yaml-language-server) and for API clients. */
import { z } from 'zod';
import { RUNBOOK_API_VERSION, RunbookSchema } from './schema';

export const RUNBOOK_SCHEMA_ID = `https://${RUNBOOK_API_VERSION.split('/')[0]}/schemas/runbook-${RUNBOOK_API_VERSION.split('/')[1]}.json`;

/** Input side: what a person writes, so keys with defaults are optional and show their default. */
export function runbookJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(RunbookSchema, { io: 'input', target: 'draft-2020-12' }),
    $id: RUNBOOK_SCHEMA_ID,
    title: 'DR runbook',
    description: `A disaster-recovery runbook (apiVersion ${RUNBOOK_API_VERSION}, kind Runbook); see docs/runbooks.md`,
  };
}

export const renderRunbookJsonSchema = () => `${JSON.stringify(runbookJsonSchema(), null, 2)}\n`;
