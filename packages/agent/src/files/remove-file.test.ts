import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stateDigest } from '@hostfiles/shared';
import { readProcLocks } from './locks.js';
import { TEMP_PREFIX } from './temp-name.js';
import { flockAvailable, holdFlock, treeOf, useTestRoots } from './test-roots.js';

test('delete a file answers deleted, then absent', async (t) => {
  const { roots, store } = useTestRoots(t);
  await store.write('TpmState', ['vm', 'keep'], Buffer.from('k'));
  await store.write('TpmState', ['vm', 'f'], Buffer.from('x'));
  assert.deepEqual(await store.remove('TpmState', ['vm', 'f']), { status: 'deleted' });
  assert.equal(existsSync(join(roots.TpmState, 'vm', 'f')), false);
  assert.deepEqual(await store.remove('TpmState', ['vm', 'f']), { status: 'absent' });
  assert.deepEqual(await store.remove('TpmState', ['nope', 'deeper', 'f']), { status: 'absent' });
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/keep']);
});

test('delete a directory tree removes links inside as links, never what they point to', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  mkdirSync(join(outside, 'secret-dir'));
  writeFileSync(join(outside, 'secret-dir', 'data'), 'outside data');
  writeFileSync(join(outside, 'secret-file'), 'outside file');
  const tree = join(roots.TpmState, 'vm', 'tpm2');
  mkdirSync(join(tree, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(tree, 'a'), 'a');
  writeFileSync(join(tree, 'sub', 'deeper', 'b'), 'b');
  symlinkSync(join(outside, 'secret-dir'), join(tree, 'sub', 'link-to-dir'));
  symlinkSync(join(outside, 'secret-file'), join(tree, 'link-to-file'));
  assert.deepEqual(await store.remove('TpmState', ['vm', 'tpm2']), { status: 'deleted' });
  assert.equal(existsSync(join(roots.TpmState, 'vm')), false);
  assert.deepEqual(treeOf(outside), ['secret-dir', 'secret-dir/data', 'secret-file']);
  assert.equal(readFileSync(join(outside, 'secret-dir', 'data'), 'utf8'), 'outside data');
  assert.equal(readFileSync(join(outside, 'secret-file'), 'utf8'), 'outside file');
});

test('empty parents are pruned up to, not including, the root; a non-empty parent is kept', async (t) => {
  const { roots, store } = useTestRoots(t);
  await store.write('NvRam', ['a', 'b', 'c', 'f'], Buffer.from('x'));
  await store.write('NvRam', ['a', 'other'], Buffer.from('y'));
  await store.write('NvRam', ['solo', 'deep', 'f'], Buffer.from('z'));
  assert.equal((await store.remove('NvRam', ['a', 'b', 'c', 'f'])).status, 'deleted');
  assert.equal((await store.remove('NvRam', ['solo', 'deep', 'f'])).status, 'deleted');
  assert.deepEqual(treeOf(roots.NvRam), ['a', 'a/other']);
  assert.equal((await store.remove('NvRam', ['a', 'other'])).status, 'deleted');
  assert.deepEqual(treeOf(roots.NvRam), []);
  assert.ok(existsSync(roots.NvRam), 'the root itself stays');
});

test('an absent target still prunes the empty parents an interrupted delete left', async (t) => {
  const { roots, store } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'vm', 'tpm2'), { recursive: true });
  assert.deepEqual(await store.remove('TpmState', ['vm', 'tpm2', 'f']), { status: 'absent' });
  assert.deepEqual(treeOf(roots.TpmState), []);
});

test('delete of a state directory removes it whole, its lock file included, and prunes nothing above the root', async (t) => {
  const { roots, store } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'uuid', 'tpm2'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'uuid', 'tpm2', 'tpm2-00.permall'), 'state');
  writeFileSync(join(roots.TpmState, 'uuid', 'tpm2', '.lock'), '');
  assert.deepEqual(await store.remove('TpmState', ['uuid']), { status: 'deleted' });
  assert.deepEqual(treeOf(roots.TpmState), []);
});

test('delete with expect: an absent target is simply absent; exists and changed refuse and change nothing', async (t) => {
  const { roots, store } = useTestRoots(t);
  const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
  assert.deepEqual(await store.remove('NvRam', ['gone'], sha('x')), { status: 'absent' });
  assert.deepEqual(await store.remove('NvRam', ['gone'], 'absent'), { status: 'absent' });
  writeFileSync(join(roots.NvRam, 'vm_VARS.fd'), 'vars');
  const exists = await store.remove('NvRam', ['vm_VARS.fd'], 'absent');
  assert.equal(exists.status === 'failed' && exists.error.code, 'exists');
  const changed = await store.remove('NvRam', ['vm_VARS.fd'], sha('other'));
  assert.equal(changed.status === 'failed' && changed.error.code, 'changed');
  assert.deepEqual(treeOf(roots.NvRam), ['vm_VARS.fd']);
  assert.deepEqual(await store.remove('NvRam', ['vm_VARS.fd'], sha('vars')), { status: 'deleted' });
  mkdirSync(join(roots.TpmState, 'uuid', 'tpm2'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'uuid', 'tpm2', 'tpm2-00.permall'), 'p');
  const digest = stateDigest([{ path: 'tpm2/tpm2-00.permall', sha256: sha('p') }]);
  const wrong = await store.remove('TpmState', ['uuid'], sha('p'));
  assert.equal(wrong.status === 'failed' && wrong.error.code, 'changed', "a file's digest is not the directory's");
  assert.deepEqual(await store.remove('TpmState', ['uuid'], digest), { status: 'deleted' });
});

test('delete of a tree with a lock held on its lock file answers busy; the tree stays byte for byte', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  const tpm2 = join(roots.TpmState, 'uuid', 'tpm2');
  mkdirSync(tpm2, { recursive: true });
  writeFileSync(join(tpm2, 'tpm2-00.permall'), 'state');
  writeFileSync(join(tpm2, '.lock'), 'lock bytes');
  const lock = await holdFlock(t, join(tpm2, '.lock'));
  const answer = await store.remove('TpmState', ['uuid']);
  assert.equal(answer.status === 'failed' && answer.error.code, 'busy');
  assert.deepEqual(treeOf(roots.TpmState), ['uuid', 'uuid/tpm2', 'uuid/tpm2/.lock', 'uuid/tpm2/tpm2-00.permall']);
  assert.equal(readFileSync(join(tpm2, 'tpm2-00.permall'), 'utf8'), 'state');
  assert.equal(readFileSync(join(tpm2, '.lock'), 'utf8'), 'lock bytes');
  await lock.release();
  assert.deepEqual(await store.remove('TpmState', ['uuid']), { status: 'deleted' });
});

test('a lock taken between the last check and the move aside puts the target back and answers busy', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  let calls = 0;
  const env = { roots: { TpmState: '', NvRam: '' } };
  // The second look at the locks comes right after the move aside: a real lock is taken on the moved file first,
  // as a swtpm starting in that window would hold it.
  const { roots, store } = useTestRoots(t, {
    readLocks: async () => {
      calls += 1;
      if (calls === 2) {
        const aside = readdirSync(env.roots.NvRam).find((name) => name.startsWith(TEMP_PREFIX)) ?? '';
        await holdFlock(t, join(env.roots.NvRam, aside));
      }
      return readProcLocks();
    },
  });
  env.roots = roots;
  writeFileSync(join(roots.NvRam, 'vm_VARS.fd'), 'vars');
  const inode = statSync(join(roots.NvRam, 'vm_VARS.fd')).ino;
  const answer = await store.remove('NvRam', ['vm_VARS.fd']);
  assert.equal(answer.status === 'failed' && answer.error.code, 'busy');
  assert.equal(calls, 2);
  assert.deepEqual(treeOf(roots.NvRam), ['vm_VARS.fd'], 'back at its name, no temp name left');
  assert.equal(statSync(join(roots.NvRam, 'vm_VARS.fd')).ino, inode, 'the very file, not a copy');
  assert.equal(statSync(join(roots.NvRam, 'vm_VARS.fd')).nlink, 1);
});
