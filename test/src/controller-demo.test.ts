// `hostfiles demo` as an operator pipes it: a reader that stops early must not leave agents running.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLI, cleanEnv } from './support/cli.js';

/** Processes whose command line names `dir`: the demo's agents run with configs under its temp directory. */
function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) found.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** `hostfiles demo` started with its temp directory below a fresh one; calls `onOutput` with all its stdout so far. */
function startDemo(
  t: TestContext,
  prefix: string,
  onOutput: (stdout: string, child: ChildProcessWithoutNullStreams) => void,
): { dir: string; stderr: () => string; closed: Promise<number | null> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    for (const pid of processesUnder(dir)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const child = spawn(process.execPath, [CLI, 'demo'], { env: { ...cleanEnv(), TMPDIR: dir } });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onOutput(stdout, child);
  });
  // 'close' waits for every holder of the stderr pipe: an agent left running (they inherit it) never lets it come,
  // and the test fails on its timeout.
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  return { dir, stderr: () => stderr, closed };
}

test(
  '`hostfiles demo | head -2`: the reader leaving ends no agent-leaking crash; the demo cleans up and exits 0',
  { timeout: 120_000 },
  async (t) => {
    // Like `head -2`: read until the agents run, then close the pipe while the demo still writes.
    let agentsSeen = 0;
    const { dir, stderr, closed } = startDemo(t, 'hostfiles-demo-pipe-', (stdout, child) => {
      if (!stdout.includes('host host-a added')) return;
      agentsSeen = processesUnder(dir).length;
      child.stdout.destroy();
    });
    const status = await closed;
    assert.equal(stderr(), '', 'nothing on stderr (no EPIPE trace)');
    assert.equal(status, 0);
    assert.ok(agentsSeen > 0, 'the demo had agents running when the reader left');
    assert.deepEqual(processesUnder(dir), [], 'no agent left running');
    assert.deepEqual(readdirSync(dir), [], 'the demo removed its temporary directory');
  },
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(
    `\`hostfiles demo\` stopped by ${signal} while its agents run: they are stopped and its directory removed; exit 1, saying so`,
    { timeout: 120_000 },
    async (t) => {
      let agentsSeen = 0;
      const { dir, stderr, closed } = startDemo(t, 'hostfiles-demo-signal-', (stdout, child) => {
        if (agentsSeen > 0 || !stdout.includes('host host-a added')) return;
        agentsSeen = processesUnder(dir).length;
        child.kill(signal);
      });
      const status = await closed;
      assert.ok(agentsSeen > 0, 'the demo had agents running when the signal came');
      assert.equal(status, 1);
      assert.match(stderr(), new RegExp(`the demo was stopped \\(${signal}\\): its agents are stopped`));
      assert.deepEqual(processesUnder(dir), [], 'no agent left running');
      assert.deepEqual(readdirSync(dir), [], 'the demo removed its temporary directory, the agents’ keys with it');
    },
  );
}
