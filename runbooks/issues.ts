/** A finding about a submitted runbook: where it is (1-based line and column, value path) and what is wrong. */
export interface RunbookIssue {
  line: number;
  column: number;
  /** Value path such as spec.powerOn.groups[2].vms[0]; empty for the document as a whole. */
  path: string;
  message: string;
  /** Stable machine-readable kind, e.g. unknown_key, dependency_cycle, not_in_inventory. */
  code: string;
}

export function compareIssues(a: RunbookIssue, b: RunbookIssue): number {
  return a.line - b.line || a.column - b.column || a.message.localeCompare(b.message);
}

export function formatIssue(file: string, issue: RunbookIssue): string {
  return `${file}:${issue.line}:${issue.column}: ${issue.message}${issue.path ? ` (${issue.path})` : ''}`;
}
