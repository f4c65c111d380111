// Startup recovery through a real agent: what it can't decide or finds held is quarantined, listed and deletable.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEMP_PREFIX } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { agentInfo, deleteOp, send } from './support/commands.js';

const QUARANTINE = '.hostfiles-quarantine.';

function putState(path: string, version: string): void {
  mkdirSync(join(path, 'tpm2'), { recursive: true });
  writeFileSync(join(path, 'tpm2', 'tpm2-00.permall'), version);
}

test('a state made at the name while the agent was down: old and new quarantined, logged, listed, deletable', async (t) => {
  const setup = setupAgent();
  const r = setup.roots.TpmState;
  putState(join(r, 'vm1'), 'fresh by libvirt');
  putState(join(r, `${TEMP_PREFIX}old.vm1`), 'the only copy of the old state');
  putState(join(r, `${TEMP_PREFIX}new.vm1`), 'the committed new state');
  const agent = await startAgent(setup);
  t.after(async () => {
    await agent.stop();
    removeSetup(setup);
  });
  const client = {
    url: agent.url,
    hostUuid: setup.hostUuid,
    key: setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
  const kept = readdirSync(r).filter((name) => name.startsWith(QUARANTINE));
  assert.equal(kept.length, 2);
  const logged = agent.lines.map((line) => JSON.parse(line) as { event: string; level: string; path?: string });
  assert.deepEqual(
    logged
      .filter((l) => l.event === 'quarantined')
      .map((l) => [l.level, l.path])
      .sort(),
    kept.map((name) => ['warn', join(r, name)]).sort(),
  );
  const listed = await send(client, 'files.list', { types: ['TpmState'] });
  assert.deepEqual(
    listed.results.map((u) => u.path),
    [...kept.map((name) => join(r, name)), join(r, 'vm1')].sort(),
  );
  const deleted = await send(client, 'files.apply', { ops: kept.map((name) => deleteOp('TpmState', join(r, name))) });
  assert.deepEqual(
    deleted.results.map((res) => res.status),
    ['deleted', 'deleted'],
  );
  assert.deepEqual(readdirSync(r), ['vm1']);
});
