// The controller's hop to agents over TLS with pinned keys, and its own API over HTTPS: a man in the middle at
// `host add` is refused, one after it is never spoken to, plain HTTP is kept to loopback unless asked for.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import {
  addHost,
  addTpm,
  addVm,
  checkHost,
  fileState,
  isFlowError,
  removeTpms,
  setHostUrl,
  writeFile,
  type Host,
} from '@hostfiles/controller';
import {
  certificateFor,
  generateSigningKey,
  keyFingerprint,
  signingKeyFromPem,
  tlsIdentity,
  type SigningKey,
} from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { cleanEnv, CLI, hostfiles, type Run } from './support/cli.js';
import { startFleet, withFleet } from './support/controller.js';
import { tlsProxy } from './support/tls-proxy.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-tls-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** An initialized controller database and its key, and an agent trusting that key. */
async function operator(
  t: TestContext,
  agentConfig: Record<string, unknown> = {},
): Promise<{ cli: (...args: string[]) => Promise<Run>; agent: AgentHandle; dir: string; key: SigningKey }> {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const key = signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
  const agent = await startAgent(setupAgent({ controllerKey: key, config: agentConfig }));
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  return { cli: (...args) => hostfiles(['--db', db, ...args]), agent, dir, key };
}

const hostList = async (cli: (...args: string[]) => Promise<Run>): Promise<Host[]> =>
  JSON.parse((await cli('host', 'list', '--json')).stdout) as Host[];

test('host add through a man in the middle is refused, whatever it claims; nothing stored, no HTTP sent', async (t) => {
  const { cli, agent } = await operator(t);
  const agentPrint = keyFingerprint(agent.publicKey);
  for (const mode of ['relay', 'own-info'] as const) {
    const proxy = await tlsProxy(agent.url, mode);
    t.after(() => proxy.close());
    const run = await cli('host', 'add', 'h0', proxy.url, '--expect-key', agent.publicKey);
    assert.equal(run.status, 1, run.stderr);
    const proxyPrint = keyFingerprint(proxy.key.publicKey);
    assert.ok(
      run.stderr.includes(`presents a TLS certificate for key ${proxyPrint}, not the expected ${agentPrint}`),
      run.stderr,
    );
    assert.equal(proxy.requests(), 0, 'the certificate is checked before any HTTP goes out');
  }
  // Trusting on first use through a relaying proxy: its certificate's key is not the key /v1/info names.
  const relay = await tlsProxy(agent.url, 'relay');
  t.after(() => relay.close());
  const tofu = await cli('host', 'add', 'h0', relay.url, '--trust-on-first-use');
  assert.equal(tofu.status, 1, tofu.stderr);
  assert.match(tofu.stderr, /answers \/v1\/info with key sha256:[0-9a-f]{64}, not its TLS certificate's/);
  assert.deepEqual(await hostList(cli), [], 'nothing stored');
});

test('host add needs the expected key or trust on first use by name, and refuses a keyId as too short', async (t) => {
  const { cli, agent } = await operator(t);
  const none = await cli('host', 'add', 'h0', agent.url);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /host add needs --expect-key KEY .* or --trust-on-first-use/);
  const short = await cli('host', 'add', 'h0', agent.url, '--expect-key', keyIdOf(agent));
  assert.equal(short.status, 2);
  assert.match(short.stderr, /is a keyId: 64 bits are too few to pin a key/);
  const other = await cli('host', 'add', 'h0', agent.url, '--expect-key', generateSigningKey().publicKey);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /presents a TLS certificate for key sha256:[0-9a-f]{64}, not the expected sha256:/);
  assert.deepEqual(await hostList(cli), []);

  const tofu = await cli('host', 'add', 'h0', agent.url, '--trust-on-first-use');
  assert.equal(tofu.status, 0, tofu.stderr);
  assert.match(tofu.stderr, /WARNING: host h0: its agent's key was trusted on first use, checked against nothing/);
  assert.ok(tofu.stderr.includes(`WARNING: pinned ${keyFingerprint(agent.publicKey)}`), tofu.stderr);
  const [pinned] = await hostList(cli);
  assert.deepEqual([pinned?.publicKey, pinned?.certificate], [agent.publicKey, agent.certificate]);

  // The fingerprint form pins the same way, quietly.
  await cli('host', 'remove', 'h0');
  const byPrint = await cli('host', 'add', 'h0', agent.url, '--expect-key', keyFingerprint(agent.publicKey));
  assert.equal(byPrint.status, 0, byPrint.stderr);
  assert.equal(byPrint.stderr, '');
  assert.match(byPrint.stdout, /agent key sha256:[0-9a-f]{64} pinned, with its TLS certificate/);
});

test('host add to an agent that does not trust this controller says that is the likely cause; nothing stored', async (t) => {
  const { cli } = await operator(t);
  // An agent set up for another controller's key: it closes this one's TLS connection as soon as it sees its key.
  const stranger = await startAgent(setupAgent({ controllerKey: generateSigningKey() }));
  t.after(async () => {
    await stranger.stop();
    removeSetup(stranger.setup);
  });
  const run = await cli('host', 'add', 'h0', stranger.url, '--expect-key', stranger.publicKey);
  assert.equal(run.status, 1);
  assert.match(
    run.stderr,
    /cannot reach the agent at .*: unreachable: .*is this controller's public key in the agent's trustedKeys\?/,
  );
  assert.deepEqual(await hostList(cli), []);
});

const keyIdOf = (agent: AgentHandle): string => signingKeyFromPem(readFileSync(agent.setup.keyFile, 'utf8')).keyId;

test('a man in the middle after host add cannot present the pinned certificate: nothing forged is believed', async () => {
  await withFleet(1, async (fleet) => {
    const agent = fleet.agents[0];
    assert.ok(agent);
    const host = await fleet.store.getHostByName('host0');
    assert.ok(host?.certificate != null);
    await addVm(fleet.deps, { name: 'vm', host: 'host0', bootMode: 'Legacy', secureBoot: false });
    await addTpm(fleet.deps, 'vm', 'kms');
    const path = join(agent.setup.roots.TpmState, 'vm', 'state');
    await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path, state: fileState(Buffer.from('s')) });

    // The path to the host now leads to a proxy that answers every apply `deleted` without relaying it.
    const proxy = await tlsProxy(agent.url, 'forge-deleted');
    try {
      await fleet.store.setHostEndpoint(host.uuid, proxy.url, host.certificate);
      const report = await removeTpms(fleet.deps, ['vm'], undefined, { force: true });
      const statuses = report.hosts.flatMap((h) => h.files.map((f) => f.status));
      assert.ok(!statuses.includes('deleted'), statuses.join());
      assert.equal(report.pending.length, 1, 'not reported deleted');
      assert.match(report.pending[0]?.reason ?? '', /^unreachable: TLS: the peer is not the pinned agent/);
      assert.ok(existsSync(path), 'the state is still on disk');
      assert.equal(report.vms[0]?.binding, 'detaching', 'the key binding is not detached');
      assert.equal(proxy.requests(), 0, 'the proxy never got a request');
      await assert.rejects(checkHost(fleet.deps, { ...host, url: proxy.url }), (error: unknown) => {
        assert.ok(isFlowError(error) && error.code === 'host_key_changed', String(error));
        return true;
      });
    } finally {
      await proxy.close();
    }
  });
});

test('plain HTTP: refused to an address that is not loopback unless allowed; fine on loopback', async (t) => {
  const { cli, agent } = await operator(t, { listen: { host: '127.0.0.1', port: 0, tls: false } });
  const refused = await cli('host', 'add', 'h0', 'http://10.0.0.11:7441', '--expect-key', agent.publicKey);
  assert.equal(refused.status, 2, 'bad input');
  assert.match(refused.stderr, /plain HTTP to 10\.0\.0\.11 would carry state and commands in clear/);
  // 0.0.0.0 is not a loopback address, though Linux delivers a connection to it locally.
  const wildcard = `http://0.0.0.0:${agent.port}`;
  const unasked = await cli('host', 'add', 'h0', wildcard, '--expect-key', agent.publicKey);
  assert.equal(unasked.status, 2, 'bad input');
  assert.match(unasked.stderr, /plain HTTP to 0\.0\.0\.0/);
  assert.deepEqual(await hostList(cli), []);
  const allowed = await cli('host', 'add', 'h0', wildcard, '--expect-key', agent.publicKey, '--allow-plain-http');
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.match(allowed.stdout, /over plain HTTP \(no TLS\)/);
  await cli('host', 'remove', 'h0');
  const loopback = await cli('host', 'add', 'h0', agent.url, '--expect-key', agent.publicKey);
  assert.equal(loopback.status, 0, loopback.stderr);
  assert.deepEqual(
    (await hostList(cli)).map((h) => [h.url, h.certificate]),
    [[agent.url, null]],
  );
  assert.match((await cli('host', 'list')).stdout, /plain http/);
});

test('host set-url moves a plain-HTTP host to https once its agent serves TLS, pinning its certificate', async () => {
  const fleet = await startFleet(1, { agentConfig: { listen: { host: '127.0.0.1', port: 0, tls: false } } });
  const others: AgentHandle[] = [];
  try {
    const old = fleet.agents[0];
    assert.ok(old);
    await addHost(fleet.deps, { name: 'h0', url: old.url, expectKey: old.publicKey });
    // The agent is upgraded: same key, uuid and port, TLS on (the default).
    await old.stop();
    const upgraded = await startAgent(
      setupAgent({
        dir: old.setup.dir,
        controllerKey: fleet.key,
        config: { hostUuid: old.setup.hostUuid, listen: { host: '127.0.0.1', port: old.port } },
      }),
    );
    fleet.agents[0] = upgraded;
    const stale = await fleet.store.getHostByName('h0');
    assert.ok(stale);
    const health = await checkHost(fleet.deps, stale);
    assert.equal(health.state, 'Disconnected', 'plain HTTP to a TLS agent gets nowhere');
    assert.ok((health.reason ?? '') !== '', 'and says why');

    const stranger = await startAgent(setupAgent({ controllerKey: fleet.key }));
    others.push(stranger);
    await assert.rejects(setHostUrl(fleet.deps, 'h0', { url: stranger.url }), (error: unknown) => {
      assert.ok(isFlowError(error) && error.code === 'host_key_mismatch', String(error));
      return true;
    });
    const moved = await setHostUrl(fleet.deps, 'h0', { url: upgraded.url });
    assert.deepEqual(
      [moved.url, moved.certificate],
      [upgraded.url, certificateFor(signingKeyFromPem(readFileSync(upgraded.setup.keyFile, 'utf8')))],
    );
    assert.deepEqual(await checkHost(fleet.deps, moved), { state: 'Connected' });
  } finally {
    for (const agent of others) {
      await agent.stop();
      removeSetup(agent.setup);
    }
    await fleet.close();
  }
});

test('serve speaks HTTPS with --tls-cert and --tls-key; plain HTTP off loopback is refused', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const token = join(dir, 'api.token');
  writeFileSync(token, 'test-token-0123456789abcdef\n', { mode: 0o600 });
  const identity = tlsIdentity(generateSigningKey());
  const cert = join(dir, 'api.crt');
  const keyFile = join(dir, 'api.key');
  writeFileSync(cert, identity.cert);
  writeFileSync(keyFile, identity.key, { mode: 0o600 });

  const wide = await hostfiles(['serve', '--db', db, '--token-file', token, '--listen', '0.0.0.0:0']);
  assert.equal(wide.status, 2);
  assert.match(wide.stderr, /plain HTTP on 0\.0\.0\.0 would send the bearer token and VM state in clear/);
  assert.doesNotMatch(wide.stdout, /listening/);
  const half = await hostfiles(['serve', '--db', db, '--token-file', token, '--tls-cert', cert]);
  assert.equal(half.status, 2);
  assert.match(half.stderr, /--tls-cert and --tls-key go together/);

  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--db',
      db,
      '--token-file',
      token,
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      cert,
      '--tls-key',
      keyFile,
    ],
    { env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const listening = await new Promise<Record<string, unknown>>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      if (event['event'] === 'listening') resolve(event);
    });
  });
  assert.equal(listening['tls'], true);
  const get = (ca: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: Number(listening['port']),
          path: '/v1/hosts',
          headers: { authorization: 'Bearer test-token-0123456789abcdef' },
          ca,
          // The certificate names a key, not this address: the pin is what the client trusts.
          checkServerIdentity: () => undefined,
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  assert.deepEqual(await get(identity.cert), { status: 200, body: '{"hosts":[]}' });
  await assert.rejects(get(certificateFor(generateSigningKey())), /self-signed certificate/);
  await assert.rejects(fetch(`http://127.0.0.1:${String(listening['port'])}/v1/health`));
});
