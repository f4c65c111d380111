// stopChild against real child processes: one that exits on SIGTERM, one that ignores it, one already gone.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { stopChild } from './stop-child.js';

/** A node child running `code`, resolved once it has printed "ready" (its signal handlers are in place by then). */
async function child(code: string): Promise<ChildProcess> {
  const started = spawn(process.execPath, ['-e', `${code}; console.log('ready'); setInterval(() => {}, 1000)`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(started.stdout, 'data')) as [Buffer];
  assert.equal(chunk.toString().trim(), 'ready');
  return started;
}

describe('stopChild', () => {
  it('stops a child with SIGTERM when it exits on it', async () => {
    const running = await child('');
    await stopChild(running, 60_000);
    assert.equal(running.signalCode, 'SIGTERM');
  });

  it('kills a child that ignores SIGTERM once the grace period is over', async () => {
    const stubborn = await child("process.on('SIGTERM', () => {})");
    await stopChild(stubborn, 200);
    assert.equal(stubborn.signalCode, 'SIGKILL');
  });

  it('settles at once for a child that has exited', async () => {
    const done = spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: 'ignore' });
    await once(done, 'exit');
    await stopChild(done);
    assert.equal(done.exitCode, 3);
  });
});
