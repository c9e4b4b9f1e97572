/**
 * Crashes at random moments, for the durability tests: a loop that keeps killing (and bringing
 * back) processes while the operations under test run, and the ways it picks what to kill.
 */

import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { OPERATION_ABORTED, type OperationReport } from '../../workflows/operation-messages';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

export interface CrashLoop {
  /** Kills one victim and brings it back (e.g. `workers.crashAndRestart`); the loop waits for it. */
  crash: (victim: string) => Promise<void>;
  pick: VictimPicker;
  /** The pause before each kill, drawn between these (ms): by default 1.5–4 s. */
  pauseMs?: [number, number];
  /** Told of each kill as it starts. */
  onCrash?: (victim: string, at: number) => void;
}

/**
 * Until `until` settles (either way), pauses a random while and crashes the victim `pick` names,
 * again and again; stops as soon as `until` settles, also during a pause. Returns what it
 * crashed, in order.
 */
export async function crashUntil(until: Promise<unknown>, { crash, pick, pauseMs = [1_500, 4_000], onCrash }: CrashLoop): Promise<string[]> {
  let settled = false;
  const over = until.then(
    () => void (settled = true),
    () => void (settled = true),
  );
  const killed: string[] = [];
  while (!settled) {
    await Promise.race([over, sleep(pauseMs[0] + Math.random() * (pauseMs[1] - pauseMs[0]))]);
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
