/** Answers several routers give, as zod schemas, so the document and the response checks in the tests share them. */
import { z } from 'zod';

/** Where an operation is followed: its workflow, its status URL here, and the Temporal Web UI when there is one. */
export const OperationLinks = z.looseObject({
  workflowId: z.string(),
  statusUrl: z.string().describe('GET it for the operation\'s status and progress'),
  webUiUrl: z.string().optional().describe('the workflow in the Temporal Web UI'),
});

/** The 202 of every request that starts an operation through the domain's operations desk. */
export const OperationStarted = OperationLinks.extend({
  operation: z.string().describe('e.g. failover, drill, restore'),
  drillGivingWay: OperationLinks.optional().describe('a drill of the domain that is cleaned up to make way'),
});

/** The runbook a route takes in, as YAML text (validated by the runbook schema, GET /runbooks/schema.json). */
export const RUNBOOK_YAML = {
  description: 'the runbook as YAML text (UTF-8); GET /runbooks/schema.json is its JSON Schema',
  content: { 'application/yaml': null, 'application/x-yaml': null, 'text/yaml': null },
};
