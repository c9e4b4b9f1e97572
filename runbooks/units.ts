/**
 * Human-readable durations (`30s`, `5m`, `1h30m`) as written in runbooks.
 * The pattern is shared with the schema so that the JSON Schema checks exactly what the parser accepts.
 */
export const DURATION_PATTERN = '^([0-9]{1,6}(ms|s|m|h|d))+$';

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration that matches DURATION_PATTERN; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(DURATION_PATTERN).test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/([0-9]+)(ms|s|m|h|d)/g)) total += Number(amount) * DURATION_UNIT_MS[unit];
  return total;
}

/** The shortest human form, e.g. 5_430_000 -> "1h30m30s"; sub-second rests are kept as ms. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]] as const) {
    const amount = Math.floor(rest / size);
    if (amount > 0) parts.push(`${amount}${unit}`);
    rest -= amount * size;
  }
  return parts.join('');
}
