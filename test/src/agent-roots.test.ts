// The roots through a real agent: one with a symbolic link on its path is refused at start; one swapped for a link
// while the agent runs leads nowhere but the directory the agent opened at start.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeDirOp } from '@hostfiles/shared';
import { AGENT_BIN, removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { agentInfo, deleteOp, send, writeOp } from './support/commands.js';

test('a root that is a symbolic link, or has one on its path, is refused at start: exit 2 with the reason', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  const link = join(setup.dir, 'link');
  symlinkSync(setup.dir, link);
  for (const nvRam of [link, join(link, 'nvram')]) {
    writeFileSync(setup.configPath, JSON.stringify({ ...config, roots: { ...setup.roots, NvRam: nvRam } }));
    const result = spawnSync(process.execPath, [AGENT_BIN, '--config', setup.configPath], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(result.status, 2, result.stderr);
    assert.ok(result.stderr.includes(`NvRam root ${nvRam} cannot be used: ${link} is a symbolic link`), result.stderr);
    assert.equal(result.stdout, '', 'nothing started');
  }
});

test('roots swapped for links to elsewhere while the agent runs: list, stat, read, write, delete stay in the held roots', async (t) => {
  const agent = await startAgent();
  const { roots, outside } = agent.setup;
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  const client = {
    url: agent.url,
    hostUuid: agent.setup.hostUuid,
    key: agent.setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
  writeFileSync(join(roots.NvRam, 'vm_VARS.fd'), 'held');
  // The agent's key file, a state elsewhere: what a swapped root would hand out or delete.
  writeFileSync(join(outside, 'victim'), 'outside the roots');
  mkdirSync(join(outside, 'vm', 'tpm2'), { recursive: true });
  writeFileSync(join(outside, 'vm', 'tpm2', 'tpm2-00.permall'), 'outside tpm');
  for (const root of [roots.NvRam, roots.TpmState]) {
    renameSync(root, `${root}.moved`);
    symlinkSync(outside, root);
  }

  const listed = await send(client, 'files.list', { types: ['TpmState', 'NvRam'] });
  assert.deepEqual(
    listed.results.map((u) => u.path),
    [join(roots.NvRam, 'vm_VARS.fd')],
  );
  const victim = { type: 'NvRam', path: join(roots.NvRam, 'victim') } as const;
  const outsideState = { type: 'TpmState', path: join(roots.TpmState, 'vm') } as const;
  const stat = await send(client, 'files.stat', { files: [victim, outsideState] });
  assert.deepEqual(
    stat.results.map((r) => r.status),
    ['absent', 'absent'],
  );
  const read = await send(client, 'files.read', { files: [victim, outsideState] });
  assert.deepEqual(
    read.results.map((r) => (r.status === 'failed' ? r.error.code : r.status)),
    ['not_found', 'not_found'],
  );
  const applied = await send(client, 'files.apply', {
    ops: [
      deleteOp('NvRam', victim.path),
      deleteOp('TpmState', outsideState.path),
      writeOp('NvRam', join(roots.NvRam, 'new_VARS.fd'), 'new'),
      writeDirOp('TpmState', join(roots.TpmState, 'uuid'), [{ path: 'tpm2/x', content: Buffer.from('x') }]),
    ],
  });
  assert.deepEqual(
    applied.results.map((r) => r.status),
    ['absent', 'absent', 'written', 'written'],
  );
  assert.deepEqual(readdirSync(outside).sort(), ['victim', 'vm']);
  assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'outside the roots');
  assert.equal(readFileSync(join(outside, 'vm', 'tpm2', 'tpm2-00.permall'), 'utf8'), 'outside tpm');
  assert.deepEqual(readdirSync(`${roots.NvRam}.moved`).sort(), ['new_VARS.fd', 'vm_VARS.fd']);
  assert.deepEqual(readdirSync(`${roots.TpmState}.moved`), ['uuid']);
});
