// The agent's lifecycle as an operator drives it: one agent per stateDir, SIGHUP reloading the trusted keys.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateSigningKey, TEMP_PREFIX, type SigningKey } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, waitForLine, type AgentHandle } from './support/agent-process.js';
import { clientOf, commandPayload, errorCode, openAnswer, post, signedBody, writeOp } from './support/commands.js';

test('a second agent on one stateDir exits 2 naming the holder; after SIGKILL of the holder, a new one starts', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const first = await startAgent(setup);
  t.after(() => first.stop('SIGKILL'));
  // Another config (its own port, its own key file) naming the same stateDir: only the stateDir is shared.
  const other = setupAgent({ config: { stateDir: setup.stateDir } });
  t.after(() => {
    removeSetup(other);
  });
  // Were it to start, it is stopped at once (and the test fails): no agent outlives the test.
  const second = startAgent(other).then(async (started) => {
    await started.stop('SIGKILL');
    return started;
  });
  await assert.rejects(
    second,
    (error: Error) =>
      /exited \(2\)/.test(error.message) &&
      error.message.includes(`the stateDir ${setup.stateDir} is in use by another agent (pid ${first.process.pid})`),
  );
  assert.equal(first.process.exitCode, null, 'the holder serves on');

  assert.equal(await first.stop('SIGKILL'), null);
  const next = await startAgent(other);
  t.after(() => next.stop());
  assert.ok(next.port > 0, 'the lock went with the killed process: no stale lock');
});

/** Connects to a unix socket and closes at once, before any answer is read. */
function connectAndClose(path: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = createConnection({ path }, () => {
      socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve();
    });
  });
}

test('the lock is <stateDir>/agent.lock: a socket file 0600 in the 0700 stateDir, no abstract name', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  t.after(() => agent.stop());
  const lock = join(setup.stateDir, 'agent.lock');
  const stat = statSync(lock);
  assert.ok(stat.isSocket());
  assert.equal(stat.mode & 0o777, 0o600);
  assert.equal(statSync(setup.stateDir).mode & 0o777, 0o700);
  // Abstract names show with a leading @ (other agents on this machine may hold theirs); a pathname shows its path.
  const { dev, ino } = statSync(setup.stateDir, { bigint: true });
  const unix = readFileSync('/proc/net/unix', 'utf8');
  assert.ok(
    !unix.includes(`@hostfiles-agent:${dev}:${ino}`),
    'no abstract socket that any local user could take first',
  );
  assert.ok(
    unix.split('\n').some((line) => line.endsWith(` ${lock}`)),
    `${lock} listed in /proc/net/unix`,
  );
});

test('clients of the lock socket that connect and close at once do not stop the agent', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  t.after(() => agent.stop());
  const lock = join(setup.stateDir, 'agent.lock');
  await Promise.all(Array.from({ length: 50 }, () => connectAndClose(lock)));
  const write = await writeSignedBy(agent, setup.controllerKey, 'after_probes');
  openAnswer(write.reply, 'files.apply', (await clientOf(agent)).agentPublicKey);
  assert.equal(agent.process.exitCode, null);
  assert.equal(await agent.stop(), 0, 'a clean stop after');
});

test('SIGHUP during start-up (before listening) is kept: the agent starts, reloads once and serves', async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  // Leftover temp files: start-up's recovery takes a while after key_generated, well before listening.
  for (let i = 0; i < 4000; i += 1) {
    writeFileSync(join(setup.roots.NvRam, `${TEMP_PREFIX}${i.toString(16).padStart(8, '0')}-x_VARS.fd`), '');
  }
  let signalled = false;
  const agent = await startAgent(setup, {
    onLine: (line, child) => {
      if (line['event'] === 'key_generated') {
        signalled = child.kill('SIGHUP');
      }
    },
  });
  t.after(() => agent.stop());
  assert.ok(signalled, 'SIGHUP sent before listening');
  const events = agent.lines.map((line) => (JSON.parse(line) as { event?: string }).event);
  assert.ok(events.indexOf('temp_files_removed') > events.indexOf('key_generated'), events.join(','));
  await waitForLine(agent, (line) => line['event'] === 'reloaded');
  const write = await writeSignedBy(agent, setup.controllerKey, 'after_hangup');
  openAnswer(write.reply, 'files.apply', (await clientOf(agent)).agentPublicKey);
  assert.equal(agent.process.exitCode, null);
});

/** Writes a file through `agent`, signed by `key`; the reply as it came. */
async function writeSignedBy(agent: AgentHandle, key: SigningKey, name: string) {
  const path = join(agent.setup.roots.NvRam, `${name}_VARS.fd`);
  const payload = commandPayload('files.apply', agent.setup.hostUuid, { ops: [writeOp('NvRam', path, name)] });
  return { path, reply: await post(agent.url, '/v1/files/apply', signedBody(key, payload)) };
}

test('SIGHUP: a controller key added to the config is trusted after, not before; the others keep working', async (t) => {
  // TLS without client certificates: the signature is what a key's trust decides here.
  const setup = setupAgent({ config: { listen: { host: '127.0.0.1', port: 0, clientAuth: 'none' } } });
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  t.after(() => agent.stop());
  const client = await clientOf(agent);
  const rotated = generateSigningKey();

  const before = await writeSignedBy(agent, rotated, 'before');
  assert.equal(before.reply.status, 401, before.reply.text);
  assert.equal(errorCode(before.reply), 'unknown_key');

  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(setup.configPath, JSON.stringify({ ...config, trustedKeys: [rotated.publicKey], maxBodyBytes: 65536 }));
  const from = agent.lines.length;
  agent.process.kill('SIGHUP');
  const reloaded = await waitForLine(agent, (line) => line['event'] === 'reloaded', from);
  assert.equal(reloaded['added'], rotated.keyId);
  assert.equal(reloaded['removed'], setup.controllerKey.keyId);
  assert.equal(reloaded['needsRestart'], 'maxBodyBytes', 'what a reload cannot apply is said, not silently kept');

  const after = await writeSignedBy(agent, rotated, 'after');
  openAnswer(after.reply, 'files.apply', client.agentPublicKey);
  assert.equal(readFileSync(after.path, 'utf8'), 'after');
  const old = await writeSignedBy(agent, setup.controllerKey, 'old');
  assert.equal(errorCode(old.reply), 'unknown_key', 'a key taken out of the config is no longer trusted');
});

test('SIGHUP with a broken config: logged reload_failed, the running config kept, the agent serves on', async (t) => {
  const setup = setupAgent({ config: { listen: { host: '127.0.0.1', port: 0, clientAuth: 'none' } } });
  t.after(() => {
    removeSetup(setup);
  });
  const agent = await startAgent(setup);
  t.after(() => agent.stop());
  const client = await clientOf(agent);
  writeFileSync(setup.configPath, '{"hostUuid": "not json');
  const from = agent.lines.length;
  agent.process.kill('SIGHUP');
  const failed = await waitForLine(agent, (line) => line['event'] === 'reload_failed', from);
  assert.match(String(failed['problems']), /is not JSON/);
  assert.equal(failed['level'], 'error');

  const write = await writeSignedBy(agent, setup.controllerKey, 'kept');
  openAnswer(write.reply, 'files.apply', client.agentPublicKey);
  assert.equal(readFileSync(write.path, 'utf8'), 'kept');
  assert.equal(agent.process.exitCode, null);
  assert.equal(await agent.stop(), 0, 'a clean stop after: SIGHUP left nothing broken');
});
