import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stateDigest } from '@hostfiles/shared';
import { readProcLocks } from './locks.js';
import { TEMP_PREFIX } from './temp-name.js';
import { flockAvailable, holdFlock, treeOf, useTestRoots } from './test-roots.js';
import type { StateEntry } from './types.js';

const sha = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');
const state = (files: Record<string, string>): StateEntry[] =>
  Object.entries(files).map(([path, text]) => ({ components: path.split('/'), content: Buffer.from(text) }));
const digestOf = (files: Record<string, string>): string =>
  stateDigest(Object.entries(files).map(([path, text]) => ({ path, sha256: sha(text) })));
const codeOf = (a: { status: string; error?: { code: string } }): string => a.error?.code ?? a.status;

const V1 = { 'tpm2/tpm2-00.permall': 'permall v1', 'tpm2/tpm2-00.volatilestate': 'volatile v1' };
const V2 = { 'tpm2/tpm2-00.permall': 'permall v2', 'tpm2/sub/extra': 'extra v2' };

function contentOf(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const path of treeOf(dir)) {
    if (lstatSync(join(dir, path)).isFile()) files[path] = readFileSync(join(dir, path), 'utf8');
  }
  return files;
}

test('writeDir makes a state, then replaces it with exactly the new files; no temp name is left', async (t) => {
  const { roots, store } = useTestRoots(t);
  const dir = join(roots.TpmState, 'uuid');
  assert.deepEqual(await store.writeDir('TpmState', ['uuid'], state(V1)), { status: 'written' });
  assert.deepEqual(contentOf(dir), V1);
  const first = statSync(dir).ino;
  assert.deepEqual(await store.writeDir('TpmState', ['uuid'], state(V2)), { status: 'written' });
  assert.deepEqual(contentOf(dir), V2, 'the old volatilestate is gone: the state is replaced whole');
  assert.notEqual(statSync(dir).ino, first, 'a new tree renamed in, not files written in place');
  assert.deepEqual(await store.writeDir('TpmState', ['uuid'], state(V2)), { status: 'written' });
  assert.deepEqual(readdirSync(roots.TpmState), ['uuid']);
  const stat = await store.stat('TpmState', ['uuid']);
  assert.equal(stat.status === 'present' && stat.sha256, digestOf(V2));
});

test('writeDir deeper than a unit makes the parents; a state below a file or a link is refused', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  assert.equal(codeOf(await store.writeDir('TpmState', ['a', 'b', 'uuid'], state(V1))), 'written');
  assert.deepEqual(contentOf(join(roots.TpmState, 'a', 'b', 'uuid')), V1);
  writeFileSync(join(roots.TpmState, 'file'), 'x');
  symlinkSync(outside, join(roots.TpmState, 'link'));
  assert.equal(codeOf(await store.writeDir('TpmState', ['file'], state(V1))), 'not_directory');
  assert.equal(codeOf(await store.writeDir('TpmState', ['file', 'uuid'], state(V1))), 'not_directory');
  assert.equal(codeOf(await store.writeDir('TpmState', ['link'], state(V1))), 'symlink');
  assert.equal(codeOf(await store.writeDir('TpmState', ['link', 'uuid'], state(V1))), 'symlink');
  assert.equal(codeOf(await store.writeDir('TpmState', ['n'.repeat(240)], state(V1))), 'io_error');
  assert.deepEqual(readdirSync(outside), []);
  assert.ok(!treeOf(roots.TpmState).some((p) => p.includes(TEMP_PREFIX)));
});

test('writeDir expect: absent refuses an existing state, a digest must be the current one', async (t) => {
  const { roots, store } = useTestRoots(t);
  const dir = join(roots.TpmState, 'uuid');
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V1), digestOf(V1))), 'changed');
  assert.deepEqual(readdirSync(roots.TpmState), []);
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V1), 'absent')), 'written');
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2), 'absent')), 'exists');
  // A repeat of the write that landed (its answer lost) finds exactly its own state: that is no conflict.
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V1), 'absent')), 'written');
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2), digestOf(V2))), 'changed');
  assert.deepEqual(contentOf(dir), V1);
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2), digestOf(V1))), 'written');
  assert.deepEqual(contentOf(dir), V2);
  assert.deepEqual(readdirSync(roots.TpmState), ['uuid']);
});

test('writeDir ownership: <uuid> keeps the agent owner with topDirMode, tpm2 and files get owner:group', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('chown needs root');
    return;
  }
  const ownership = { uid: 4242, gid: 4343, fileMode: 0o600, dirMode: 0o700, topDirMode: 0o711 };
  const { roots, store } = useTestRoots(t, { ownership: { TpmState: ownership } });
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2))), 'written');
  for (const [path, uid, gid, mode] of [
    ['uuid', 0, 0, 0o711],
    ['uuid/tpm2', 4242, 4343, 0o700],
    ['uuid/tpm2/sub', 4242, 4343, 0o700],
    ['uuid/tpm2/tpm2-00.permall', 4242, 4343, 0o600],
    ['uuid/tpm2/sub/extra', 4242, 4343, 0o600],
  ] as const) {
    const stats = lstatSync(join(roots.TpmState, path));
    assert.deepEqual([stats.uid, stats.gid, stats.mode & 0o777], [uid, gid, mode], path);
  }
});

test('writeDir over a state whose lock is held answers busy; state and lock stay byte for byte', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  const dir = join(roots.TpmState, 'uuid');
  await store.writeDir('TpmState', ['uuid'], state(V1));
  writeFileSync(join(dir, 'tpm2', '.lock'), 'lock bytes');
  const lock = await holdFlock(t, join(dir, 'tpm2', '.lock'));
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2))), 'busy');
  assert.deepEqual(contentOf(dir), { ...V1, 'tpm2/.lock': 'lock bytes' });
  assert.deepEqual(readdirSync(roots.TpmState), ['uuid'], 'the staged state is gone');
  await lock.release();
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2))), 'written');
  assert.deepEqual(contentOf(dir), V2, 'the lock file went with the old state');
});

test('a lock taken between the last check and the move aside puts the old state back and drops the new', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const box = { root: '', calls: 0 };
  const { roots, store } = useTestRoots(t, {
    // Look 1 is before staging, 2 and 3 right before and after the commit; look 4 comes right after the move aside.
    readLocks: async () => {
      box.calls += 1;
      if (box.calls === 4) await holdFlock(t, join(box.root, `${TEMP_PREFIX}old.uuid`, 'tpm2', '.lock'));
      return readProcLocks();
    },
  });
  box.root = roots.TpmState;
  await store.writeDir('TpmState', ['uuid'], state(V1));
  writeFileSync(join(roots.TpmState, 'uuid', 'tpm2', '.lock'), '');
  const inode = statSync(join(roots.TpmState, 'uuid')).ino;
  box.calls = 0;
  assert.equal(codeOf(await store.writeDir('TpmState', ['uuid'], state(V2))), 'busy');
  assert.equal(box.calls, 4);
  assert.deepEqual(readdirSync(roots.TpmState), ['uuid']);
  assert.equal(statSync(join(roots.TpmState, 'uuid')).ino, inode, 'the very tree is back');
  assert.deepEqual(contentOf(join(roots.TpmState, 'uuid')), { ...V1, 'tpm2/.lock': '' });
});

test('two replaces of one state at once run one after the other: the state is one of them, whole', async (t) => {
  const { roots, store } = useTestRoots(t);
  const versions = Array.from({ length: 6 }, (_, i) => ({ 'tpm2/tpm2-00.permall': `v${i}`, [`tpm2/only-${i}`]: 'x' }));
  const answers = await Promise.all(versions.map((files) => store.writeDir('TpmState', ['uuid'], state(files))));
  assert.ok(answers.every((a) => a.status === 'written'));
  assert.deepEqual(contentOf(join(roots.TpmState, 'uuid')), versions.at(-1), 'in call order, the last one wins');
  assert.deepEqual(readdirSync(roots.TpmState), ['uuid']);
});
