/**
 * Measurement helpers shared by the benchmarks that run the product on real servers: what a
 * workflow's history scheduled and how long each activity type waited and ran, the CPU of every
 * process from /proc (the machine is shared, so other processes are measured too), and a wait for
 * a quiet machine before a timed run.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time';

// --- histories --------------------------------------------------------------------------------

export interface ActivityTiming {
  count: number;
  /** First scheduled to last closed. */
  spanMs: number;
  queueWaitMs: { p50: number; p99: number; max: number };
  runMs: { p50: number; p99: number; max: number };
  retried: number;
}

export interface HistoryCounts {
  workflowIds: string[];
  events: number;
  activitiesScheduled: number;
  activitiesByType: Record<string, number>;
  childWorkflows: number;
  childWorkflowsByType: Record<string, number>;
  timings: Record<string, ActivityTiming>;
}

export const percentile = (values: number[], p: number) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

/**
 * A workflow's events, read 10 at a time: a page of the server's default size (1,000 events) of
 * a 10,000-VM failover was 9 MB, and one of 100 events 7.7 MB, over the 4 MB a client may receive
 * in one message (its runbook and recovery point are read in pages of up to some 700 KB each).
 */
export async function historyEvents(client: Client, workflowId: string, pageSize = 10, runId?: string): Promise<temporal.api.history.v1.IHistoryEvent[]> {
  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId, ...(runId ? { runId } : {}) }, maximumPageSize: pageSize, nextPageToken });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return events;
}

/**
 * Counts what a workflow and the children it awaited (its power-on groups) scheduled; with
 * `sinceMs`, only activities scheduled from then on (the completion stage of a workflow that ran
 * long before it, such as a continuous failover).
 */
export async function countHistory(client: Client, workflowId: string, sinceMs = 0): Promise<HistoryCounts> {
  const counts: HistoryCounts = { workflowIds: [], events: 0, activitiesScheduled: 0, activitiesByType: {}, childWorkflows: 0, childWorkflowsByType: {}, timings: {} };
  const raw = new Map<string, { scheduled: number[]; closed: number[]; queue: number[]; run: number[]; retried: number }>();
  const visit = async (id: string) => {
    counts.workflowIds.push(id);
    const events = await historyEvents(client, id);
    counts.events += events.length;
    const scheduled = new Map<string, { type: string; at: number }>();
    const started = new Map<string, number>();
    const initiated = new Map<string, string>();
    const awaited: string[] = [];
    for (const event of events) {
      const at = tsToMs(event.eventTime);
      const id = String(event.eventId);
      if (event.activityTaskScheduledEventAttributes && at >= sinceMs) {
        const type = event.activityTaskScheduledEventAttributes.activityType?.name ?? '?';
        counts.activitiesScheduled++;
        counts.activitiesByType[type] = (counts.activitiesByType[type] ?? 0) + 1;
        scheduled.set(id, { type, at });
        if (!raw.has(type)) raw.set(type, { scheduled: [], closed: [], queue: [], run: [], retried: 0 });
        raw.get(type)!.scheduled.push(at);
      }
      const start = event.activityTaskStartedEventAttributes;
      if (start) {
        const s = scheduled.get(String(start.scheduledEventId));
        if (!s) continue; // scheduled before sinceMs
        started.set(String(start.scheduledEventId), at);
        const r = raw.get(s.type)!;
        r.queue.push(at - s.at);
        if ((start.attempt ?? 1) > 1) r.retried++;
      }
      const closed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
      if (closed) {
        const key = String(closed.scheduledEventId);
        const s = scheduled.get(key);
        if (!s) continue; // scheduled before sinceMs
        const r = raw.get(s.type)!;
        r.closed.push(at);
        r.run.push(at - (started.get(key) ?? s.at));
      }
      const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
      if (child) {
        const type = child.workflowType?.name ?? '?';
        counts.childWorkflows++;
        counts.childWorkflowsByType[type] = (counts.childWorkflowsByType[type] ?? 0) + 1;
        initiated.set(id, child.workflowId ?? '');
      }
      const done = event.childWorkflowExecutionCompletedEventAttributes;
      if (done) awaited.push(done.workflowExecution?.workflowId ?? initiated.get(String(done.initiatedEventId))!);
    }
    for (const child of awaited) await visit(child);
  };
  await visit(workflowId);
  for (const [type, r] of raw) {
    counts.timings[type] = {
      count: r.scheduled.length,
      spanMs: Math.max(...r.closed) - Math.min(...r.scheduled),
      queueWaitMs: { p50: percentile(r.queue, 50), p99: percentile(r.queue, 99), max: Math.max(0, ...r.queue) },
      runMs: { p50: percentile(r.run, 50), p99: percentile(r.run, 99), max: Math.max(0, ...r.run) },
      retried: r.retried,
    };
  }
  return counts;
}

/** The bytes of a history's payloads (data and metadata), summed: what a replay reads and decodes. */
function payloadBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + payloadBytes(item), 0);
  if (value && typeof value === 'object') return Object.values(value).reduce((sum: number, item) => sum + payloadBytes(item), 0);
  return 0;
}

/**
 * Where a workflow's own history bytes are, by event type and activity type ("ActivityTaskCompleted
 * resolveRecoveryPoint"), largest first: what grows with the domain's size in bytes, not events.
 */
export async function historyBytesByKind(client: Client, workflowId: string): Promise<Array<{ kind: string; events: number; bytes: number }>> {
  const activityOf = new Map<string, string>();
  const kinds = new Map<string, { events: number; bytes: number }>();
  for (const event of await historyEvents(client, workflowId)) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) activityOf.set(String(event.eventId), scheduled.activityType?.name ?? '?');
    const closed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    const activity = scheduled ? activityOf.get(String(event.eventId)) : closed ? activityOf.get(String(closed.scheduledEventId)) : undefined;
    const attributes = Object.keys(event).find((key) => key.endsWith('EventAttributes')) ?? 'unknown';
    const kind = `${attributes.replace(/EventAttributes$/, '')}${activity ? ` ${activity}` : ''}`;
    const entry = kinds.get(kind) ?? { events: 0, bytes: 0 };
    entry.events++;
    entry.bytes += payloadBytes(event);
    kinds.set(kind, entry);
  }
  return [...kinds].map(([kind, entry]) => ({ kind, ...entry })).sort((a, b) => b.bytes - a.bytes);
}

/** What the Temporal server recorded in a span of time, for the workflows of one type. */
export interface ServerWork {
  workflows: number;
  events: number;
  activities: number;
  workflowTasks: number;
}

/**
 * The history events every workflow recorded between `fromMs` and `toMs`, by workflow type
 * (protections beside the failovers included): what the Temporal server's CPU went to in a run.
 * Small workflows only: their histories are read 200 events a page.
 */
export async function serverWorkDuring(client: Client, fromMs: number, toMs: number): Promise<Record<string, ServerWork>> {
  const byType: Record<string, ServerWork> = {};
  for await (const execution of client.workflow.list()) {
    const started = execution.startTime.getTime();
    const closed = execution.closeTime?.getTime();
    if (started > toMs || (closed !== undefined && closed < fromMs)) continue;
    const work = (byType[execution.type] ??= { workflows: 0, events: 0, activities: 0, workflowTasks: 0 });
    work.workflows++;
    for (const event of await historyEvents(client, execution.workflowId, 200, execution.runId)) {
      const at = tsToMs(event.eventTime);
      if (at < fromMs || at > toMs) continue;
      work.events++;
      if (event.activityTaskScheduledEventAttributes) work.activities++;
      if (event.workflowTaskCompletedEventAttributes) work.workflowTasks++;
    }
  }
  return byType;
}

// --- CPU of every process, from /proc ---------------------------------------------------------

const TICKS_PER_SECOND = 100;

function procTable(): Map<number, { ppid: number; ticks: number }> {
  const table = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command: state(0) ppid(1) ... utime(11) stime(12)
      table.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** CPU ticks of the whole machine (all cores), from /proc/stat: processes (user, nice, system) and interrupts. */
function machineTicks(): { processes: number; interrupts: number } {
  const [, user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return { processes: user + nice + system, interrupts: irq + softirq };
}

/**
 * CPU seconds used so far by each named process tree, by this process alone ("bench (client)"),
 * and by everything else on the machine ("other processes": the machine is shared, so this says
 * how much of the two cores a run really had).
 */
export function cpuSnapshot(roots: Record<string, number>): Record<string, number> {
  const machine = machineTicks();
  const table = procTable();
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const tree = (pid: number): number => (table.get(pid)?.ticks ?? 0) + (children.get(pid) ?? []).reduce((sum, c) => sum + tree(c), 0);
  const result: Record<string, number> = {};
  for (const [name, pid] of Object.entries(roots)) result[name] = tree(pid) / TICKS_PER_SECOND;
  result['bench (client)'] = (table.get(process.pid)?.ticks ?? 0) / TICKS_PER_SECOND;
  result['other processes'] = (machine.processes - tree(process.pid)) / TICKS_PER_SECOND;
  result['interrupts (all)'] = machine.interrupts / TICKS_PER_SECOND;
  return result;
}

/** CPU seconds of this process's children that have exited and been waited for (a `spawnSync` child's whole life). */
export function exitedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: ... utime(11) stime(12) cutime(13) cstime(14)
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

export function cpuDuring(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round((after[k] - (before[k] ?? 0)) * 100) / 100]));
}

/**
 * Other sessions share this machine: before a timed run, wait (at most `maxMs`) until processes
 * that are not ours used under a quarter of a core for 3 s. Returns how long it waited.
 */
export async function waitForQuietMachine(maxMs = 30_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const before = cpuSnapshot({});
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const other = cpuSnapshot({})['other processes'] - before['other processes'];
    if (other / 3 < 0.25 || Date.now() - started >= maxMs) return Date.now() - started;
  }
}

// --- timing ---------------------------------------------------------------------------------------

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: Math.round(performance.now() - started), value };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}


export const round2 = (n: number) => Math.round(n * 100) / 100;
const NOT_OURS = new Set(['other processes', 'interrupts (all)']);
/** CPU seconds our own processes (servers, sites, workers, this one) used during a run. */
export const ourCpu = (cpu: Record<string, number>) => round2(Object.entries(cpu).reduce((sum, [name, s]) => sum + (NOT_OURS.has(name) ? 0 : s), 0));
/**
 * CPU seconds of the processes a run needs that are not the product's workers: the simulated sites
 * (`site <name>`, standing in for virtualization managers on hardware of their own), SeaweedFS and,
 * with `temporal`, the Temporal server.
 */
export const serversAndSitesCpu = (cpu: Record<string, number>, options: { temporal: boolean }) =>
  round2(Object.entries(cpu).reduce((sum, [name, s]) => (name.startsWith('site ') || name === 'seaweedfs' || (options.temporal && name === 'temporal') ? sum + s : sum), 0));


// --- summaries of interleaved runs ---------------------------------------------------------------

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Median, min and max of a figure over the runs, and the runs' own values. */
export const spread = (values: number[]) => ({ median: round2(median(values)), min: Math.min(...values), max: Math.max(...values), runs: values });

/** Median duration of each operation step over the runs, slowest first: which phase dominates. */
export function stepMedians(runs: Array<{ steps: Array<{ name: string; durationMs?: number }> }>): Array<{ name: string; medianMs: number; minMs: number; maxMs: number }> {
  const byName = new Map<string, number[]>();
  for (const run of runs) for (const step of run.steps) byName.set(step.name, [...(byName.get(step.name) ?? []), step.durationMs ?? 0]);
  return [...byName]
    .map(([name, values]) => ({ name, medianMs: median(values), minMs: Math.min(...values), maxMs: Math.max(...values) }))
    .sort((a, b) => b.medianMs - a.medianMs);
}
