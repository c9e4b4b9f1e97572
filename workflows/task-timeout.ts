/**
 * The workflow task timeout of an operation over a domain of `vms` VMs (its runbook's). A worker
 * that takes an operation over (after a crash, or with the workflow out of its cache) replays the
 * whole history within one workflow task; a task that outlasts its timeout is taken away and
 * given again, to be replayed from the start again: an operation whose replay outgrew the timeout
 * would never move again. A 10,000-VM drill replays in 2.2 s on stub sites and took 9.4 s in a real
 * one with the machine loaded (bench/results/README.md, "Replaying a large operation"), against
 * Temporal's default of 10 s. The timeout is also how long a successor waits for a task the
 * crashed worker held, so small domains keep the default: 10 s up to 2,500 VMs, 4 ms per VM over
 * that (40 s at 10,000), at most the server's limit of 120 s.
 */
export function operationTaskTimeoutMs(vms: number): number {
  return Math.min(MAX_TASK_TIMEOUT_MS, Math.max(DEFAULT_TASK_TIMEOUT_MS, vms * TASK_TIMEOUT_MS_PER_VM));
}

const DEFAULT_TASK_TIMEOUT_MS = 10_000;
const TASK_TIMEOUT_MS_PER_VM = 4;
const MAX_TASK_TIMEOUT_MS = 120_000;
