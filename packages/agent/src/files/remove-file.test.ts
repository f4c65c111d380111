import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { treeOf, useTestRoots } from './test-roots.js';

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
