/**
 * Crashes at random moments, for the durability tests: a loop that keeps killing (and bringing
 * back) processes while the operations under test run, and the ways it picks what to kill.
 */

import { ApplicationFailure, WorkflowFailedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { OPERATION_ABORTED, type OperationReport } from '../../workflows/operation-messages';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How many runs a crash test makes: `full` under `npm run chaos` (DR_CHAOS=1, whose results are
 * committed in bench/results/chaos.json), a third of it in `npm test`, so that CI stays within its
 * time (the crash tests were a fifth of its CPU at half); the drill test, whose runs are short,
 * keeps half. What the tests check of the kills holds at either size: a failback is killed at
 * points of its own history, every other failback is by full rehydration, and the continuous
 * failback test tops up its kills until every worker died twice.
 */
export function crashRuns(full: number): number {
  return atChaosSize(full, Math.ceil(full / 3));
}

/** `full` under `npm run chaos` (DR_CHAOS=1), else `small`: a fault test's size in npm test. */
export function atChaosSize<T>(full: T, small: T): T {
  return process.env.DR_CHAOS === '1' ? full : small;
}

/** Picks the next victim, knowing what was killed so far. */
export type VictimPicker = (killed: readonly string[]) => string;

/** Any of `victims`, at random each time. */
export function atRandom(victims: readonly string[]): VictimPicker {
  return () => victims[Math.floor(Math.random() * victims.length)];
}

/** Each of `victims` once per round, in a random order each round: every one is killed as often as the others (give or take one). */
export function inRandomRounds(victims: readonly string[]): VictimPicker {
  let round: string[] = [];
  return () => {
    if (round.length === 0) {
      round = [...victims];
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [round[i], round[j]] = [round[j], round[i]];
      }
    }
    return round.shift()!;
  };
}

/**
 * Kills due at `perRun` random points of each workflow's history: when one of them, still running,
 * has reached an event count drawn from 1..`within` (less than any of their complete histories).
 * So every operation is killed at random moments of its own course, however fast the machine runs
 * it; the counts come from the server, so a dead worker does not blind it. With `orAfter`, a
 * kill is also due after a random pause drawn between `ms` (up to `times` such kills): long steps
 * are hit more often than short ones, and a run that kills made slow is not kept from ending.
 */
export function atRandomHistoryPoints(
  client: Client,
  workflowIds: readonly string[],
  options: { perRun: number; within: number; orAfter?: { ms: [number, number]; times: number }; pollMs?: number },
): NonNullable<CrashLoop['due']> {
  const { perRun, within, orAfter, pollMs = 500 } = options;
  const points = workflowIds.map(() => Array.from({ length: perRun }, () => 1 + Math.floor(Math.random() * within)).sort((a, b) => a - b));
  let timed = 0;
  return async (stopped) => {
    const deadline = orAfter && timed < orAfter.times ? Date.now() + orAfter.ms[0] + Math.random() * (orAfter.ms[1] - orAfter.ms[0]) : Infinity;
    for (;;) {
      if (stopped()) return;
      if (Date.now() >= deadline) {
        timed++;
        return;
      }
      await sleep(pollMs);
      let due = false;
      await Promise.all(
        workflowIds.map(async (id, i) => {
          if (points[i].length === 0) return;
          // Not started yet: nothing is due for it.
          const described = await client.workflow.getHandle(id).describe().catch(() => undefined);
          if (!described) return;
          if (described.status.name !== 'RUNNING') points[i] = [];
          // One point per kill: points passed together (during the last restart) make kills of their own.
          if (points[i].length > 0 && described.historyLength >= points[i][0]) {
            points[i].shift();
            due = true;
          }
        }),
      );
      if (due) return;
    }
  };
}

export interface CrashLoop {
  /** Kills one victim and brings it back (e.g. `workers.crashAndRestart`); the loop waits for it. */
  crash: (victim: string) => Promise<void>;
  pick: VictimPicker;
  /** The pause before each kill, drawn between these (ms): by default 1.5–4 s. */
  pauseMs?: [number, number];
  /** Resolves when the next kill is due, instead of the pause (e.g. `atRandomHistoryPoints`), or once `stopped()`. */
  due?: (stopped: () => boolean) => Promise<void>;
  /** Told of each kill as it starts. */
  onCrash?: (victim: string, at: number) => void;
  /**
   * No more kills after this many: on a loaded machine endless kills can outpace the operations'
   * progress, and they would never end. Default: no limit.
   */
  maxKills?: number;
}

/**
 * Until `until` settles (either way), waits until a kill is due (a random pause, or `due`) and
 * crashes the victim `pick` names, again and again; stops as soon as `until` settles, also while
 * waiting, or after `maxKills`. Returns what it crashed, in order.
 */
export async function crashUntil(until: Promise<unknown>, { crash, pick, pauseMs = [1_500, 4_000], due, onCrash, maxKills = Infinity }: CrashLoop): Promise<string[]> {
  let settled = false;
  const over = until.then(
    () => void (settled = true),
    () => void (settled = true),
  );
  const killed: string[] = [];
  while (!settled && killed.length < maxKills) {
    await Promise.race([over, due ? due(() => settled) : sleep(pauseMs[0] + Math.random() * (pauseMs[1] - pauseMs[0]))]);
    if (settled) break;
    const victim = pick(killed);
    killed.push(victim);
    onCrash?.(victim, Date.now());
    await crash(victim);
  }
  return killed;
}

/** The runs that failed, as `<name>: <why>` (a failed workflow's cause rather than the wrapper's message; for an aborted operation, the step that failed). */
export function failedRuns(results: ReadonlyArray<PromiseSettledResult<unknown>>, names: readonly string[]): string[] {
  return results.flatMap((r, i) => (r.status === 'rejected' ? [`${names[i]}: ${whyFailed(r.reason)}`] : []));
}

function whyFailed(error: unknown): string {
  if (!(error instanceof WorkflowFailedError)) return String(error);
  const cause = error.cause;
  const report = cause instanceof ApplicationFailure && cause.type === OPERATION_ABORTED ? (cause.details?.[0] as OperationReport | undefined) : undefined;
  const failedStep = report?.steps.find((step) => step.state === 'failed');
  return `${String(cause?.message)}${failedStep ? ` [failed step: ${failedStep.name}: ${failedStep.detail ?? ''}]` : ''}`;
}

/** Whether each workflow has continued as new: a run other than its first is its current one. */
export async function allContinuedAsNew(handles: readonly WorkflowHandleWithFirstExecutionRunId[]): Promise<boolean> {
  const described = await Promise.all(handles.map((handle) => handle.describe()));
  return described.every((d, i) => d.runId !== handles[i].firstExecutionRunId);
}

