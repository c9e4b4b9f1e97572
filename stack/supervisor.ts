/**
 * Keeps the embedded stack's components running: a component that dies is announced at once
 * (its name, how it ended, the last lines of its log) and started again after a backoff, a
 * bounded number of times; past that the stack gives up instead of running on without it.
 */
import { logTail, type ChildHandle } from '../common/child-process';

export interface SupervisionPolicy {
  /** Restarts allowed within `windowMs`; one more death within it and the stack gives up. */
  maxRestarts: number;
  windowMs: number;
  /** The first restart's delay, doubled after each death that came quickly, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** A component that ran this long before dying starts again with the first backoff. */
  healthyAfterMs: number;
}

export const DEFAULT_SUPERVISION: SupervisionPolicy = { maxRestarts: 5, windowMs: 10 * 60_000, backoffMs: 1_000, maxBackoffMs: 30_000, healthyAfterMs: 60_000 };

export interface SupervisorOptions {
  say: (message: string) => void;
  /** True once the stack is being stopped: deaths are then expected. */
  stopping: () => boolean;
  /** Called when a component died more often than the policy allows. */
  giveUp: (component: string) => void;
  policy?: SupervisionPolicy;
}

/** Watches `first` and every restarted process after it, for as long as the stack runs. */
export function supervise(first: ChildHandle, restart: () => Promise<ChildHandle>, { say, stopping, giveUp, policy = DEFAULT_SUPERVISION }: SupervisorOptions): void {
  const name = first.name;
  const deaths: number[] = [];
  let backoff = policy.backoffMs;
  const watch = async (child: ChildHandle, since: number): Promise<void> => {
    const code = await child.exited;
    if (stopping()) return;
    const how = code !== null ? `with code ${code}` : `by ${child.exitSignal() ?? 'a signal'}`;
    say(`${name} died ${how}; see ${child.logFile}${logTail(child.logFile, 10)}`);
    await restartAfterDeath(Date.now() - since);
  };
  const restartAfterDeath = async (livedMs: number): Promise<void> => {
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && deaths[0] < now - policy.windowMs) deaths.shift();
    if (deaths.length > policy.maxRestarts) {
      say(`${name} died ${deaths.length} times within ${policy.windowMs / 60_000} min: giving up`);
      giveUp(name);
      return;
    }
    backoff = livedMs >= policy.healthyAfterMs ? policy.backoffMs : backoff;
    say(`restarting ${name} in ${backoff / 1000} s (restart ${deaths.length} of at most ${policy.maxRestarts} within ${policy.windowMs / 60_000} min)`);
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, policy.maxBackoffMs);
    if (stopping()) return;
    const started = Date.now();
    try {
      const child = await restart();
      say(`${name} restarted (pid ${child.pid})`);
      void watch(child, started);
    } catch (error) {
      say(`${name} did not start again: ${(error as Error).message}`);
      await restartAfterDeath(Date.now() - started);
    }
  };
  void watch(first, Date.now());
}
