/**
 * `npm start` asked to stop while it is still starting (Ctrl-C, or a script that took a progress
 * line for readiness): it stops everything and says so, instead of blaming the worker it had just
 * stopped itself; and no progress line before the final one says "healthy" or "ready".
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../common/config';
import { startChild, TYPESCRIPT_LOADER, type ChildHandle } from '../../common/child-process';
import { freePort, freePortWithGrpcCompanion } from '../../stack/ports';
import { portsBesideS3 } from '../../stack/seaweedfs';
import { prepareTestSites } from '../harness/sites';

/** Processes whose command line mentions this test's folder: the servers, sites and workers it started. */
function processesUsing(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(dir) && !line.includes('ps -eo'));
}

async function outputUntil(child: ChildHandle, until: RegExp): Promise<string> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const text = existsSync(child.logFile) ? readFileSync(child.logFile, 'utf8') : '';
    if (until.test(text) || child.hasExited() || Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('npm start interrupted during start-up', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-launcher-interrupted-'));
  let launcher: ChildHandle | undefined;
  after(async () => {
    if (launcher && !launcher.hasExited()) process.kill(launcher.pid, 'SIGINT');
    await launcher?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops every component and reports the interruption, not a failed worker', async () => {
    const { sitesFile } = await prepareTestSites(dir);
    launcher = startChild({
      name: 'launcher',
      command: process.execPath,
      args: [...TYPESCRIPT_LOADER, path.join(PROJECT_ROOT, 'stack/start.ts')],
      logFile: path.join(dir, 'launcher.out'),
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        DR_DATA_DIR: path.join(dir, 'data'),
        DR_LOG_DIR: path.join(dir, 'logs'),
        DR_SITES_FILE: sitesFile,
        DR_TEMPORAL_PORT: String(await freePort()),
        DR_TEMPORAL_UI_PORT: String(await freePort()),
        DR_S3_PORT: String(await freePortWithGrpcCompanion(Object.keys(portsBesideS3(0)).length)),
        DR_API_PORT: String(await freePort()),
      },
    });
    const before = await outputUntil(launcher, /starting workers/);
    assert.match(before, /starting workers/, before);

    // The workers are starting now (they take seconds to poll): Ctrl-C.
    process.kill(launcher.pid, 'SIGINT');
    assert.equal(await launcher.exited, 0);
    const out = readFileSync(launcher.logFile, 'utf8');
    assert.match(out, /SIGINT during start-up/, out);
    assert.match(out, /stopped/, out);
    assert.doesNotMatch(out, /start-up failed|exited during start-up/, out);
    assert.deepEqual(processesUsing(dir), [], 'no server, site or worker outlives the interrupted launcher');
    assert.doesNotMatch(before, /healthy|ready/i, 'a progress line says "healthy" or "ready" before the stack is: a script waiting for readiness would stop it mid-start');
  });
});
