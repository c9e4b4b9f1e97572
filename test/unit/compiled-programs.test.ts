/**
 * The compiled programs (stack/compile-programs.ts) behave as their source: the same answers to
 * bad arguments, and files found from their source folder (sites.json) wherever the compiled file is.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMPILED_PROGRAMS_VARIABLE, programArgs, type Program } from '../../common/programs';
import { compilePrograms } from '../../stack/compile-programs';

describe('compiled programs', () => {
  const folder = mkdtempSync(path.join(tmpdir(), 'dr-compiled-'));
  before(() => compilePrograms(folder));
  after(() => rmSync(folder, { recursive: true, force: true }));

  /** Runs `program` compiled and from source with the same arguments, from a folder outside the project. */
  function both(program: Program, args: string[]) {
    return [folder, ''].map((compiled) => {
      const env = { ...process.env, DR_SITE_TOKEN: 'unused', [COMPILED_PROGRAMS_VARIABLE]: compiled };
      const run = spawnSync(process.execPath, [...programArgs(program, env), ...args], { cwd: tmpdir(), env, encoding: 'utf8' });
      return { status: run.status, stderr: run.stderr.trim() };
    });
  }

  it('runs the compiled file when the environment names the folder, the source when it is empty', () => {
    assert.deepEqual(programArgs('worker', { [COMPILED_PROGRAMS_VARIABLE]: folder }), [path.join(folder, 'worker.js')]);
    assert.match(programArgs('worker', { [COMPILED_PROGRAMS_VARIABLE]: '' }).at(-1)!, /worker\/main\.ts$/);
  });

  it('a worker with bad arguments: the same usage message and exit code', () => {
    const [compiled, source] = both('worker', ['--orchestration', '--site', 'primary']);
    assert.equal(compiled.status, 1);
    assert.match(compiled.stderr, /usage: worker\/main\.ts/);
    assert.deepEqual(compiled, source);
  });

  it('a site reads the sites file beside its source: an unknown site is named, not a missing file', () => {
    const data = mkdtempSync(path.join(tmpdir(), 'dr-compiled-site-'));
    try {
      const [compiled, source] = both('site', ['--site', 'nosuch', '--data', data]);
      assert.equal(compiled.status, 1);
      assert.equal(compiled.stderr, 'site "nosuch" is not defined');
      assert.deepEqual(compiled, source);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
