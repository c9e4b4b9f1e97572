/**
 * Deterministic generator of malformed runbooks for the fuzz tests: text-level damage (truncation,
 * stray characters, broken indentation, binary noise), hostile YAML (alias bombs, deep nesting,
 * several documents) and value-level damage of a valid runbook (missing, unknown and mistyped
 * keys, broken references). Seeded, so a failure is reproducible from its case number.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';

export const THREE_TIER_PATH = path.join(__dirname, '../../runbooks/examples/three-tier.yaml');
export const THREE_TIER = readFileSync(THREE_TIER_PATH, 'utf8');

/** mulberry32: small, fast, good enough to spread mutations. */
export function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  return { next, int, pick };
}
type Random = ReturnType<typeof random>;

const STRAY = [':', '- ', '[', ']', '{', '}', '&a ', '*a', '!!binary ', '"', "'", '#', '\t', '|', '>', '%YAML 1.1\n', '---\n', '...\n', '\u0000', '\uFFFE', '? ', ',', '@', '`'];
const WRONG_VALUES: unknown[] = [null, 0, -1, 1.5, true, 'x', '', [], {}, ['a'], { a: 1 }, '999999999999d', 'not a duration', 1e309, '10.0.0.999', 'Bad Name!'];

type Value = Record<string, unknown> | unknown[];

/** The parts of a runbook value the mutations edit; everything else stays opaque. */
export interface EditableRunbook {
  [key: string]: unknown;
  spec: {
    vms: Array<{ name: string; reIp?: unknown }>;
    powerOn: { groups: Array<{ name: string; dependsOn?: string[]; vms: Array<{ name: string }> }> };
  };
}

/** Every [container, key] pair in the value, to pick one to damage. */
function slots(root: unknown): Array<[Value, string | number]> {
  const found: Array<[Value, string | number]> = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      node.forEach((v, i) => {
        found.push([node, i]);
        stack.push(v);
      });
    } else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        found.push([node as Record<string, unknown>, k]);
        stack.push(v);
      }
    }
  }
  return found;
}

function damageValue(r: Random, base: string): string {
  const value = parse(base) as EditableRunbook;
  const spec = value.spec;
  const all = slots(value);
  const [container, key] = r.pick(all);
  switch (r.int(9)) {
    case 0: // remove a key or item
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key as string];
      break;
    case 1: // an unknown key, often a near-miss of a real one
      if (!Array.isArray(container)) container[r.pick([`${String(key)}s`, String(key).slice(1), 'extra', 'Name', 'depends_on', 'x-custom'])] = 1;
      else container.push(r.pick(WRONG_VALUES));
      break;
    case 2: // a wrong value
      (container as Record<string | number, unknown>)[key] = r.pick(WRONG_VALUES);
      break;
    case 3: // a reference to nothing
      spec.powerOn.groups[r.int(spec.powerOn.groups.length)].vms.push({ name: `ghost-${r.int(100)}` });
      break;
    case 4: // a dependency cycle
      spec.powerOn.groups[0].dependsOn = [spec.powerOn.groups[spec.powerOn.groups.length - 1].name];
      break;
    case 5: // a VM in two groups
      spec.powerOn.groups[1].vms.push({ name: spec.powerOn.groups[0].vms[0].name });
      break;
    case 6: // an unusable address
      spec.vms[r.int(spec.vms.length)].reIp = { address: r.pick(['10.0.0.0', '10.0.0.256', '::1::', '10.0.0.5']), prefix: r.pick([24, 33, 129]), gateway: r.pick(['10.9.9.9', 'fe80::1', '10.0.0.5']) };
      break;
    case 7: // a duplicate name
      spec.powerOn.groups.push({ ...spec.powerOn.groups[0], vms: [{ name: 'reporting-1' }] });
      break;
    default: // the wrong apiVersion or kind
      value[r.pick(['apiVersion', 'kind'])] = r.pick(['v1', 'Runbooks', 'dr.example.io/v1']);
  }
  return stringify(value);
}

function damageText(r: Random, base: string): string {
  const lines = base.split('\n');
  const line = r.int(lines.length);
  switch (r.int(10)) {
    case 0:
      return base.slice(0, r.int(base.length));
    case 1: {
      const at = r.int(base.length);
      return base.slice(0, at) + r.pick(STRAY) + base.slice(at);
    }
    case 2:
      lines[line] = ` ${lines[line]}`;
      return lines.join('\n');
    case 3:
      lines[line] = lines[line].trimStart();
      return lines.join('\n');
    case 4:
      lines.splice(line, 0, lines[line]);
      return lines.join('\n');
    case 5:
      lines.splice(line, 1);
      return lines.join('\n');
    case 6:
      return Array.from({ length: 1 + r.int(400) }, () => String.fromCharCode(r.int(0x3000))).join('');
    case 7:
      return r.pick([
        'a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n',
        `${'['.repeat(50 + r.int(5000))}1${']'.repeat(50)}`,
        `${'a:\n'.replace('a', 'k')}${Array.from({ length: 40 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`,
        `${base}---\n${base}`,
        '- just\n- a\n- list\n',
        'a plain scalar',
        '42',
        'null',
        '{"apiVersion": "dr.example.io/v1alpha1", "kind": "Runbook"',
        '<?xml version="1.0"?><runbook/>',
        'spec: *undefined_alias\n',
      ]);
    case 8: // tabs for indentation are not YAML
      lines[line] = lines[line].replace(/^ +/, '\t');
      return lines.join('\n');
    default:
      lines[line] = lines[line].replace(/:(\s|$)/, ' $1');
      return lines.join('\n');
  }
}

/** The n-th generated document: alternately damaged as text and as a value. */
export function malformedRunbook(n: number, base: string = THREE_TIER): string {
  const r = random(n * 7919 + 17);
  return n % 2 === 0 ? damageText(r, base) : damageValue(r, base);
}

/** Only value-level damage: always well-formed YAML, for comparing shape checks with the JSON Schema. */
export function damagedValue(n: number, base: string = THREE_TIER): string {
  return damageValue(random(n * 104729 + 3), base);
}
