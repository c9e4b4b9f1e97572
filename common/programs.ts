import path from 'node:path';
import { TYPESCRIPT_LOADER } from './child-process';
import { PROJECT_ROOT } from './config';

/** The product's long-running programs, which launchers (`npm start`, the tests) start as processes. */
export const PROGRAMS = {
  worker: 'worker/main.ts',
  site: 'sites/simulated/main.ts',
  api: 'api/server.ts',
} as const;

export type Program = keyof typeof PROGRAMS;

/**
 * Names a folder of compiled programs (stack/compile-programs.ts) in a launcher's environment;
 * unset or empty, programs run from their TypeScript source through tsx.
 */
export const COMPILED_PROGRAMS_VARIABLE = 'DR_COMPILED_PROGRAMS';

/**
 * node's arguments (before the program's own) that run `program` in a process with environment
 * `env`: its compiled file when `env` names a folder of them, else its source.
 */
export function programArgs(program: Program, env: NodeJS.ProcessEnv = process.env): string[] {
  const compiled = env[COMPILED_PROGRAMS_VARIABLE];
  return compiled ? [path.join(compiled, `${program}.js`)] : [...TYPESCRIPT_LOADER, path.join(PROJECT_ROOT, PROGRAMS[program])];
}
