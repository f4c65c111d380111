// Pinning: a host whose agent answers with another key than the one pinned at `host add` is refused, loudly.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addHost,
  addTpm,
  addVm,
  checkHost,
  fileState,
  isFlowError,
  removeTpms,
  writeFile,
  type Host,
} from '@hostfiles/controller';
import { startFleet, type Fleet } from './support/controller.js';

/** The agent of host h0 is reinstalled (or impersonated): same address and uuid, a new agent key. */
async function reinstall(fleet: Fleet): Promise<void> {
  const agent = fleet.agents[0];
  if (agent === undefined) throw new Error('no agent');
  await fleet.stop(0);
  rmSync(agent.setup.keyFile);
  await fleet.restart(0);
}

async function withTpmOnHost(fleet: Fleet): Promise<Host> {
  const agent = fleet.agents[0];
  if (agent === undefined) throw new Error('no agent');
  const host = await addHost(fleet.deps, { name: 'h0', url: agent.url, expectKey: agent.publicKey });
  assert.deepEqual(await checkHost(fleet.deps, host), { state: 'Connected' });
  await addVm(fleet.deps, { name: 'vm', host: 'h0', bootMode: 'Legacy', secureBoot: false });
  await addTpm(fleet.deps, 'vm', 'kms');
  const path = join(agent.setup.roots.TpmState, 'vm', 'state');
  await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path, state: fileState(Buffer.from('s')) });
  return host;
}

test('an agent that comes back with a new key over TLS: its certificate fails the pin, nothing is trusted', async () => {
  const fleet = await startFleet(1);
  try {
    const host = await withTpmOnHost(fleet);
    assert.ok(host.certificate !== null && host.url.startsWith('https://'));
    await reinstall(fleet);

    await assert.rejects(checkHost(fleet.deps, host), (error: unknown) => {
      assert.ok(isFlowError(error));
      assert.equal(error.code, 'host_key_changed');
      assert.match(
        error.message,
        /presents another TLS certificate than the one pinned \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
      );
      return true;
    });
    assert.equal((await fleet.store.getHost(host.uuid))?.state, 'Disconnected');
    const report = await removeTpms(fleet.deps, ['vm']);
    assert.equal(report.pending.length, 1, 'no command reaches an agent that fails the pin');
    assert.match(report.pending[0]?.reason ?? '', /^unreachable: TLS: the peer is not the pinned agent/);
    assert.equal(report.vms[0]?.binding, 'detaching');
  } finally {
    await fleet.close();
  }
});

test('an agent that comes back with a new key over plain HTTP: health check refuses it, its answers are never trusted', async () => {
  const fleet = await startFleet(1, { agentConfig: { listen: { host: '127.0.0.1', port: 0, tls: false } } });
  try {
    const host = await withTpmOnHost(fleet);
    assert.ok(host.certificate === null && host.url.startsWith('http://'));
    await reinstall(fleet);

    await assert.rejects(checkHost(fleet.deps, host), (error: unknown) => {
      assert.ok(isFlowError(error));
      assert.equal(error.code, 'host_key_changed');
      assert.match(error.message, /another key or uuid than the one pinned/);
      return true;
    });
    assert.equal((await fleet.store.getHost(host.uuid))?.state, 'Disconnected');
    const report = await removeTpms(fleet.deps, ['vm']);
    assert.equal(report.pending.length, 1, 'an answer signed by an unpinned key confirms nothing');
    assert.match(report.pending[0]?.reason ?? '', /^bad_answer: .*pinned key/);
    assert.equal(report.vms[0]?.binding, 'detaching');
  } finally {
    await fleet.close();
  }
});
