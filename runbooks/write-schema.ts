/** Regenerates runbooks/runbook.schema.json from the zod schema: `npx tsx runbooks/write-schema.ts`. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderRunbookJsonSchema } from './json-schema';

export const RUNBOOK_SCHEMA_FILE = path.join(__dirname, 'runbook.schema.json');

if (require.main === module) {
  writeFileSync(RUNBOOK_SCHEMA_FILE, renderRunbookJsonSchema());
  console.log(`wrote ${path.relative(process.cwd(), RUNBOOK_SCHEMA_FILE)}`);
}
