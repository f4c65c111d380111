// File semantics through a real agent over HTTP: read, list, trees, symlinks, and a link swapped in mid-run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { removeSetup, startAgent, type AgentHandle } from './support/agent-process.js';
import { stateDigest, writeDirOp } from '@hostfiles/shared';
import { agentInfo, deleteOp, send, writeOp, type AgentClient } from './support/commands.js';

let agent: AgentHandle;
let client: AgentClient;
let tpmRoot: string;
let nvRoot: string;
let outside: string;

before(async () => {
  agent = await startAgent();
  client = {
    url: agent.url,
    hostUuid: agent.setup.hostUuid,
    key: agent.setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
  ({ TpmState: tpmRoot, NvRam: nvRoot } = agent.setup.roots);
  outside = agent.setup.outside;
  writeFileSync(join(outside, 'precious'), 'do not touch');
});
after(async () => {
  assert.equal(await agent.stop(), 0);
  assert.deepEqual(readdirSync(outside), ['precious']);
  assert.equal(readFileSync(join(outside, 'precious'), 'utf8'), 'do not touch');
  removeSetup(agent.setup);
});

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

test('a state directory and a file: listed as units, stated, read back whole, deleted as a tree', async () => {
  const stateDir = join(tpmRoot, 'vm-a');
  const nvram = join(nvRoot, 'vm-a_VARS.fd');
  const files = { 'tpm2/tpm2-00.permall': 'tpm a', 'tpm2/tpm2-00.volatilestate': 'volatile a' };
  const written = await send(client, 'files.apply', {
    ops: [
      writeDirOp(
        'TpmState',
        stateDir,
        Object.entries(files).map(([path, text]) => ({ path, content: Buffer.from(text) })),
      ),
      writeOp('NvRam', nvram, 'nvram a'),
    ],
  });
  assert.deepEqual(
    written.results.map((r) => [r.op, r.status]),
    [
      ['writeDir', 'written'],
      ['write', 'written'],
    ],
  );
  const digest = stateDigest(Object.entries(files).map(([path, text]) => ({ path, sha256: sha(text) })));

  const listed = await send(client, 'files.list', { types: ['TpmState', 'NvRam'] });
  assert.deepEqual(listed.roots, agent.setup.roots);
  assert.deepEqual(
    listed.results.map((u) => [u.type, u.path, u.kind, u.size, u.sha256, u.files, u.busy]),
    [
      ['NvRam', nvram, 'file', 7, sha('nvram a'), 1, false],
      ['TpmState', stateDir, 'dir', 15, digest, 2, false],
    ],
    'sorted by path: the nvram root sorts before the swtpm root here',
  );
  const stat = await send(client, 'files.stat', {
    files: [
      { type: 'TpmState', path: stateDir },
      { type: 'TpmState', path: join(tpmRoot, 'vm-missing') },
    ],
  });
  assert.deepEqual(stat.roots, agent.setup.roots);
  assert.deepEqual(
    stat.results.map((r) => [r.status, r.status === 'present' ? r.sha256 : undefined]),
    [
      ['present', digest],
      ['absent', undefined],
    ],
  );

  const read = await send(client, 'files.read', {
    files: [
      { type: 'TpmState', path: stateDir },
      { type: 'NvRam', path: nvram },
      { type: 'TpmState', path: join(tpmRoot, 'vm-a', 'missing') },
    ],
  });
  const [dir, file, missing] = read.results;
  assert.ok(dir?.status === 'read' && dir.kind === 'dir');
  assert.equal(dir.sha256, digest);
  assert.deepEqual(
    dir.entries.map((e) => [e.path, Buffer.from(e.content, 'base64').toString(), e.sha256, e.size]),
    Object.entries(files).map(([path, text]) => [path, text, sha(text), text.length]),
  );
  assert.ok(file?.status === 'read' && file.kind === 'file');
  assert.equal(Buffer.from(file.content, 'base64').toString(), 'nvram a');
  assert.equal(file.sha256, sha('nvram a'));
  assert.equal(missing?.status === 'failed' && missing.error.code, 'not_found');

  mkdirSync(join(stateDir, 'deeper', 'still'), { recursive: true });
  symlinkSync(outside, join(stateDir, 'deeper', 'link-out'));
  const removed = await send(client, 'files.apply', {
    ops: [deleteOp('TpmState', stateDir, digest), deleteOp('NvRam', nvram), deleteOp('NvRam', join(nvRoot, 'gone'))],
  });
  assert.deepEqual(
    removed.results.map((r) => r.status),
    ['deleted', 'deleted', 'absent'],
  );
  assert.deepEqual(readdirSync(tpmRoot), []);
  assert.deepEqual(readdirSync(nvRoot), []);
  assert.ok(existsSync(join(outside, 'precious')), 'the link was removed as a link');
});

test('a symlink as target or as a directory on the way: failed with code symlink, nothing outside changes', async () => {
  symlinkSync(join(outside, 'precious'), join(tpmRoot, 'target-link'));
  mkdirSync(join(tpmRoot, 'vm-b'));
  symlinkSync(outside, join(tpmRoot, 'vm-b', 'dir-link'));
  const answer = await send(client, 'files.apply', {
    ops: [
      writeOp('TpmState', join(tpmRoot, 'target-link'), 'evil'),
      deleteOp('TpmState', join(tpmRoot, 'target-link')),
      writeOp('TpmState', join(tpmRoot, 'vm-b', 'dir-link', 'new'), 'evil'),
      deleteOp('TpmState', join(tpmRoot, 'vm-b', 'dir-link', 'precious')),
      writeOp('TpmState', join(tpmRoot, 'vm-b', 'fine'), 'ok'),
    ],
  });
  assert.deepEqual(
    answer.results.map((r) => [r.status, r.error?.code]),
    [
      ['failed', 'symlink'],
      ['failed', 'symlink'],
      ['failed', 'symlink'],
      ['failed', 'symlink'],
      ['written', undefined],
    ],
  );
  const read = await send(client, 'files.read', {
    files: [{ type: 'TpmState', path: join(tpmRoot, 'vm-b', 'dir-link', 'precious') }],
  });
  assert.deepEqual(read.results, [
    {
      op: 'read',
      type: 'TpmState',
      path: join(tpmRoot, 'vm-b', 'dir-link', 'precious'),
      status: 'failed',
      error: { code: 'symlink', message: 'a path component is a symbolic link' },
    },
  ]);
  rmSync(join(tpmRoot, 'target-link'));
  rmSync(join(tpmRoot, 'vm-b'), { recursive: true });
});

test('a directory swapped for a symlink while writes run never leads outside the root', async () => {
  const dir = join(tpmRoot, 'vm-race');
  mkdirSync(dir);
  let swaps = 0;
  const swapping = { running: true };
  const yieldToAgent = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
  // The agent makes missing parents, so it may re-create the directory in a gap: clear whatever stands there.
  const place = (make: () => void): void => {
    for (;;) {
      try {
        rmSync(dir, { recursive: true, force: true });
        make();
        return;
      } catch (error) {
        // The agent wrote into it or made it again meanwhile: try again.
        if (!['EEXIST', 'ENOTEMPTY', 'ENOENT'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
      }
    }
  };
  // Swap between requests and while they run: each round trip yields to the swapper below.
  const swapper = (async () => {
    while (swapping.running) {
      place(() => {
        symlinkSync(outside, dir);
      });
      swaps++;
      await yieldToAgent();
      place(() => {
        mkdirSync(dir);
      });
      await yieldToAgent();
    }
  })();
  const statuses = new Map<string, number>();
  for (let round = 0; round < 100; round++) {
    const answer = await send(client, 'files.apply', {
      ops: [
        writeOp('TpmState', join(dir, 'state'), `round ${round}`),
        writeOp('TpmState', join(dir, 'sub', 'state'), 'x'),
      ],
    });
    for (const r of answer.results)
      statuses.set(r.error?.code ?? r.status, (statuses.get(r.error?.code ?? r.status) ?? 0) + 1);
  }
  swapping.running = false;
  await swapper;
  assert.ok(swaps > 10, `the swapper ran (${swaps} swaps)`);
  assert.ok((statuses.get('symlink') ?? 0) > 0, `some ops met the link: ${JSON.stringify([...statuses])}`);
  assert.deepEqual(readdirSync(outside), ['precious'], 'nothing was written outside');
  // Whatever the race left, the agent still writes there once the directory holds still.
  place(() => {
    mkdirSync(dir);
  });
  const settled = await send(client, 'files.apply', { ops: [writeOp('TpmState', join(dir, 'state'), 'still')] });
  assert.equal(settled.results[0]?.status, 'written');
});
