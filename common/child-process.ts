import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import path from 'node:path';

/**
 * How every product process runs its TypeScript: tsx's CommonJS hook alone (the project is
 * CommonJS). `--import tsx` also registers its ES-module hooks, which answer every require on a
 * loader thread: 0.3-0.4 CPU s more per process start (a site worker's imports: 1.4-1.55 against
 * 1.02-1.16 CPU s), paid by every worker, API and CLI process and every test file. By its path,
 * as node resolves a bare `--require` from the working folder, which may be outside the project.
 */
export const TYPESCRIPT_LOADER = ['--require', require.resolve('tsx/cjs')];

export interface ChildOptions {
  /** Component name for messages, e.g. "temporal" or "site primary". */
  name: string;
  command: string;
  args: string[];
  /** stdout and stderr are appended here; the folder is created. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or null when killed by a signal) once the process is gone and its output is in the log file. */
  readonly exited: Promise<number | null>;
  /** True as soon as the process is gone (its last output may still be on the way to the log). */
  hasExited(): boolean;
  /** The signal that ended the process, if one did. */
  exitSignal(): NodeJS.Signals | null;
  /** Polite stop: SIGTERM, then SIGKILL after the grace period. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Abrupt death, as in a crash or power loss: SIGKILL and wait. */
  kill(): Promise<void>;
}

/**
 * Starts a supervised child whose output goes to its own log file. Every child registers with
 * the process-wide registry below, so a launcher or test that exits (normally, on Ctrl-C or on
 * an uncaught error) takes its children with it and leaves no stray server running.
 */
export function startChild(options: ChildOptions): ChildHandle {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const [command, args] = dyingWithParent(options.command, options.args);
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${options.command}`);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });

  let exitedFlag = false;
  let exitSignal: NodeJS.Signals | null = null;
  const exited = new Promise<number | null>((resolve) => {
    // The log ends on 'close', when the child's stdout and stderr have drained, not on 'exit':
    // its last words (why it stopped) are often still in the pipes when the process is gone.
    let logEnding = false;
    const endLog = (code: number | null) => {
      if (logEnding) return;
      logEnding = true;
      // 'close' follows both a flushed end and a failed log stream, so the exit is never lost.
      if (log.destroyed) return resolve(code);
      log.once('close', () => resolve(code));
      log.end();
    };
    child.once('error', () => {
      exitedFlag = true;
      liveChildren.delete(handle);
      endLog(null);
    });
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      exitSignal = signal;
      liveChildren.delete(handle);
      // A grandchild that inherited the pipes could hold them open after the child is gone.
      const drained = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        endLog(code);
      }, PIPE_DRAIN_LIMIT_MS);
      child.once('close', () => {
        clearTimeout(drained);
        endLog(code);
      });
    });
  });

  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number): Promise<boolean> => {
    if (exitedFlag) return true;
    child.kill(signal);
    const timedOut = Symbol('timeout');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      exited,
      new Promise<symbol>((r) => {
        timer = setTimeout(() => r(timedOut), graceMs);
      }),
    ]);
    clearTimeout(timer);
    return result !== timedOut;
  };

  const handle: ChildHandle = {
    name: options.name,
    pid: child.pid,
    logFile: options.logFile,
    exited,
    hasExited: () => exitedFlag,
    exitSignal: () => exitSignal,
    stop: async (graceMs = 10_000) => {
      if (!(await signalAndWait('SIGTERM', graceMs))) await signalAndWait('SIGKILL', 5_000);
    },
    kill: async () => {
      await signalAndWait('SIGKILL', 5_000);
    },
  };
  liveChildren.add(handle);
  return handle;
}

const liveChildren = new Set<ChildHandle>();

/** How long a gone child's pipes may stay open (held by a grandchild) before its log is ended anyway. */
const PIPE_DRAIN_LIMIT_MS = 5_000;

const SETPRIV = '/usr/bin/setpriv';

/**
 * Where util-linux's setpriv exists (any Linux), the kernel sends the child SIGTERM when this
 * process dies, even by SIGKILL: a crashed launcher or test leaves no server behind. Elsewhere
 * the child is started directly and `stopWhenOrphaned` covers our own node processes.
 */
function dyingWithParent(command: string, args: string[]): [string, string[]] {
  return existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'SIGTERM', '--', command, ...args]] : [command, args];
}

/** Stops every child still running, newest first (clients before the servers they use). */
export async function stopAllChildren(graceMs?: number): Promise<void> {
  const children = [...liveChildren].reverse();
  for (const c of children) await c.stop(graceMs);
}

// A last resort when this process exits without stopping its children: SIGTERM (not SIGKILL),
// so that a child which supervises children of its own (a launcher) can still stop them.
process.once('exit', () => {
  for (const c of liveChildren) {
    try {
      process.kill(c.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
});

/**
 * For our own long-running node processes (launcher, workers, API, sites): if the parent dies
 * without stopping us (SIGKILL, crash), we are re-parented; then stop as if asked to, so that no
 * orphan keeps ports and data folders busy.
 */
export function stopWhenOrphaned(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1_000).unref();
}

/** Polls until `probe` resolves or the child dies or time runs out (then it is stopped); errors name the component and quote its log. */
export async function waitUntilReady(child: ChildHandle, probe: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      const code = await child.exited;
      const how = code !== null ? `code ${code}` : `signal ${child.exitSignal() ?? 'unknown'}`;
      throw new Error(`${child.name} exited during start-up (${how}); see ${child.logFile}${logTail(child.logFile)}`);
    }
    try {
      await probe();
      return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  // A child that never became ready is never handed out: stop it, or it would hold its ports and
  // keep the caller's process alive.
  await child.stop(5_000);
  throw new Error(`${child.name} not ready after ${timeoutMs / 1000} s (${(lastError as Error)?.message ?? 'no answer'}), stopped; see ${child.logFile}${logTail(child.logFile)}`);
}

/** The last lines of a log, indented, for an error message: what an operator needs to see first. */
export function logTail(logFile: string, lines = 20, maxBytes = 4096): string {
  let text: string;
  try {
    const fd = openSync(logFile, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      text = buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
  const tail = text.split('\n').filter((l) => l.trim() !== '').slice(-lines);
  return tail.length === 0 ? ' (the log is empty)' : `; its last lines:\n${tail.map((l) => `    ${l}`).join('\n')}`;
}
