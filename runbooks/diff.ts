/**
 * Unified line diff between two runbook versions (Myers' O(ND) algorithm: fast when versions
 * differ in a few lines, which is the usual case, even for runbooks of thousands of lines).
 */
type Edit = { op: ' ' | '-' | '+'; line: string; oldLine: number; newLine: number };

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Beyond this many changed lines the diff shows the whole old text replaced by the new one. */
const MAX_EDIT_DISTANCE = 2_000;

function shortestEdit(a: string[], b: string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // Only the diagonals a round can reach are kept, so memory grows with the square of the changes, not the size.
  const trace: Array<{ low: number; frontier: Int32Array }> = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push({ low: -d - 1, frontier: v.slice(offset - d - 1, offset + d + 2) });
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  if (!found) {
    return [
      ...a.map((line, i) => ({ op: '-' as const, line, oldLine: i, newLine: 0 })),
      ...b.map((line, i) => ({ op: '+' as const, line, oldLine: n, newLine: i })),
    ];
  }
  // Walk back through the recorded frontiers to recover the edit script.
  const edits: Edit[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const { low, frontier } = trace[d];
    const at = (k: number) => frontier[k - low];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      edits.push({ op: ' ', line: a[x], oldLine: x, newLine: y });
    }
    if (d === 0) break;
    if (x === prevX) edits.push({ op: '+', line: b[--y], oldLine: x, newLine: y });
    else edits.push({ op: '-', line: a[--x], oldLine: x, newLine: y });
  }
  return edits.reverse();
}

export function unifiedDiff(oldText: string, newText: string, labels: { from: string; to: string }, context = 3): string {
  const edits = shortestEdit(splitLines(oldText), splitLines(newText));
  const changed = edits.map((e, i) => (e.op !== ' ' ? i : -1)).filter((i) => i >= 0);
  if (changed.length === 0) return '';
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  let i = 0;
  while (i < changed.length) {
    const start = Math.max(0, changed[i] - context);
    let end = Math.min(edits.length, changed[i] + context + 1);
    while (i + 1 < changed.length && changed[i + 1] - context <= end) {
      i++;
      end = Math.min(edits.length, changed[i] + context + 1);
    }
    i++;
    const hunk = edits.slice(start, end);
    const oldCount = hunk.filter((e) => e.op !== '+').length;
    const newCount = hunk.filter((e) => e.op !== '-').length;
    const oldStart = hunk[0].oldLine + (oldCount > 0 ? 1 : 0);
    const newStart = hunk[0].newLine + (newCount > 0 ? 1 : 0);
    out.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
    for (const e of hunk) out.push(`${e.op}${e.line}`);
  }
  return `${out.join('\n')}\n`;
}
