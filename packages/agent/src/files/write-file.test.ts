import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEMP_PREFIX } from './temp-name.js';
import { flockAvailable, holdFlock, treeOf, useTestRoots } from './test-roots.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

test('write creates missing parents 0700 and the file 0600, and leaves no temp file', async (t) => {
  const { roots, store } = useTestRoots(t);
  const answer = await store.write('TpmState', ['vm-1', 'tpm2', 'tpm2-00.permall'], Buffer.from('state'));
  assert.deepEqual(answer, { status: 'written' });
  for (const dir of ['vm-1', 'vm-1/tpm2']) {
    const stats = lstatSync(join(roots.TpmState, dir));
    assert.ok(stats.isDirectory());
    assert.equal(stats.mode & 0o777, 0o700, dir);
  }
  const file = join(roots.TpmState, 'vm-1/tpm2/tpm2-00.permall');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readFileSync(file, 'utf8'), 'state');
  assert.deepEqual(treeOf(roots.TpmState), ['vm-1', 'vm-1/tpm2', 'vm-1/tpm2/tpm2-00.permall']);
});

test('overwrite replaces the file by rename: a new inode, the new content, no temp file', async (t) => {
  const { roots, store } = useTestRoots(t);
  const file = join(roots.NvRam, 'vm-1', 'VARS.fd');
  assert.equal((await store.write('NvRam', ['vm-1', 'VARS.fd'], Buffer.from('old'))).status, 'written');
  const before = statSync(file).ino;
  assert.equal((await store.write('NvRam', ['vm-1', 'VARS.fd'], Buffer.from('new content'))).status, 'written');
  assert.equal(readFileSync(file, 'utf8'), 'new content');
  // In-place writing would keep the inode; a rename over the target gives a new one.
  assert.notEqual(statSync(file).ino, before);
  assert.deepEqual(readdirSync(join(roots.NvRam, 'vm-1')), ['VARS.fd']);
});

test('a concurrent reader sees the old or the new file, never a torn one', async (t) => {
  const { roots, store } = useTestRoots(t);
  const size = 1 << 20;
  const versions = [Buffer.alloc(size, 'a'), Buffer.alloc(size, 'b')] as const;
  await store.write('TpmState', ['vm', 'f'], versions[0]);
  // An object, not a `let`: the flag is flipped inside the writer's closure.
  const state = { writing: true };
  const writer = (async () => {
    try {
      for (let i = 1; i <= 40; i++) {
        assert.equal((await store.write('TpmState', ['vm', 'f'], versions[i % 2] ?? versions[0])).status, 'written');
      }
    } finally {
      state.writing = false;
    }
  })();
  let reads = 0;
  while (state.writing) {
    const seen = await readFile(join(roots.TpmState, 'vm', 'f'));
    assert.ok(seen.equals(versions[0]) || seen.equals(versions[1]), 'a torn or partial file was read');
    reads += 1;
  }
  await writer;
  assert.ok(reads > 0);
});

test('write over a directory or below a file answers not_regular_file and leaves no temp file', async (t) => {
  const { roots, store } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'vm', 'dir'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'vm', 'file'), 'x');
  const overDir = await store.write('TpmState', ['vm', 'dir'], Buffer.from('y'));
  assert.equal(overDir.status === 'failed' && overDir.error.code, 'not_regular_file');
  const belowFile = await store.write('TpmState', ['vm', 'file', 'child'], Buffer.from('y'));
  assert.equal(belowFile.status === 'failed' && belowFile.error.code, 'not_regular_file');
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/dir', 'vm/file']);
  assert.ok(!treeOf(roots.TpmState).some((p) => p.includes(TEMP_PREFIX)));
});

test("ownership per root: files owner:group fileMode; dirs below the root the agent's own with topDirMode; deeper owner:group dirMode", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('chown needs root');
    return;
  }
  const tpm = { uid: 4242, gid: 4343, fileMode: 0o640, dirMode: 0o750, topDirMode: 0o711 };
  const { roots, store } = useTestRoots(t, { ownership: { TpmState: tpm } });
  mkdirSync(join(roots.TpmState, 'existing'), { mode: 0o755 });
  assert.equal((await store.write('TpmState', ['existing', 'made', 'f'], Buffer.from('x'))).status, 'written');
  assert.equal((await store.write('TpmState', ['top', 'deeper', 'f'], Buffer.from('x'))).status, 'written');
  assert.equal((await store.write('NvRam', ['vm', 'VARS.fd'], Buffer.from('x'))).status, 'written');
  for (const [root, path, uid, gid, mode] of [
    [roots.TpmState, 'existing', 0, 0, 0o755],
    [roots.TpmState, 'existing/made', 4242, 4343, 0o750],
    [roots.TpmState, 'existing/made/f', 4242, 4343, 0o640],
    [roots.TpmState, 'top', 0, 0, 0o711],
    [roots.TpmState, 'top/deeper', 4242, 4343, 0o750],
    [roots.NvRam, 'vm', 0, 0, 0o700],
    [roots.NvRam, 'vm/VARS.fd', 0, 0, 0o600],
  ] as const) {
    const stats = lstatSync(join(root, path));
    assert.deepEqual([stats.uid, stats.gid, stats.mode & 0o777], [uid, gid, mode], path);
  }
});

test('expect: absent refuses an existing file (exists); a sha256 must match the current file (changed)', async (t) => {
  const { roots, store } = useTestRoots(t);
  const file = join(roots.NvRam, 'vm_VARS.fd');
  const codeOf = (a: { status: string; error?: { code: string } }): string => a.error?.code ?? a.status;
  assert.equal(codeOf(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('one'), sha256('one'))), 'changed');
  assert.equal(existsSync(file), false, 'an absent target with a digest expected is not written');
  assert.equal(codeOf(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('one'), 'absent')), 'written');
  assert.equal(codeOf(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('two'), 'absent')), 'exists');
  // A repeat of the write that landed (its answer lost) finds exactly its own bytes: that is no conflict.
  assert.equal(codeOf(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('one'), 'absent')), 'written');
  assert.equal(codeOf(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('two'), sha256('other'))), 'changed');
  assert.equal(readFileSync(file, 'utf8'), 'one');
  assert.equal(codeOf(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('two'), sha256('one'))), 'written');
  assert.equal(readFileSync(file, 'utf8'), 'two');
  assert.deepEqual(treeOf(roots.NvRam), ['vm_VARS.fd'], 'no temp file left by the refusals');
});

test('a write over a file someone holds a lock on answers busy and changes nothing', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  const file = join(roots.NvRam, 'vm_VARS.fd');
  await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('held'));
  const inode = statSync(file).ino;
  const lock = await holdFlock(t, file);
  const answer = await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('new'));
  assert.equal(answer.status === 'failed' && answer.error.code, 'busy');
  assert.equal(readFileSync(file, 'utf8'), 'held');
  assert.equal(statSync(file).ino, inode);
  assert.deepEqual(treeOf(roots.NvRam), ['vm_VARS.fd']);
  await lock.release();
  assert.equal((await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('new'))).status, 'written');
});

test('a target name too long for a temp name with it is still written', async (t) => {
  const { roots, store } = useTestRoots(t);
  const name = 'n'.repeat(250);
  assert.equal((await store.write('NvRam', ['vm', name], Buffer.from('x'))).status, 'written');
  assert.deepEqual(readdirSync(join(roots.NvRam, 'vm')), [name]);
});

test('a write or delete anywhere inside a state whose lock is held answers busy: busy is of the whole unit', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  const tpm2 = join(roots.TpmState, 'uuid', 'tpm2');
  await store.write('TpmState', ['uuid', 'tpm2', 'tpm2-00.permall'], Buffer.from('state'));
  writeFileSync(join(tpm2, '.lock'), '');
  await holdFlock(t, join(tpm2, '.lock'));
  const codes = [
    await store.write('TpmState', ['uuid', 'tpm2', 'tpm2-00.permall'], Buffer.from('other')),
    await store.write('TpmState', ['uuid', 'new-file'], Buffer.from('other')),
    await store.remove('TpmState', ['uuid', 'tpm2', 'tpm2-00.permall']),
    await store.writeDir('TpmState', ['uuid', 'tpm2'], [{ components: ['f'], content: Buffer.from('x') }]),
  ].map((a) => (a.status === 'failed' ? a.error.code : a.status));
  assert.deepEqual(codes, ['busy', 'busy', 'busy', 'busy']);
  assert.deepEqual(treeOf(join(roots.TpmState, 'uuid')), ['tpm2', 'tpm2/.lock', 'tpm2/tpm2-00.permall']);
  assert.equal(readFileSync(join(tpm2, 'tpm2-00.permall'), 'utf8'), 'state');
  // Another unit is not held by that lock.
  assert.equal((await store.write('TpmState', ['other', 'f'], Buffer.from('x'))).status, 'written');
});

// A write opens a state directory it has seen first, and makes one it has not first (walk.ts, known-units.ts): each
// guess, right or wrong, must end in the same answer and tree.
test('a state directory removed, or swapped for a file, behind the store after it was seen: the next write still answers right', async (t) => {
  const { roots, store } = useTestRoots(t);
  const unit = join(roots.TpmState, 'vm-1');
  const write = (): Promise<{ status: string; error?: { code: string } }> =>
    store.write('TpmState', ['vm-1', 'tpm2', 'f'], Buffer.from('state'));
  assert.equal((await write()).status, 'written');
  // Seen, then removed by someone else: opened first, found missing, made.
  rmSync(unit, { recursive: true });
  assert.equal((await write()).status, 'written');
  assert.equal(readFileSync(join(unit, 'tpm2', 'f'), 'utf8'), 'state');
  // Seen, then a file in its place: not a directory, nothing made or replaced.
  rmSync(unit, { recursive: true });
  writeFileSync(unit, 'not a state');
  const refused = await write();
  assert.equal(refused.status === 'failed' && refused.error?.code, 'not_regular_file');
  assert.equal(readFileSync(unit, 'utf8'), 'not a state');
  // Deleted by the store: forgotten, and made first again by the next write.
  rmSync(unit);
  assert.equal((await write()).status, 'written');
  assert.equal((await store.remove('TpmState', ['vm-1', 'tpm2', 'f'])).status, 'deleted');
  assert.equal(existsSync(unit), false, 'the emptied state directory was pruned');
  assert.equal((await write()).status, 'written');
  assert.deepEqual(treeOf(roots.TpmState), ['vm-1', 'vm-1/tpm2', 'vm-1/tpm2/f']);
});
