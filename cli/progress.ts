/**
 * Following an operation to its end: on a terminal, a few lines redrawn in place (phase, steps,
 * VMs by state, a bar of bytes rehydrated with its rate); otherwise plain lines, one per change,
 * with no control characters, for logs and CI. The exit code says how it ended.
 */
import type { ApiClient } from './api-client';

interface Step {
  name: string;
  state: 'running' | 'done' | 'failed';
  durationMs?: number;
  detail?: string;
}

interface Progress {
  phase?: string;
  outcome?: string;
  steps?: Step[];
  vms?: Array<{ name: string; state: string }>;
  bytesRehydrated?: number;
  rtoSoFarMs?: number;
}

interface Report extends Progress {
  rtoMs?: number;
  rpoMs?: number;
  failure?: string;
  drill?: { outcome: string; failedBecause?: string[] };
}

export interface OperationView {
  workflowId: string;
  status: string;
  progress?: Progress;
  result?: Report;
  webUiUrl?: string;
}

export const EXIT = { succeeded: 0, failed: 1, usage: 2 } as const;

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** VMs counted by state, in a stable order: `3 poweredOn, 1 rehydrating`. */
function vmsByState(vms: Progress['vms']): string {
  const counts = new Map<string, number>();
  for (const vm of vms ?? []) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([state, n]) => `${n} ${state}`).join(', ') || 'none yet';
}

/** The lines a terminal shows for the operation now. */
export function progressLines(view: OperationView, rateBytesPerSecond: number, width = 30): string[] {
  const progress = view.progress ?? {};
  const steps = progress.steps ?? [];
  const done = steps.filter((s) => s.state === 'done').length;
  const bytes = progress.bytesRehydrated ?? 0;
  const lines = [
    `${view.workflowId}  ${view.status}  ${progress.phase ?? ''}`.trimEnd(),
    `steps ${done}/${steps.length} done${steps.some((s) => s.state === 'failed') ? ', some failed' : ''}   VMs: ${vmsByState(progress.vms)}   RTO so far ${seconds(progress.rtoSoFarMs)}`,
  ];
  if (bytes > 0) {
    // No total is known up front (the log decides what is read), so the bar turns, it does not fill.
    const filled = Math.floor(bytes / MiB) % (width + 1);
    lines.push(`rehydrated [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${mib(bytes)} at ${mib(rateBytesPerSecond)}/s`);
  }
  return lines;
}

/** What changed between two looks at the operation, as plain lines. */
export function changeLines(before: OperationView | undefined, now: OperationView, at: Date): string[] {
  const time = at.toISOString().slice(11, 19);
  const lines: string[] = [];
  // An ended operation answers its report instead of its progress: the steps it finished last are there.
  const was = before?.progress;
  const is = now.progress ?? now.result;
  if (is?.phase && is.phase !== was?.phase) lines.push(`${time} phase: ${is.phase}`);
  const known = new Map((was?.steps ?? []).map((s) => [s.name, s.state]));
  for (const step of is?.steps ?? []) {
    if (step.state === known.get(step.name) || step.state === 'running') continue;
    lines.push(`${time} ${step.state === 'done' ? 'done' : 'FAILED'}: ${step.name} (${seconds(step.durationMs)})${step.detail && step.state === 'failed' ? `: ${step.detail}` : ''}`);
  }
  const bytes = is?.bytesRehydrated ?? 0;
  if (Math.floor(bytes / (64 * MiB)) > Math.floor((was?.bytesRehydrated ?? 0) / (64 * MiB))) lines.push(`${time} rehydrated ${mib(bytes)}`);
  return lines;
}

/** How the operation ended, in a few lines, and the exit code that says it. */
export function endLines(view: OperationView): { lines: string[]; exitCode: number } {
  const report = view.result;
  const outcome = report?.outcome ?? view.status.toLowerCase();
  const lines = [`${view.workflowId}: ${view.status} (${outcome})`];
  if (report?.rtoMs !== undefined || report?.rpoMs !== undefined) lines.push(`RTO ${seconds(report.rtoMs)}, RPO ${seconds(report.rpoMs)}`);
  if (report?.drill) lines.push(`drill ${report.drill.outcome}${report.drill.failedBecause ? `: ${report.drill.failedBecause.join('; ')}` : ''}`);
  if (report?.failure) lines.push(`failure: ${report.failure}`);
  if (view.webUiUrl) lines.push(`Web UI: ${view.webUiUrl}`);
  const succeeded = view.status === 'COMPLETED' && outcome === 'succeeded' && (report?.drill === undefined || report.drill.outcome === 'passed');
  return { lines, exitCode: succeeded ? EXIT.succeeded : EXIT.failed };
}

export interface WatchOptions {
  /** A terminal: redraw in place; otherwise plain lines. */
  tty: boolean;
  write: (text: string) => void;
  intervalMs?: number;
}

/** Polls the operation until it is no longer running; answers its last view. */
export async function watchOperation(api: ApiClient, workflowId: string, { tty, write, intervalMs = 1_000 }: WatchOptions): Promise<OperationView> {
  let previous: OperationView | undefined;
  let drawn = 0;
  let rate = 0;
  let lastSample = { at: Date.now(), bytes: 0 };
  for (;;) {
    const view = { ...(await api.get(`/operations/${encodeURIComponent(workflowId)}`)), workflowId } as unknown as OperationView;
    const bytes = view.progress?.bytesRehydrated ?? 0;
    const now = Date.now();
    if (now > lastSample.at && bytes >= lastSample.bytes) rate = 0.7 * rate + (0.3 * (bytes - lastSample.bytes) * 1000) / (now - lastSample.at);
    lastSample = { at: now, bytes };
    if (tty) {
      const lines = progressLines(view, rate);
      // Back to the first line drawn, clear to the end, draw again.
      write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${lines.join('\n')}\n`);
      drawn = lines.length;
    } else {
      for (const line of changeLines(previous, view, new Date(now))) write(`${line}\n`);
    }
    if (view.status !== 'RUNNING') return view;
    previous = view;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
