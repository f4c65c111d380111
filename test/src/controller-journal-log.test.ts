// `hostfiles serve`'s log as journald reads it: with stdout the stream JOURNAL_STREAM names, every line starts with
// its level's syslog priority; the JSON after it has an ISO time. (The agent's: agent-journal-log.test.ts.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanEnv, CLI, hostfiles } from './support/cli.js';
import { eventually } from './support/raw-http.js';

const TOKEN = 'journal-test-token-0123456789';
const PREFIXED = /^<(\d)>(\{.*\})$/;

test('serve with stdout on the journal: <6> for listening and requests, <4> for a failed call, ISO times', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-journal-'));
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const logPath = join(dir, 'stdout.log');
  const fd = openSync(logPath, 'w');
  const { dev, ino } = fstatSync(fd, { bigint: true });
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--db', db, '--token-file', tokenFile, '--listen', '127.0.0.1:0'],
    { env: { ...cleanEnv(), JOURNAL_STREAM: `${dev}:${ino}` }, stdio: ['ignore', fd, 'pipe'] },
  );
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
  });
  t.after(async () => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const lines = (): { priority: string | undefined; json: Record<string, unknown> }[] =>
    readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((text) => text !== '')
      .map((text) => {
        const match = PREFIXED.exec(text);
        return { priority: match?.[1], json: JSON.parse(match?.[2] ?? text) as Record<string, unknown> };
      });
  const find = (event: string): { priority: string | undefined; json: Record<string, unknown> } | undefined =>
    lines().find((line) => line.json['event'] === event);
  await eventually(() => find('listening') !== undefined, 'serve logged listening', 20_000);

  const url = `http://127.0.0.1:${String(find('listening')?.json['port'])}`;
  // An agent that does not answer (nothing listens on port 1): 502, logged request_failed at warn.
  const unreachable = await fetch(`${url}/v1/hosts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'gone', url: 'http://127.0.0.1:1', trustOnFirstUse: true }),
  });
  assert.equal(unreachable.status, 502);
  await eventually(() => find('request_failed') !== undefined, 'the failed request logged');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);

  assert.deepEqual(
    ['listening', 'request', 'request_failed', 'stopped'].map((event) => [event, find(event)?.priority]),
    [
      ['listening', '6'],
      ['request', '6'],
      ['request_failed', '4'],
      ['stopped', '6'],
    ],
  );
  for (const line of lines()) {
    assert.match(String(line.json['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(line.priority, { info: '6', warn: '4', error: '3' }[String(line.json['level'])]);
  }
});
