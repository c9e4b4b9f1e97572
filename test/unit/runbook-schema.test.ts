/**
 * The committed JSON Schema is what editors check runbooks with; it must be current and agree with
 * the validator's shape checks. No JSON Schema validator is a dependency, so this file carries a
 * small one for exactly the keywords z.toJSONSchema emits; any other keyword fails the test
 * instead of being ignored, so the checker cannot silently accept what it does not understand.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generateLargeDomainRunbook } from '../../runbooks/examples/large-domain';
import { renderRunbookJsonSchema, runbookJsonSchema } from '../../runbooks/json-schema';
import { checkShape } from '../../runbooks/shape';
import { parseSource } from '../../runbooks/source';
import { RUNBOOK_SCHEMA_FILE } from '../../runbooks/write-schema';
import { atChaosSize } from '../harness/crashes';
import { damagedValue, THREE_TIER } from './runbook-malformed';

type Schema = Record<string, unknown>;

/** 3,000 under `npm run chaos`. */
const DAMAGED_RUNBOOKS = atChaosSize(3_000, 1_000);

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'default']);
const KNOWN = new Set([
  ...ANNOTATIONS,
  'type', 'const', 'enum', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems',
  'items', 'properties', 'required', 'additionalProperties', 'propertyNames', 'oneOf', 'anyOf',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isFinite(value) ? (Number.isInteger(value) ? 'integer' : 'number') : 'non-finite';
  return typeof value;
}

/** Errors of `value` against `schema` (JSON Schema 2020-12 subset), as JSON pointers with reasons. */
function jsonSchemaErrors(schema: Schema, value: unknown, pointer = ''): string[] {
  for (const keyword of Object.keys(schema)) if (!KNOWN.has(keyword)) throw new Error(`checker does not support keyword "${keyword}" at ${pointer}`);
  const errors: string[] = [];
  const fail = (why: string) => errors.push(`${pointer || '/'}: ${why}`);
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const matches = schema.type === actual || (schema.type === 'number' && actual === 'integer');
    if (!matches) return [`${pointer || '/'}: expected ${JSON.stringify(schema.type)}, got ${actual}`];
  }
  if ('const' in schema && schema.const !== value) fail(`must be ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) fail('not in enum');
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`does not match ${schema.pattern}`);
    if (typeof schema.minLength === 'number' && length < schema.minLength) fail('too short');
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) fail('too long');
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail('below minimum');
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail('above maximum');
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail('too few items');
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) fail('too many items');
    if (schema.items) value.forEach((item, i) => errors.push(...jsonSchemaErrors(schema.items as Schema, item, `${pointer}/${i}`)));
  }
  if (actual === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in object)) fail(`missing ${key}`);
    for (const [key, item] of Object.entries(object)) {
      if (schema.propertyNames) errors.push(...jsonSchemaErrors(schema.propertyNames as Schema, key, `${pointer}/${key}#name`));
      if (key in properties) errors.push(...jsonSchemaErrors(properties[key], item, `${pointer}/${key}`));
      else if (schema.additionalProperties === false) fail(`unknown property ${key}`);
      else if (typeof schema.additionalProperties === 'object') errors.push(...jsonSchemaErrors(schema.additionalProperties as Schema, item, `${pointer}/${key}`));
    }
  }
  if (Array.isArray(schema.oneOf)) {
    const passing = (schema.oneOf as Schema[]).filter((s) => jsonSchemaErrors(s, value, pointer).length === 0).length;
    if (passing !== 1) fail(`matches ${passing} of the oneOf branches`);
  }
  if (Array.isArray(schema.anyOf) && !(schema.anyOf as Schema[]).some((s) => jsonSchemaErrors(s, value, pointer).length === 0)) fail('matches no anyOf branch');
  return errors;
}

function valueOf(text: string): unknown {
  const parsed = parseSource(text);
  assert.ok(parsed.ok, 'fixture must be well-formed YAML');
  return parsed.source.value;
}

describe('runbook JSON Schema', () => {
  const schema = runbookJsonSchema();

  it('is committed up to date (regenerate with: npx tsx runbooks/write-schema.ts)', () => {
    assert.equal(readFileSync(RUNBOOK_SCHEMA_FILE, 'utf8'), renderRunbookJsonSchema());
  });

  it('validates the examples', () => {
    assert.deepEqual(jsonSchemaErrors(schema, valueOf(THREE_TIER)), []);
    assert.deepEqual(jsonSchemaErrors(schema, valueOf(generateLargeDomainRunbook(300))), []);
  });

  it('the checker itself rejects what it should', () => {
    assert.deepEqual(jsonSchemaErrors({ type: 'integer', minimum: 1 }, 0), ['/: below minimum']);
    assert.equal(jsonSchemaErrors({ type: 'object', properties: {}, additionalProperties: false }, { a: 1 }).length, 1);
    assert.equal(jsonSchemaErrors({ oneOf: [{ type: 'string' }, { type: 'string', pattern: '^a' }] }, 'abc').length, 1);
    assert.throws(() => jsonSchemaErrors({ format: 'uri' }, 'x'), /does not support keyword "format"/);
  });

  it(`rejects exactly what the validator rejects for shape, over ${DAMAGED_RUNBOOKS} damaged runbooks`, () => {
    let rejected = 0;
    let accepted = 0;
    for (let n = 0; n < DAMAGED_RUNBOOKS; n++) {
      const text = damagedValue(n);
      const parsed = parseSource(text);
      assert.ok(parsed.ok, `case ${n} must be well-formed YAML`);
      const shapeErrors = checkShape(parsed.source).errors;
      const schemaErrors = jsonSchemaErrors(schema, parsed.source.value);
      assert.equal(
        schemaErrors.length === 0,
        shapeErrors.length === 0,
        `case ${n}: zod says ${JSON.stringify(shapeErrors.map((e) => e.message))}, JSON Schema says ${JSON.stringify(schemaErrors)}`,
      );
      if (shapeErrors.length > 0) rejected++;
      else accepted++;
    }
    // Both verdicts must be well represented, or the comparison proves little.
    assert.ok(rejected > DAMAGED_RUNBOOKS / 3 && accepted > DAMAGED_RUNBOOKS / 6, `rejected ${rejected}, accepted ${accepted}`);
  });
});
