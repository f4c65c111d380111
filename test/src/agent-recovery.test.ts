// Startup recovery through a real agent: what it can't decide or finds held is quarantined, listed and deletable.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEMP_PREFIX } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { agentInfo, deleteOp, send } from './support/commands.js';
import { holdLock } from './support/locks.js';
import { skipWithout } from './support/real-tools.js';

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

test('a unit with a 200-deep chain and a 20,000-entry directory: the agent starts, lists the others, deletes it', async (t) => {
  if (skipWithout(t, spawnSync('flock', ['--version']).error === undefined ? undefined : 'flock(1) is missing')) return;
  const setup = setupAgent();
  const r = setup.roots.TpmState;
  putState(join(r, 'ok'), 'a state');
  const bad = join(r, 'bad');
  mkdirSync(join(bad, 'tpm2', ...Array.from({ length: 200 }, () => 'd')), { recursive: true });
  mkdirSync(join(bad, 'tpm2', 'wide'));
  for (let i = 0; i < 20_000; i++) writeFileSync(join(bad, 'tpm2', 'wide', `f${i}`), '');
  // A lock held elsewhere, as on a host with VMs running: every busy check walks the whole unit.
  writeFileSync(join(setup.outside, 'held'), '');
  const lock = await holdLock(join(setup.outside, 'held'));
  const agent = await startAgent(setup);
  t.after(async () => {
    await lock.release();
    await agent.stop();
    removeSetup(setup);
  });
  const client = {
    url: agent.url,
    hostUuid: setup.hostUuid,
    key: setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
  const logged = agent.lines.map((line) => JSON.parse(line) as { event: string; path?: string; message?: string });
  // Which limit is met first depends on the order the directory lists its entries in.
  const TOO_BIG = /^E2BIG \((deeper than 16 levels|more than 10000 entries)\)$/;
  const failed = logged.filter((l) => l.event === 'recovery_failed');
  assert.deepEqual(
    failed.map((l) => l.path),
    [bad],
  );
  assert.match(failed[0]?.message ?? '', TOO_BIG);
  const listed = await send(client, 'files.list', { types: ['TpmState', 'NvRam'] });
  assert.deepEqual(
    listed.results.map((u) => u.path),
    [join(r, 'ok')],
  );
  const stat = await send(client, 'files.stat', {
    files: [
      { type: 'TpmState', path: bad },
      { type: 'TpmState', path: join(r, 'ok') },
    ],
  });
  const [badStat, okStat] = stat.results;
  assert.ok(badStat?.status === 'failed' && badStat.error.code === 'io_error');
  assert.match(badStat.error.message, TOO_BIG);
  assert.equal(okStat?.status, 'present');
  const deleted = await send(client, 'files.apply', { ops: [deleteOp('TpmState', bad)] });
  assert.deepEqual(
    deleted.results.map((res) => res.status),
    ['deleted'],
  );
  assert.deepEqual(readdirSync(r), ['ok']);
});
