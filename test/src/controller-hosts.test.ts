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
} from '@hostfiles/controller';
import { startFleet } from './support/controller.js';

test('an agent that comes back with a new key: health check refuses it, removals never trust its answers', async () => {
  const fleet = await startFleet(1);
  try {
    const agent = fleet.agents[0];
    if (agent === undefined) throw new Error('no agent');
    const host = await addHost(fleet.deps, { name: 'h0', url: agent.url });
    assert.equal(await checkHost(fleet.deps, host), 'Connected');
    await addVm(fleet.deps, { name: 'vm', host: 'h0', bootMode: 'Legacy', secureBoot: false });
    await addTpm(fleet.deps, 'vm', 'kms');
    const path = join(agent.setup.roots.TpmState, 'vm', 'state');
    await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path, state: fileState(Buffer.from('s')) });

    // The host is reinstalled (or impersonated): same address and uuid, a new agent key.
    await fleet.stop(0);
    rmSync(join(agent.setup.dir, 'agent.key'));
    await fleet.restart(0);

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
