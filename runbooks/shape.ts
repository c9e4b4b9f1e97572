/**
 * Shape checks: the zod schema's findings, each placed at its line:column, with unknown keys
 * reported one by one at the key itself and a suggestion from the keys allowed at that place.
 */
import { z } from 'zod';
import type { RunbookIssue } from './issues';
import { RunbookSchema, type Runbook } from './schema';
import { formatPath, type ParsedSource, type PathSegment } from './source';
import { didYouMean } from './suggest';

/** The object schema that applies at `path`, following the data to pick a discriminated union's branch. */
function objectSchemaAt(path: readonly PathSegment[], value: unknown): z.ZodObject | undefined {
  let schema: z.ZodType = RunbookSchema;
  let data = value;
  for (let i = 0; ; i++) {
    for (;;) {
      if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
      else if (schema instanceof z.ZodDiscriminatedUnion) {
        const type = (data as { type?: unknown } | undefined)?.type;
        const branch = (schema.options as z.ZodObject[]).find((o) => (o.shape.type as z.ZodLiteral).values.has(type as string));
        if (!branch) return undefined;
        schema = branch;
      } else break;
    }
    if (i === path.length) return schema instanceof z.ZodObject ? schema : undefined;
    const segment = path[i];
    if (schema instanceof z.ZodObject && typeof segment === 'string') schema = schema.shape[segment] as z.ZodType;
    else if (schema instanceof z.ZodArray && typeof segment === 'number') schema = schema.element as z.ZodType;
    else if (schema instanceof z.ZodRecord) schema = schema.valueType as z.ZodType;
    else return undefined;
    if (!schema) return undefined;
    data = (data as Record<string | number, unknown> | undefined)?.[segment];
  }
}

function messageFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const key = issue.path[issue.path.length - 1];
      if (issue.input === undefined && typeof key === 'string') return `missing required key "${key}" (${issue.expected})`;
      return `expected ${issue.expected}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_value':
      return `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'invalid_union': {
      // A discriminated union without a matching branch names its discriminator and the allowed values.
      const { discriminator, options } = issue as { discriminator?: string; options?: unknown[] };
      return discriminator && options ? `"${discriminator}" must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}` : issue.message;
    }
    case 'invalid_key':
      return `invalid key: ${issue.issues.map((i) => i.message).join('; ')}`;
    case 'too_small':
      return issue.origin === 'array' ? `needs at least ${String(issue.minimum)} item(s)` : `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return issue.origin === 'array' ? `allows at most ${String(issue.maximum)} item(s)` : issue.origin === 'string' ? `must be at most ${String(issue.maximum)} characters` : `must be at most ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value;
}

export function checkShape(source: ParsedSource): { runbook?: Runbook; errors: RunbookIssue[] } {
  const parsed = RunbookSchema.safeParse(source.value, { reportInput: true });
  if (parsed.success) return { runbook: parsed.data, errors: [] };
  const errors: RunbookIssue[] = [];
  for (const issue of parsed.error.issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const allowed = Object.keys(objectSchemaAt(path, source.value)?.shape ?? {});
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        errors.push({
          ...source.locate(keyPath, 'key'),
          path: formatPath(keyPath),
          code: 'unknown_key',
          message: `unknown key "${key}"${didYouMean(key, allowed)}${allowed.length > 0 && allowed.length <= 15 ? ` (allowed: ${allowed.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    errors.push({ ...source.locate(path, issue.code === 'invalid_key' ? 'key' : 'value'), path: formatPath(path), code: issue.code, message: messageFor(issue) });
  }
  return { errors };
}
