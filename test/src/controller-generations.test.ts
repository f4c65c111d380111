// Generations with a real agent and the real `hostfiles` binary: every capture that differs is numbered, the
// history lists them, an older one is restored only when forced, the last N are kept, and removals take them all.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { initWorkspace, oneVmOnOneHost } from './support/cli.js';
import { holdLock } from './support/locks.js';
import { apiCall, startServe, type Served } from './support/serve.js';

const TOKEN = randomBytes(24).toString('base64url');
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface History {
  readonly vmName: string;
  readonly generations: readonly {
    readonly type: string;
    readonly generation: number;
    readonly sha256: string;
    readonly source: string;
    readonly hostName: string | null;
  }[];
}

test('CLI: generations are numbered per capture, listed, restored (older only with --force, over an uncaptured state only with --force), pruned and removed', async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-generations-');
  const { dir, cli, ok } = workspace;
  const history = async (...flags: string[]): Promise<History> =>
    JSON.parse(await ok('state', 'history', 'a', '--json', ...flags)) as History;
  const nvram = async () =>
    (await history('--type', 'NvRam')).generations.map((g) => [g.generation, g.source, g.sha256, g.hostName]);
  const { tpmPath, varsPath } = await oneVmOnOneHost(t, workspace);
  const v1 = randomBytes(4096);
  const from = join(dir, 'state');
  writeFileSync(from, v1);
  assert.deepEqual((await history()).generations, [], 'nothing captured yet');
  // A write onto the VM's current host is a capture: generation 1 of each type.
  await ok('file', 'write', 'a', '--type', 'TpmState', '--path', tpmPath, '--from', from);
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', varsPath, '--from', from);
  assert.deepEqual(await nvram(), [[1, 'write', sha256(v1), 'h0']]);

  // The VM ran: sync captures what is on disk now (2); the same again makes nothing new.
  const v2 = randomBytes(4096);
  writeFileSync(varsPath, v2);
  assert.match(await ok('sync', 'a'), /backup NvRam: 4096 bytes from h0 \S+, generation 2\n/);
  assert.match(await ok('sync', 'a'), /backup NvRam: 4096 bytes from h0 \S+, generation 2 \(unchanged\)/);
  const v3 = randomBytes(4096);
  writeFileSync(varsPath, v3);
  await ok('sync', 'a');
  assert.deepEqual(await nvram(), [
    [3, 'sync', sha256(v3), 'h0'],
    [2, 'sync', sha256(v2), 'h0'],
    [1, 'write', sha256(v1), 'h0'],
  ]);
  assert.deepEqual(
    (await history()).generations.map((g) => [g.type, g.generation]),
    [
      ['NvRam', 3],
      ['NvRam', 2],
      ['NvRam', 1],
      ['TpmState', 1],
    ],
    'each type numbered on its own: the TPM state never changed',
  );
  assert.match(await ok('state', 'history', 'a'), /NvRam\s+2\s+file\s+4096\s+\S+\s+sync\s+h0/);

  // restore --generation: the type must be named when the VM has two; an older one only with --force.
  const untyped = await cli('restore', 'a', '--generation', '1');
  assert.equal(untyped.status, 2, 'bad input');
  assert.match(untyped.stderr, /^hostfiles: VM a has generations of 2 types: name the type/);
  const older = await cli('restore', 'a', '--generation', '1', '--type', 'NvRam');
  assert.equal(older.status, 1);
  assert.match(older.stderr, /generation 1 of VM a's NvRam is older than its newest, 3: .*needs force/);
  assert.equal(sha256(readFileSync(varsPath)), sha256(v3), 'nothing was written');
  const absent = await cli('restore', 'a', '--generation', '9', '--type', 'NvRam');
  assert.equal(absent.status, 1);
  assert.match(absent.stderr, /no NvRam generation 9/);
  const restored = JSON.parse(
    await ok('restore', 'a', '--generation', '1', '--type', 'NvRam', '--force', '--json'),
  ) as { generations: unknown; files: { type: string; status: string }[] };
  assert.deepEqual(restored.generations, [{ type: 'NvRam', generation: 1 }]);
  assert.deepEqual(
    restored.files.map((f) => [f.type, f.status]),
    [['NvRam', 'written']],
  );
  assert.equal(Buffer.compare(readFileSync(varsPath), v1), 0, 'generation 1, byte-identical');
  assert.equal((await nvram()).length, 3, 'a restore captures nothing');
  // Captured again by the next sync: a new number, never 1 again.
  assert.match(await ok('sync', 'a'), /backup NvRam: 4096 bytes from h0 \S+, generation 4\n/);
  // The VM ran again, and nothing synced it: a restore would write over the only copy of that state. Refused, with
  // the way; --force writes over it.
  const unsynced = randomBytes(4096);
  writeFileSync(varsPath, unsynced);
  const over = await cli('restore', 'a');
  assert.equal(over.status, 1);
  assert.match(
    over.stderr,
    new RegExp(
      `VM a's NvRam state ${varsPath} on h0 changed since it was last recorded, and no backup holds it: ` +
        '`hostfiles sync a` captures it first',
    ),
  );
  assert.equal(Buffer.compare(readFileSync(varsPath), unsynced), 0, 'nothing was written');
  await ok('restore', 'a', '--force');
  assert.equal(Buffer.compare(readFileSync(varsPath), v1), 0, 'forced: the newest generation, 4 (v1)');
  // A state in use (QEMU holds its NVRAM): refused whole, force or not, before anything is journaled or written —
  // the agent would refuse that one alone and write the TPM state, leaving the VM with two times.
  const restores = async (): Promise<number> =>
    (JSON.parse(await ok('ops', 'list', '--kind', 'vm.restore', '--json')) as unknown[]).length;
  const before = await restores();
  const lock = await holdLock(varsPath);
  try {
    for (const flags of [[], ['--force']]) {
      const busy = await cli('restore', 'a', ...flags);
      assert.equal(busy.status, 1, flags.join(' '));
      assert.match(
        busy.stderr,
        new RegExp(`VM a's NvRam state ${varsPath} on h0 is in use by a running swtpm or QEMU`),
      );
    }
  } finally {
    await lock.release();
  }
  assert.equal(await restores(), before, 'nothing journaled');

  // state keep N: the database's N; the oldest beyond the last N go at the next capture, never the newest.
  assert.deepEqual(JSON.parse(await ok('state', 'keep', '--json')), { keepGenerations: 5 });
  assert.match(
    await ok('state', 'keep', '2'),
    /the last 2 generations of each type are kept \(was 5\): each VM's next/,
  );
  assert.equal((await nvram()).length, 4, 'a lower N drops nothing by itself');
  writeFileSync(varsPath, randomBytes(100));
  await ok('sync', 'a');
  assert.deepEqual(
    (await nvram()).map(([g]) => g),
    [5, 4],
  );
  for (const bad of ['0', '10000', 'x']) {
    const refused = await cli('state', 'keep', bad);
    assert.equal(refused.status, 2, bad);
    assert.match(refused.stderr, new RegExp(`N is a whole number from 1 to 9999, not ${bad}`));
  }
  assert.equal(await ok('state', 'keep'), 'the last 2 generations of each type are kept\n');
  // No per-process value remains: sync --keep is refused, with the way.
  const perProcess = await cli('sync', 'a', '--keep', '2');
  assert.equal(perProcess.status, 2);
  assert.match(perProcess.stderr, /--keep is gone: .*the database's.*\n.*hostfiles state keep 2/s);

  // A TPM removal of a UEFI VM without secure boot deletes both states: every generation goes with them.
  await ok('tpm', 'remove', 'a');
  assert.deepEqual((await history()).generations, []);
});

test("CLI: restore --type NvRam writes that type's newest backup alone; the VM's TPM state is left as it is", async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-restore-type-');
  const { dir, cli, ok } = workspace;
  const { agent, varsPath } = await oneVmOnOneHost(t, workspace);
  // Both types backed up: a write onto the VM's host is a capture (generation 1 of each).
  const tpmDir = join(agent.setup.roots.TpmState, 'a');
  const tpmFrom = join(dir, 'tpm');
  mkdirSync(join(tpmFrom, 'tpm2'), { recursive: true });
  writeFileSync(join(tpmFrom, 'tpm2', 'tpm2-00.permall'), 'permall, backed up');
  const vars = randomBytes(4096);
  writeFileSync(join(dir, 'vars'), vars);
  await ok('file', 'write', 'a', '--type', 'TpmState', '--path', tpmDir, '--from', tpmFrom);
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', varsPath, '--from', join(dir, 'vars'));
  const tpmRow = async (): Promise<unknown> =>
    (JSON.parse(await ok('file', 'list', 'a', '--json')) as { type: string; sha256: string }[]).find(
      (f) => f.type === 'TpmState',
    );
  const recorded = await tpmRow();

  // The NVRAM is lost; the guest wrote its TPM since, and nothing synced it: a whole restore would write over it.
  rmSync(varsPath);
  const permall = join(tpmDir, 'tpm2', 'tpm2-00.permall');
  writeFileSync(permall, 'permall, written by the guest since');
  const inode = statSync(permall).ino;
  const whole = await cli('restore', 'a');
  assert.equal(whole.status, 1);
  assert.match(whole.stderr, /VM a's TpmState state \S+ on h0 changed since it was last recorded/);

  const restored = JSON.parse(await ok('restore', 'a', '--type', 'NvRam', '--json')) as {
    generations: unknown;
    files: { type: string; path: string; status: string }[];
  };
  assert.deepEqual(restored.generations, [{ type: 'NvRam', generation: 1 }]);
  assert.deepEqual(
    restored.files.map((f) => [f.type, f.path, f.status]),
    [['NvRam', varsPath, 'written']],
  );
  assert.equal(Buffer.compare(readFileSync(varsPath), vars), 0, 'the newest NvRam backup, byte-identical');
  assert.equal(readFileSync(permall, 'utf8'), 'permall, written by the guest since', 'the TPM state untouched');
  assert.equal(statSync(permall).ino, inode, 'not even written again');
  assert.deepEqual(await tpmRow(), recorded, 'its record too');

  // A path for the type not restored is refused, not left unused; a type with no backup is said so.
  const astray = await cli('restore', 'a', '--type', 'NvRam', '--tpm-path', tpmDir);
  assert.equal(astray.status, 2);
  assert.match(astray.stderr, /a TpmState path was given, but this restore of VM a writes only NvRam/);
  await ok('vm', 'add', 'b', '--host', 'h0', '--uefi');
  await ok(
    'file',
    'write',
    'b',
    '--type',
    'NvRam',
    '--path',
    join(agent.setup.roots.NvRam, 'b_VARS.fd'),
    '--from',
    join(dir, 'vars'),
  );
  const none = await cli('restore', 'b', '--type', 'TpmState');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /VM b has no TpmState backup: sync it first/);
  assert.match(await ok('restore', '--help'), /--type TYPE\s+only this type's backup/);
});

test('CLI: vm recover after a host was lost, and the lost host back: its stale copy deleted, never captured', async (t) => {
  const { dir, key, cli, ok } = await initWorkspace(t, 'hostfiles-recover-');
  const setup0 = setupAgent({ controllerKey: key });
  const setup1 = setupAgent({ controllerKey: key });
  const agent1 = await startAgent(setup1);
  let agent0 = await startAgent(setup0);
  t.after(async () => {
    await agent0.stop();
    await agent1.stop();
    removeSetup(setup0);
    removeSetup(setup1);
  });
  await ok('host', 'add', 'h0', agent0.url, '--expect-key', agent0.publicKey);
  await ok('host', 'add', 'h1', agent1.url, '--expect-key', agent1.publicKey);
  await ok('vm', 'add', 'a', '--host', 'h0', '--uefi', '--secure-boot');
  const old = join(setup0.roots.NvRam, 'a_VARS.fd');
  const from = join(dir, 'vars');
  writeFileSync(from, randomBytes(256));
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', old, '--from', from);

  await agent0.stop('SIGKILL');
  const missing = await cli('vm', 'recover', 'a', '--to', 'nohost');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no host nohost/);
  // h0's machine refuses connections (only its agent is down, as far as anyone can tell): not lost until said so.
  const up = await cli('vm', 'recover', 'a', '--to', 'h1');
  assert.equal(up.status, 1);
  assert.match(up.stderr, /host_in_use: VM a's host h0 refuses connections: the machine is up.*--host-lost/s);
  const recovered = JSON.parse(await ok('vm', 'recover', 'a', '--to', 'h1', '--host-lost', '--json')) as {
    epoch: number;
    scheduled: { path: string }[];
    generations: unknown;
  };
  assert.deepEqual(
    [recovered.epoch, recovered.scheduled.map((p) => p.path), recovered.generations],
    [1, [old], [{ type: 'NvRam', generation: 1 }]],
  );
  const now = join(setup1.roots.NvRam, 'a_VARS.fd');
  assert.equal(Buffer.compare(readFileSync(now), readFileSync(from)), 0);
  const pending = JSON.parse(await ok('pending', 'list', '--json')) as { path: string }[];
  assert.deepEqual(
    pending.map((p) => p.path),
    [old],
  );
  assert.match(await ok('ops', 'list', '--kind', 'vm.recover'), /vm\.recover\s+done/);

  // h0 back with its stale copy: a sync reads only h1, the retry deletes the copy.
  agent0 = await startAgent(
    setupAgent({
      dir: setup0.dir,
      controllerKey: key,
      config: { listen: { host: '127.0.0.1', port: agent0.port }, hostUuid: setup0.hostUuid },
    }),
  );
  assert.match(await ok('sync', 'a'), /backup NvRam: 256 bytes from h1 \S+, generation 1 \(unchanged\)/);
  await ok('retry');
  assert.equal(existsSync(old), false, "h0's stale copy is deleted");
  assert.deepEqual(
    (await historyOf(ok)).generations.map((g) => [g.generation, g.hostName]),
    [[1, 'h0']],
  );
});

async function historyOf(ok: (...args: string[]) => Promise<string>): Promise<History> {
  return JSON.parse(await ok('state', 'history', 'a', '--json')) as History;
}

test("state keep N: serve's API syncs and a shell's file write all keep the database's N", async (t) => {
  const { dir, db, key, cli, ok } = await initWorkspace(t, 'hostfiles-keep-', { remove: false });
  const agent = await startAgent(setupAgent({ controllerKey: key }));
  const tokenFile = join(dir, 'api.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  // serve first, then the agent and the directory its database is in
  const running: { server?: Served } = {};
  t.after(async () => {
    running.server?.child.kill('SIGTERM');
    await running.server?.exited;
    await agent.stop();
    removeSetup(agent.setup);
    rmSync(dir, { recursive: true, force: true });
  });
  await ok('host', 'add', 'h0', agent.url, '--expect-key', agent.publicKey);
  await ok('vm', 'add', 'a', '--host', 'h0', '--uefi', '--secure-boot');
  const vars = join(agent.setup.roots.NvRam, 'a_VARS.fd');
  const from = join(dir, 'vars');
  writeFileSync(from, randomBytes(64));
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', vars, '--from', from);
  // A unit file still giving serve its own N fails at once, naming the command that sets the database's.
  const refused = await cli('serve', '--token-file', tokenFile, '--keep-generations', '30');
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /--keep-generations is gone: .*\n.*`hostfiles state keep 30`/s);

  await ok('state', 'keep', '2');
  const server = await startServe(['--db', db, '--token-file', tokenFile, '--listen', '127.0.0.1:0']);
  running.server = server;
  const syncs = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      writeFileSync(vars, randomBytes(64));
      assert.equal((await apiCall(server, TOKEN, 'POST', '/v1/vms/a/sync')).status, 200);
    }
  };
  await syncs(3);
  const kept = async (): Promise<number[]> => (await historyOf(ok)).generations.map((g) => g.generation);
  assert.deepEqual(await kept(), [4, 3], 'the write (1) and three syncs (2, 3, 4): the last 2 kept');

  // Raised while serve runs: its next captures keep 7, no restart (every capture reads the database's value).
  assert.deepEqual(JSON.parse(await ok('state', 'keep', '7', '--json')), { keepGenerations: 7, previous: 2 });
  await syncs(6);
  assert.deepEqual(await kept(), [10, 9, 8, 7, 6, 5, 4]);
  // The bug this fixes: a shell's `file write` pruned to its own default (5), dropping what serve was told to keep.
  writeFileSync(from, randomBytes(64));
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', vars, '--from', from);
  assert.deepEqual(await kept(), [11, 10, 9, 8, 7, 6, 5], "a shell's capture keeps the database's 7 too");
});
