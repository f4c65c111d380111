// File semantics through a real agent over HTTP: read, list, trees, symlinks, and a link swapped in mid-run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { removeSetup, startAgent, type AgentHandle } from './support/agent-process.js';
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

test('written files can be listed with size and sha256, read back, and deleted as a tree', async () => {
  const files = { [join(tpmRoot, 'vm-a', 'tpm2-00.permall')]: 'tpm a', [join(nvRoot, 'vm-a_VARS.fd')]: 'nvram a' };
  const ops = Object.entries(files).map(([path, text]) =>
    writeOp(path.startsWith(tpmRoot) ? 'TpmState' : 'NvRam', path, text),
  );
  const written = await send(client, 'files.apply', { ops });
  assert.deepEqual(
    written.results.map((r) => r.status),
    ['written', 'written'],
  );

  const listed = await send(client, 'files.list', { types: ['TpmState', 'NvRam'] });
  for (const [path, text] of Object.entries(files)) {
    const entry = listed.results.find((e) => e.path === path);
    assert.ok(entry, `${path} is listed`);
    assert.equal(entry.size, text.length);
    assert.equal(entry.sha256, sha(text));
  }
  const read = await send(client, 'files.read', {
    files: [
      { type: 'TpmState', path: join(tpmRoot, 'vm-a', 'tpm2-00.permall') },
      { type: 'TpmState', path: join(tpmRoot, 'vm-a', 'missing') },
    ],
  });
  assert.equal(Buffer.from(read.results[0]?.content ?? '', 'base64').toString(), 'tpm a');
  assert.equal(read.results[0]?.sha256, sha('tpm a'));
  assert.deepEqual(
    read.results.map((r) => r.error?.code),
    [undefined, 'not_found'],
  );

  mkdirSync(join(tpmRoot, 'vm-a', 'deeper', 'still'), { recursive: true });
  symlinkSync(outside, join(tpmRoot, 'vm-a', 'deeper', 'link-out'));
  const removed = await send(client, 'files.apply', {
    ops: [deleteOp('TpmState', join(tpmRoot, 'vm-a')), deleteOp('NvRam', join(nvRoot, 'gone'))],
  });
  assert.deepEqual(
    removed.results.map((r) => r.status),
    ['deleted', 'absent'],
  );
  assert.equal(existsSync(join(tpmRoot, 'vm-a')), false);
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
  assert.deepEqual(
    read.results.map((r) => [r.status, r.error?.code, r.content]),
    [['failed', 'symlink', undefined]],
  );
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
