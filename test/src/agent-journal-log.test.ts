// The agent's log lines as journald reads them: a real agent process whose stdout is the stream systemd's
// JOURNAL_STREAM names prefixes each line with its syslog priority; anywhere else it writes bare JSON. Times are ISO.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AGENT_BIN, removeSetup, setupAgent, type AgentSetup } from './support/agent-process.js';
import { post } from './support/commands.js';
import { eventually } from './support/raw-http.js';

const PLAIN = { listen: { host: '127.0.0.1', port: 0, tls: false } };
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** `<N>` then the JSON object: journald's SyslogLevelPrefix form */
const PREFIXED = /^<(\d)>(\{.*\})$/;

interface Line {
  readonly prefix: string | undefined;
  readonly json: Record<string, unknown>;
}

/**
 * Starts the agent with its stdout on a file of the test's (as systemd hands it a socket to the journal), the
 * environment's JOURNAL_STREAM made by `journalStream` from that file's device and inode; resolves once it listens.
 */
async function startLogging(
  t: TestContext,
  setup: AgentSetup,
  journalStream: (stat: { dev: bigint; ino: bigint }) => string | undefined,
): Promise<{ url: string; lines: () => Line[] }> {
  const logPath = join(setup.dir, 'stdout.log');
  const fd = openSync(logPath, 'w');
  const value = journalStream(fstatSync(fd, { bigint: true }));
  const env = { ...process.env };
  delete env['JOURNAL_STREAM'];
  if (value !== undefined) env['JOURNAL_STREAM'] = value;
  const child = spawn(process.execPath, [AGENT_BIN, '--config', setup.configPath], {
    stdio: ['ignore', fd, 'pipe'],
    env,
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  t.after(async () => {
    child.kill('SIGTERM');
    await exited;
    removeSetup(setup);
  });
  const lines = (): Line[] =>
    readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((text) => text !== '')
      .map((text) => {
        const match = PREFIXED.exec(text);
        return { prefix: match?.[1], json: JSON.parse(match?.[2] ?? text) as Record<string, unknown> };
      });
  const listening = (): Line | undefined => lines().find((line) => line.json['event'] === 'listening');
  await eventually(() => listening() !== undefined, 'the agent logged listening', 20_000);
  return { url: `http://127.0.0.1:${String(listening()?.json['port'])}`, lines };
}

/** A body no agent takes: refused (400) and logged `refused` at warn. */
async function refusedRequest(url: string): Promise<void> {
  const reply = await post(url, '/v1/files/apply', '{}');
  assert.equal(reply.status, 400);
}

const byEvent = (lines: readonly Line[], event: string): Line | undefined =>
  lines.find((line) => line.json['event'] === event);

test('stdout on the journal (JOURNAL_STREAM names it): every line is <N>{json}, its N the level, its time ISO', async (t) => {
  const agent = await startLogging(t, setupAgent({ config: PLAIN }), (stat) => `${stat.dev}:${stat.ino}`);
  await refusedRequest(agent.url);
  await eventually(() => byEvent(agent.lines(), 'refused') !== undefined, 'the refusal logged');

  const lines = agent.lines();
  assert.deepEqual(
    [byEvent(lines, 'listening')?.prefix, byEvent(lines, 'refused')?.prefix],
    ['6', '4'],
    'listening is info (<6>), a refusal warn (<4>)',
  );
  const priority: Record<string, string> = { error: '3', warn: '4', info: '6', debug: '7' };
  for (const line of lines) {
    assert.equal(line.prefix, priority[String(line.json['level'])], `the prefix of ${JSON.stringify(line.json)}`);
    assert.match(String(line.json['time']), ISO_TIME);
  }
});

test('stdout elsewhere: bare JSON lines with ISO times, also when JOURNAL_STREAM names another stream', async (t) => {
  // Inherited from a unit whose journal stream is not this file (stdout redirected): no prefix.
  const agent = await startLogging(t, setupAgent({ config: PLAIN }), (stat) => `${stat.dev}:${stat.ino + 1n}`);
  const bare = await startLogging(t, setupAgent({ config: PLAIN }), () => undefined);
  await refusedRequest(agent.url);
  await eventually(() => byEvent(agent.lines(), 'refused') !== undefined, 'the refusal logged');

  for (const lines of [agent.lines(), bare.lines()]) {
    assert.ok(byEvent(lines, 'listening') !== undefined);
    for (const line of lines) {
      assert.equal(line.prefix, undefined, `no prefix: ${JSON.stringify(line.json)}`);
      assert.match(String(line.json['time']), ISO_TIME);
      const time = Date.parse(String(line.json['time']));
      assert.ok(Math.abs(Date.now() - time) < 60_000, 'the time is now, not another clock or unit');
    }
  }
  assert.equal(byEvent(agent.lines(), 'refused')?.json['level'], 'warn');
});
