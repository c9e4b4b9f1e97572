/**
 * Supervised children keep their last words: a component that prints why it stops and exits at
 * once must leave that line in its log file, because that log is what an operator is sent to read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { startChild, waitUntilReady } from '../../common/child-process';

describe('child-process supervision: logs', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dr-child-log-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const exitAtOnce = (name: string, script: string) =>
    startChild({ name, command: process.execPath, args: ['-e', script], logFile: path.join(dir, `${name}.log`) });

  it('has the line a child printed as it exited in its log file', async () => {
    const child = exitAtOnce('prints-and-exits', `console.log('ready to stop'); console.error('stopping: nothing to do'); process.exit(3)`);
    assert.equal(await child.exited, 3);
    const log = readFileSync(child.logFile, 'utf8');
    assert.match(log, /^ready to stop$/m);
    assert.match(log, /^stopping: nothing to do$/m);
  });

  it('keeps output that is still in the pipes when the child is gone', async () => {
    // The child exits at once; what it wrote is still on its way through the pipes (here because
    // a helper it started holds them and writes the last line only after the child is gone, which
    // makes the moment certain instead of a race). The log must end when the pipes close.
    const go = path.join(dir, 'go');
    const helper = `const fs = require('fs'); const wait = () => (fs.existsSync(${JSON.stringify(go)}) ? console.log('last words') : setTimeout(wait, 20)); wait();`;
    const child = exitAtOnce(
      'output-after-exit',
      `require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(helper)}], { stdio: ['ignore', 'inherit', 'inherit'] }).unref(); console.log('first words'); process.exit(0);`,
    );
    while (!child.hasExited()) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(go, '');
    assert.equal(await child.exited, 0);
    const log = readFileSync(child.logFile, 'utf8');
    assert.match(log, /^first words$/m);
    assert.match(log, /^last words$/m, `the log is ${JSON.stringify(log)}`);
  });

  it('names the log and quotes its last lines when a child exits during start-up', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    const child = exitAtOnce('early-exit', `console.error(${JSON.stringify(lines.join('\n'))}); console.error('Error: listen EADDRINUSE: address already in use 127.0.0.1:9101'); process.exit(1)`);
    const failure = await waitUntilReady(child, () => Promise.reject(new Error('not ready'))).then(
      () => assert.fail('a child that exits is never ready'),
      (error: Error) => error,
    );
    assert.match(failure.message, /early-exit exited during start-up \(code 1\)/);
    assert.ok(failure.message.includes(child.logFile), failure.message);
    assert.match(failure.message, /EADDRINUSE: address already in use 127\.0\.0\.1:9101/);
    assert.match(failure.message, /line 30/);
    assert.doesNotMatch(failure.message, /line 1\n/, 'only the last lines, not the whole log');
  });

  it('stops a child that is not ready in time, and quotes its log', async () => {
    const child = exitAtOnce('never-ready', `console.error('waiting for a port that never frees'); setInterval(() => undefined, 1000)`);
    const failure = await waitUntilReady(child, () => Promise.reject(new Error('connection refused')), 1_500).then(
      () => assert.fail('the probe never succeeds'),
      (error: Error) => error,
    );
    assert.match(failure.message, /never-ready not ready after 1\.5 s \(connection refused\), stopped/);
    assert.match(failure.message, /waiting for a port that never frees/);
    assert.ok(child.hasExited(), 'a child that was never ready must not be left running');
  });
});
