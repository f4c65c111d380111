// `hostfiles serve` across a SIGHUP (its token and TLS files read again; a broken one changes nothing) and started on
// a port in use (it exits at once, saying why).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  generateSigningKey,
  signingKeyFromPem,
  tlsIdentity,
  type SigningKey,
  type TlsIdentity,
} from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { hostfiles } from './support/cli.js';
import { startServe, type LogLine } from './support/serve.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-serve-reload-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** GET /v1/hosts over HTTPS trusting `ca` alone, with `token`; the status, or the TLS error thrown. */
function getHosts(port: number, ca: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/hosts',
        headers: { authorization: `Bearer ${token}` },
        ca,
        // The certificate names a key, not this address: the pin is what the client trusts.
        checkServerIdentity: () => undefined,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('serve on SIGHUP: a new token and TLS certificate are used from then on; a broken file keeps the old ones', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const tokenFile = join(dir, 'api.token');
  const certFile = join(dir, 'api.crt');
  const keyFile = join(dir, 'api.key');
  const install = (token: string, identity: TlsIdentity): void => {
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    writeFileSync(certFile, identity.cert);
    writeFileSync(keyFile, identity.key, { mode: 0o600 });
  };
  const [oldToken, newToken] = ['old-token-0123456789abcdef', 'new-token-0123456789abcdef'];
  const [oldTls, newTls] = [tlsIdentity(generateSigningKey()), tlsIdentity(generateSigningKey())];
  install(oldToken, oldTls);
  const served = await startServe([
    '--db',
    db,
    '--token-file',
    tokenFile,
    '--listen',
    '127.0.0.1:0',
    '--tls-cert',
    certFile,
    '--tls-key',
    keyFile,
  ]);
  t.after(() => {
    served.child.kill('SIGKILL');
  });
  const port = Number(new URL(served.url).port);
  assert.equal(await getHosts(port, oldTls.cert, oldToken), 200);

  install(newToken, newTls);
  served.child.kill('SIGHUP');
  const reloaded = await served.waitFor('reloaded');
  assert.deepEqual([reloaded['tokenChanged'], reloaded['tls']], [true, true]);
  assert.equal(await getHosts(port, newTls.cert, newToken), 200);
  assert.equal(await getHosts(port, newTls.cert, oldToken), 401, 'the old token is no longer taken');
  await assert.rejects(getHosts(port, oldTls.cert, newToken), /self-signed certificate/);

  // A token file that no longer checks (open to others): nothing changes, serve goes on.
  writeFileSync(tokenFile, 'third-token-0123456789abcdef\n');
  chmodSync(tokenFile, 0o644);
  const seen = served.lines.length;
  served.child.kill('SIGHUP');
  // Whichever comes: a second `reloaded` fails the test instead of leaving it waiting.
  const after = (line: LogLine): boolean => served.lines.indexOf(line) >= seen;
  const failed = await Promise.race([served.waitFor('reload_failed', after), served.waitFor('reloaded', after)]);
  assert.equal(failed.event, 'reload_failed');
  assert.match(String(failed['reason']), /is open to group or others/);
  assert.equal(await getHosts(port, newTls.cert, newToken), 200);

  served.child.kill('SIGTERM');
  const { code, stderr } = await served.exited;
  assert.equal(code, 0, stderr);
});

test('serve on a port in use exits 1 at once, saying why; nothing else logged after', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const agent = await startAgent(setupAgent({ controllerKey: controllerKey(dir) }));
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  assert.equal(
    (await hostfiles(['--db', db, 'host', 'add', 'h0', agent.url, '--expect-key', agent.publicKey])).status,
    0,
  );
  const tokenFile = join(dir, 'api.token');
  writeFileSync(tokenFile, 'a-token-0123456789abcdef\n', { mode: 0o600 });
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const { port } = taken.address() as AddressInfo;

  const run = await hostfiles([
    '--db',
    db,
    'serve',
    '--token-file',
    tokenFile,
    '--listen',
    `127.0.0.1:${port}`,
    '--health-interval-ms',
    '10',
  ]);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
  // What lingering looked like: the worker's next round ran on after the failed listen, on a closed store.
  assert.doesNotMatch(run.stdout, /store is closed|retry_error/);
});

const controllerKey = (dir: string): SigningKey => signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
