// The agent's transport: HTTPS with the certificate of its own key, and only for clients presenting a trusted
// controller key's certificate (mutual TLS); plain HTTP only where the config says so, never by accident.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, type ConnectionOptions } from 'node:tls';
import {
  certificateFor,
  generateSigningKey,
  keyFingerprint,
  signingKeyFromPem,
  tlsIdentity,
  type SigningKey,
} from '@hostfiles/shared';
import {
  AGENT_BIN,
  removeSetup,
  setupAgent,
  startAgent,
  waitForLine,
  type AgentHandle,
} from './support/agent-process.js';
import { agentInfo, post, signedBody, commandPayload, openAnswer, writeOp } from './support/commands.js';

interface Attempt {
  /** every byte the agent sent back after the handshake */
  readonly answer: string;
  readonly error?: string;
}

/**
 * Connects as `client` (no certificate when undefined), trusting the agent's certificate, and POSTs `body` as soon as
 * the handshake ends; resolves when the agent closes the connection.
 */
function attempt(agent: AgentHandle, client: SigningKey | undefined, body: string): Promise<Attempt> {
  const options: ConnectionOptions = {
    host: '127.0.0.1',
    port: agent.port,
    ca: agent.certificate ?? '',
    checkServerIdentity: () => undefined,
    ...(client === undefined ? {} : tlsIdentity(client)),
  };
  return new Promise((resolve) => {
    let answer = '';
    let error: string | undefined;
    const socket = connect(options, () => {
      const head = `POST /v1/files/apply HTTP/1.1\r\nhost: agent\r\nconnection: close\r\n`;
      socket.write(`${head}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`);
      socket.write(body);
    });
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => {
      resolve({ answer, ...(error === undefined ? {} : { error }) });
    });
  });
}

/** A command the trusted controller key signed: what a client that captured one could send. */
function signedWrite(agent: AgentHandle, name: string): string {
  const ops = [writeOp('NvRam', join(agent.setup.roots.NvRam, `${name}_VARS.fd`), name)];
  return signedBody(agent.setup.controllerKey, commandPayload('files.apply', agent.setup.hostUuid, { ops }));
}

const events = (agent: AgentHandle, event: string): Record<string, unknown>[] =>
  agent.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['event'] === event);

test("a client without a certificate, or with an untrusted key's, cannot get a request to the agent", async (t) => {
  const agent = await startAgent();
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  const listening = events(agent, 'listening')[0];
  assert.deepEqual([listening?.['tls'], listening?.['clientAuth']], [true, 'required']);

  const anonymous = await attempt(agent, undefined, signedWrite(agent, 'anonymous'));
  const stranger = generateSigningKey();
  const untrusted = await attempt(agent, stranger, signedWrite(agent, 'stranger'));
  for (const refused of [anonymous, untrusted]) {
    assert.equal(refused.answer, '', 'closed before any HTTP answer');
  }
  // The same kind of command from the trusted controller key's connection is read and run.
  const trusted = await attempt(agent, agent.setup.controllerKey, signedWrite(agent, 'trusted'));
  assert.match(trusted.answer, /^HTTP\/1\.1 200 /);
  // Its line may reach stdout after its answer reached the client.
  await waitForLine(agent, (line) => line['event'] === 'request');

  assert.equal(events(agent, 'request').length, 1, 'only the trusted client got a request run');
  assert.equal(events(agent, 'refused').length, 0, 'nor any refused by the app: HTTP never saw the others');
  assert.deepEqual(readdirSync(agent.setup.roots.NvRam), ['trusted_VARS.fd']);
  const refusals = events(agent, 'client_refused');
  assert.deepEqual(
    refusals.map((line) => [line['reason'], line['keyId']]),
    [
      ['no_certificate', undefined],
      ['untrusted_key', stranger.keyId],
    ],
  );
});

test('the certificate is derived from the agent key: the same bytes after a restart, no file anywhere', async (t) => {
  const setup = setupAgent();
  const first = await startAgent(setup);
  t.after(() => {
    removeSetup(setup);
  });
  const presented = async (agent: AgentHandle): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: agent.port, rejectUnauthorized: false }, () => {
        const certificate = socket.getPeerX509Certificate();
        socket.destroy();
        if (certificate === undefined) reject(new Error('no certificate'));
        else resolve(certificate.raw);
      });
      socket.on('error', reject);
    });
  const before = await presented(first);
  await first.stop();
  const again = await startAgent(
    setupAgent({ dir: setup.dir, controllerKey: setup.controllerKey, config: { hostUuid: setup.hostUuid } }),
  );
  t.after(() => again.stop());
  const after = await presented(again);
  assert.deepEqual(after, before);
  assert.equal(
    after.equals(new X509Certificate(certificateFor(signingKeyFromPem(readFileSync(setup.keyFile, 'utf8')))).raw),
    true,
  );
  assert.equal((await agentInfo(again.url)).publicKey, again.publicKey);
});

test('clientAuth "none": any client gets TLS, and the signatures alone decide what runs', async (t) => {
  const agent = await startAgent(
    setupAgent({ config: { listen: { host: '127.0.0.1', port: 0, clientAuth: 'none' } } }),
  );
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  const anonymous = await attempt(agent, undefined, signedWrite(agent, 'anonymous'));
  assert.match(anonymous.answer, /^HTTP\/1\.1 200 /);
  assert.equal(events(agent, 'client_refused').length, 0);
});

test('plain HTTP: on loopback when the config says tls: false; on another address a config error, exit 2', async (t) => {
  const agent = await startAgent(setupAgent({ config: { listen: { host: '127.0.0.1', port: 0, tls: false } } }));
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  assert.match(agent.url, /^http:\/\//);
  assert.equal(events(agent, 'listening')[0]?.['tls'], false);
  const client = { key: agent.setup.controllerKey, hostUuid: agent.setup.hostUuid };
  const payload = commandPayload('files.apply', client.hostUuid, {
    ops: [writeOp('NvRam', `${agent.setup.roots.NvRam}/a_VARS.fd`, 'x')],
  });
  const answer = openAnswer(
    await post(agent.url, '/v1/files/apply', signedBody(client.key, payload)),
    'files.apply',
    agent.publicKey,
  );
  assert.equal(answer.results[0]?.status, 'written');

  const network = setupAgent({ config: { listen: { host: '0.0.0.0', port: 0, tls: false } } });
  t.after(() => {
    removeSetup(network);
  });
  const refused = spawnSync(process.execPath, [AGENT_BIN, '--config', network.configPath], { encoding: 'utf8' });
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /listen\.tls: plain HTTP on 0\.0\.0\.0 would carry commands and file contents in clear/);
  assert.equal(refused.stdout, '', 'never listening');
});

test('info prints the hostUuid, public key, keyId and fingerprint that host add --expect-key takes', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const run = (...args: string[]) => spawnSync(process.execPath, [AGENT_BIN, ...args], { encoding: 'utf8' });
  const missing = run('info', '--config', setup.configPath);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no key at .*agent\.key yet: the agent makes it at its first start/);
  const key = generateSigningKey();
  writeFileSync(setup.keyFile, key.pem, { mode: 0o600 });
  const info = run('info', '--config', setup.configPath);
  assert.equal(info.status, 0, info.stderr);
  assert.deepEqual(JSON.parse(info.stdout), {
    hostUuid: setup.hostUuid,
    publicKey: key.publicKey,
    keyId: key.keyId,
    fingerprint: keyFingerprint(key.publicKey),
  });
  assert.equal(run('info').status, 2);
  const keygen = run('keygen');
  assert.equal(keygen.status, 0);
  const printed = JSON.parse(keygen.stderr) as { publicKey: string; fingerprint: string };
  assert.equal(printed.fingerprint, keyFingerprint(printed.publicKey));
  assert.equal(signingKeyFromPem(keygen.stdout).publicKey, printed.publicKey);
});
