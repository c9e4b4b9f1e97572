/**
 * Reads submitted text as one YAML document, refusing what could exhaust the server (huge
 * bodies, alias bombs, deep nesting) before building any value, and maps value paths back to
 * line:column in the text so that every finding points where the operator has to look.
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { RunbookIssue } from './issues';

export const SOURCE_LIMITS = {
  /** Large enough for a 10,000-VM domain written in block style. */
  maxBytes: 4 * 1024 * 1024,
  maxAliases: 50,
  maxDepth: 32,
} as const;

/** Syntax errors cascade (one bad indent breaks every line after it); the first ones are what matter. */
const MAX_SYNTAX_ERRORS = 20;

export type PathSegment = string | number;

export interface ParsedSource {
  value: unknown;
  locate(path: readonly PathSegment[], target?: 'key' | 'value'): { line: number; column: number };
}

export type SourceResult = { ok: true; source: ParsedSource } | { ok: false; errors: RunbookIssue[] };

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function issueAt(lineCounter: LineCounter, offset: number, message: string, code: string): RunbookIssue {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col, path: '', message, code };
}

interface TreeFacts {
  depth: number;
  aliases: number;
  /** Offset of the first mapping key that is itself a mapping or list (JS objects cannot hold it). */
  collectionKeyAt?: number;
}

/** One iterative walk over the syntax tree, so that a hostile document cannot overflow the stack. */
function treeFacts(root: unknown): TreeFacts {
  const facts: TreeFacts = { depth: 0, aliases: 0 };
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (isAlias(node)) facts.aliases++;
    else if (isMap(node) || isSeq(node)) {
      facts.depth = Math.max(facts.depth, depth + 1);
      for (const item of node.items as unknown[]) {
        if (isPair(item)) {
          if ((isMap(item.key) || isSeq(item.key)) && facts.collectionKeyAt === undefined) facts.collectionKeyAt = item.key.range?.[0] ?? 0;
          stack.push([item.key, depth + 1], [item.value, depth + 1]);
        } else stack.push([item, depth + 1]);
      }
    }
  }
  return facts;
}

function locator(doc: Document, lineCounter: LineCounter): ParsedSource['locate'] {
  return (path, target = 'value') => {
    let node: unknown = doc.contents;
    let offset = (doc.contents)?.range?.[0] ?? 0;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === segment);
        if (!pair) break;
        const keyOffset = (pair.key as Node | null)?.range?.[0];
        const value = pair.value as Node | null;
        if ((last && target === 'key') || !value?.range) {
          offset = keyOffset ?? offset;
          if (!value?.range) break;
        } else offset = value.range[0];
        node = value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment] as Node | null | undefined;
        if (!item?.range) break;
        offset = item.range[0];
        node = item;
      } else break;
    }
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
}

export function parseSource(text: string, limits: { maxBytes: number } = SOURCE_LIMITS): SourceResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) {
    return { ok: false, errors: [{ line: 1, column: 1, path: '', code: 'too_large', message: `runbook is ${bytes} bytes; the limit is ${limits.maxBytes} bytes` }] };
  }
  if (text.trim() === '') {
    return { ok: false, errors: [{ line: 1, column: 1, path: '', code: 'empty', message: 'runbook is empty; expected a YAML mapping with apiVersion, kind, metadata and spec' }] };
  }
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, keepSourceTokens: true, uniqueKeys: true, strict: true, version: '1.2', logLevel: 'error' });
  } catch (error) {
    // The parser recurses on nesting; a RangeError here is a nesting bomb, not a server fault.
    const reason = error instanceof RangeError ? `nesting is deeper than the parser can follow (limit ${SOURCE_LIMITS.maxDepth} levels)` : 'the text is not YAML the parser can read';
    return { ok: false, errors: [{ line: 1, column: 1, path: '', code: 'yaml', message: reason }] };
  }
  const errors = doc.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => {
    if (e.code === 'MULTIPLE_DOCS') {
      return issueAt(lineCounter, e.pos[0], 'only one YAML document per runbook is accepted (found "---" or "..." starting another)', 'multiple_documents');
    }
    if (e.code === 'RESOURCE_EXHAUSTION') {
      return issueAt(lineCounter, e.pos[0], `nesting is deeper than the parser can follow (limit ${SOURCE_LIMITS.maxDepth} levels)`, 'too_deep');
    }
    return issueAt(lineCounter, e.pos[0], `YAML: ${e.message.split('\n')[0]}`, `yaml_${e.code.toLowerCase()}`);
  });
  if (errors.length > 0) return { ok: false, errors };

  const facts = treeFacts(doc.contents);
  if (facts.depth > SOURCE_LIMITS.maxDepth) {
    return { ok: false, errors: [issueAt(lineCounter, 0, `nesting is ${facts.depth} levels deep; the limit is ${SOURCE_LIMITS.maxDepth}`, 'too_deep')] };
  }
  if (facts.aliases > SOURCE_LIMITS.maxAliases) {
    return { ok: false, errors: [issueAt(lineCounter, 0, `${facts.aliases} YAML aliases; the limit is ${SOURCE_LIMITS.maxAliases} (alias expansion can exhaust memory)`, 'too_many_aliases')] };
  }
  if (facts.collectionKeyAt !== undefined) {
    return { ok: false, errors: [issueAt(lineCounter, facts.collectionKeyAt, 'a mapping key must be a plain name, not a mapping or list', 'collection_key')] };
  }
  if (!isMap(doc.contents)) {
    const offset = (doc.contents)?.range?.[0] ?? 0;
    return { ok: false, errors: [issueAt(lineCounter, offset, 'a runbook must be a YAML mapping with apiVersion, kind, metadata and spec', 'not_a_mapping')] };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: SOURCE_LIMITS.maxAliases });
  } catch (error) {
    // yaml throws ReferenceError for alias expansion beyond maxAliasCount and for unresolvable aliases.
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    const unresolved = /unresolved alias/i.test(message);
    return {
      ok: false,
      errors: [
        issueAt(
          lineCounter,
          0,
          unresolved ? `YAML: ${message}` : `YAML aliases expand too much (limit ${SOURCE_LIMITS.maxAliases} alias expansions; alias expansion can exhaust memory)`,
          unresolved ? 'yaml_unresolved_alias' : 'alias_expansion',
        ),
      ],
    };
  }
  return { ok: true, source: { value, locate: locator(doc, lineCounter) } };
}
