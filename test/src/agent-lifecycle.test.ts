// The agent across restarts, kills and signals: replay memory, crash safety, draining.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { test } from 'node:test';
import { TEMP_PREFIX } from '@hostfiles/agent';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import {
  agentInfo,
  clientOf,
  commandPayload,
  errorCode,
  openAnswer,
  post,
  send,
  signedBody,
  writeOp,
} from './support/commands.js';

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => join(entry.parentPath, entry.name));
}

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('a captured command replayed after a restart: refused with other bytes, answered from the journal with the same', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  let agent = await startAgent(setup);
  const client = await clientOf(agent);
  const path = join(setup.roots.TpmState, 'vm1', 'tpm2-00.permall');
  const payload = commandPayload('files.apply', setup.hostUuid, { ops: [writeOp('TpmState', path, 'first')] });
  const body = signedBody(setup.controllerKey, payload);
  const first = await post(agent.url, '/v1/files/apply', body);
  openAnswer(first, 'files.apply', client.agentPublicKey);
  assert.equal(await agent.stop(), 0);

  agent = await startAgent(setup);
  t.after(() => agent.stop());
  assert.equal(
    (await agentInfo(agent.url)).publicKey,
    client.agentPublicKey,
    'the agent keeps its key across restarts',
  );
  writeFileSync(path, 'changed since'); // were the retry applied again, this would be overwritten
  const retry = await post(agent.url, '/v1/files/apply', body);
  assert.equal(retry.status, 200);
  assert.equal(retry.text, first.text);
  assert.equal(readFileSync(path, 'utf8'), 'changed since');
  const tampered = { ...payload, ops: [writeOp('TpmState', path, 'replayed')] };
  const replay = await post(agent.url, '/v1/files/apply', signedBody(setup.controllerKey, tampered));
  assert.equal(replay.status, 409);
  assert.equal(errorCode(replay), 'replayed');
  assert.equal(readFileSync(path, 'utf8'), 'changed since');
});

test('SIGKILL during a stream of large writes: every target old or new, no temp files after restart', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  let agent = await startAgent(setup);
  const client = await clientOf(agent);
  const targets = Array.from({ length: 6 }, (_, i) => join(setup.roots.NvRam, `vm${i}`, 'VARS.fd'));
  const version = (v: number): Buffer => Buffer.alloc(256 * 1024, v);
  await send(client, 'files.apply', { ops: targets.map((path) => writeOp('NvRam', path, version(0))) });
  const valid = new Set(Array.from({ length: 40 }, (_, v) => sha(version(v))));

  // Two writers stream new versions; the kill lands once the agent has logged writes of a later batch.
  let stopped = false;
  const stream = async (offset: number): Promise<void> => {
    for (let v = 1 + offset; v < 40 && !stopped; v += 2) {
      const ops = targets.map((path) => writeOp('NvRam', path, version(v)));
      await send(client, 'files.apply', { ops }).catch(() => undefined); // the kill cuts requests off
    }
  };
  const writers = [stream(0), stream(1)];
  await waitForLine(agent, (line) => line.includes('"event":"op"') && line.includes('"status":"written"'), 20);
  agent.process.kill('SIGKILL');
  stopped = true;
  await Promise.all(writers);
  assert.equal(await agent.exited, null);

  // A temp file a crash left behind (as a kill mid-write does) is removed at start.
  writeFileSync(join(setup.roots.NvRam, 'vm0', `${TEMP_PREFIX}VARS.fd-leftover`), 'torn');
  agent = await startAgent(setup);
  t.after(() => agent.stop());
  for (const path of targets) assert.ok(valid.has(sha(readFileSync(path))), `${path} is a whole version`);
  const leftovers = [...allFiles(setup.roots.NvRam), ...allFiles(setup.roots.TpmState)].filter((p) =>
    p.includes(TEMP_PREFIX),
  );
  assert.deepEqual(leftovers, []);
  assert.ok(agent.lines.some((line) => line.includes('"event":"temp_files_removed"')));
});

test('SIGTERM drains the request in flight, answers it, and exits 0', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  const client = await clientOf(agent);
  const ops = Array.from({ length: 1000 }, (_, i) =>
    writeOp('TpmState', join(setup.roots.TpmState, `d${i}`, 'state'), `v${i}`),
  );
  const answer = send(client, 'files.apply', { ops });
  await waitForLine(agent, (line) => line.includes('"event":"op"'), 1);
  agent.process.kill('SIGTERM');
  const result = await answer;
  assert.equal(result.results.length, 1000);
  assert.ok(result.results.every((r) => r.status === 'written'));
  assert.equal(await agent.exited, 0);
  const draining = agent.lines.findIndex((line) => line.includes('"event":"draining"'));
  const lastOp = agent.lines.findLastIndex((line) => line.includes('"event":"op"'));
  assert.ok(draining !== -1 && draining < lastOp, 'SIGTERM arrived while the batch was running');
  assert.ok(agent.lines.at(-1)?.includes('"event":"stopped"'));
});

test('a log reader that goes away (EPIPE) does not stop the agent: it goes on serving, and stops cleanly', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  const client = await clientOf(agent);
  // As `hostfiles-agent --config … | head -1` once head has exited: nobody reads the agent's stdout any more.
  agent.process.stdout?.destroy();
  for (const name of ['a', 'b', 'c']) {
    const path = join(setup.roots.TpmState, name, 'state');
    const result = await send(client, 'files.apply', { ops: [writeOp('TpmState', path, name)] });
    assert.deepEqual(
      result.results.map((r) => r.status),
      ['written'],
      `write ${name}, its log lines written to nobody`,
    );
  }
  assert.equal(agent.process.exitCode, null, 'still running');
  assert.equal(await agent.stop(), 0);
});

test('the agent creates its key 0600 at first start and never logs key material or contents', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  const client = await clientOf(agent);
  const secret = 'SECRET-CONTENT-4f1d';
  await send(client, 'files.apply', { ops: [writeOp('TpmState', join(setup.roots.TpmState, 'x'), secret)] });
  assert.equal(await agent.stop(), 0);
  assert.equal(statSync(join(setup.dir, 'agent.key')).mode & 0o777, 0o600);
  const pem = readFileSync(join(setup.dir, 'agent.key'), 'utf8');
  const logs = agent.lines.join('\n');
  const keyBody = pem.split('\n')[1] ?? 'missing';
  assert.ok(!logs.includes(keyBody), 'no key material in logs');
  assert.ok(
    !logs.includes(secret) && !logs.includes(Buffer.from(secret).toString('base64')),
    'no file content in logs',
  );
  assert.ok(logs.includes('"event":"key_generated"'));
});

/** Resolves once `count` log lines match; fails the test if the agent exits first. */
async function waitForLine(agent: AgentHandle, match: (line: string) => boolean, count: number): Promise<void> {
  const stdout = agent.process.stdout;
  if (stdout === null) throw new Error('no stdout');
  while (agent.lines.filter(match).length < count) {
    if (agent.process.exitCode !== null) throw new Error('the agent exited');
    await once(stdout, 'data');
  }
}

test('an apply cut off before its answer (a crash) is refused when retried after restart; a read runs again', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  let agent = await startAgent(setup);
  const client = await clientOf(agent);
  assert.equal(await agent.stop(), 0);
  const path = join(setup.roots.TpmState, 'vm', 'state');
  const apply = commandPayload('files.apply', setup.hostUuid, { ops: [writeOp('TpmState', path, 'old')] });
  const read = commandPayload('files.read', setup.hostUuid, { files: [{ type: 'TpmState', path }] });
  const bodies = [apply, read].map((payload) => signedBody(setup.controllerKey, payload));
  // What the journal holds when the agent died after recording these requests and before answering them.
  const lines = [apply, read].map((payload) => {
    const bytes = Buffer.from(JSON.stringify(payload));
    return JSON.stringify({
      r: payload['requestId'],
      h: createHash('sha256').update(bytes).digest('hex'),
      f: Date.now() + 600_000,
    });
  });
  writeFileSync(join(setup.stateDir, 'replay.jsonl'), `${lines.join('\n')}\n`);
  agent = await startAgent(setup);
  t.after(() => agent.stop());
  const refused = await post(agent.url, '/v1/files/apply', bodies[0] ?? '');
  assert.equal(refused.status, 409);
  assert.equal(errorCode(refused), 'replayed');
  assert.equal(existsSync(path), false, 'the in-doubt apply was not run again');
  const again = openAnswer(
    await post(agent.url, '/v1/files/read', bodies[1] ?? ''),
    'files.read',
    client.agentPublicKey,
  );
  const [result] = again.results;
  assert.equal(result?.status === 'failed' && result.error.code, 'not_found', 'a read is simply run again');
});
