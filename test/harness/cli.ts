import { spawn } from 'node:child_process';
import path from 'node:path';
import { TYPESCRIPT_LOADER } from '../../common/child-process';

const CLI = path.join(__dirname, '..', '..', 'cli', 'dr.ts');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `npm run dr -- ...` against the API at `url` with `token`, as a script would: output piped, not a terminal. */
export function runCli({ url, token }: { url: string; token: string }, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TYPESCRIPT_LOADER, CLI, ...args], { env: { ...process.env, DR_API_URL: url, DR_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
