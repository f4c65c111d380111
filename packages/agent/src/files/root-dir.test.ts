// The roots are held from the start: a root swapped for a symlink later leads nowhere but the held directory.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFileStoreError } from './file-store-error.js';
import { createFileStore } from './file-store.js';
import { treeOf, useTestRoots } from './test-roots.js';

const codeOf = (a: { status: string; error?: { code: string } }): string => a.error?.code ?? a.status;

test('a root swapped for a symlink after start: list, stat, read, write, writeDir, delete stay in the held root', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  writeFileSync(join(roots.NvRam, 'vm_VARS.fd'), 'held nvram');
  mkdirSync(join(roots.TpmState, 'vm', 'tpm2'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'vm', 'tpm2', 'tpm2-00.permall'), 'held tpm');
  // What the qemu user who owns the roots' parent can do: move the root away, put a link to elsewhere in its place.
  writeFileSync(join(outside, 'victim'), 'outside the roots');
  mkdirSync(join(outside, 'vm', 'tpm2'), { recursive: true });
  writeFileSync(join(outside, 'vm', 'tpm2', 'tpm2-00.permall'), 'outside tpm');
  const before = treeOf(outside);
  for (const root of [roots.NvRam, roots.TpmState]) {
    renameSync(root, `${root}.moved`);
    symlinkSync(outside, root);
  }

  const nvram = await store.list('NvRam');
  assert.deepEqual(
    nvram.map((u) => u.path),
    [join(roots.NvRam, 'vm_VARS.fd')],
    'the held directory, under the configured path',
  );
  assert.deepEqual(
    (await store.list('TpmState')).map((u) => u.path),
    [join(roots.TpmState, 'vm')],
  );
  assert.equal(codeOf(await store.stat('NvRam', ['victim'])), 'absent');
  assert.equal(codeOf(await store.read('NvRam', ['victim'])), 'not_found');
  const read = await store.read('TpmState', ['vm']);
  assert.ok(read.status === 'read' && read.kind === 'dir');
  assert.equal(Buffer.from(read.entries[0]?.content ?? '', 'base64').toString(), 'held tpm');
  assert.equal(codeOf(await store.remove('NvRam', ['victim'])), 'absent');
  assert.equal(codeOf(await store.write('NvRam', ['new_VARS.fd'], Buffer.from('new'))), 'written');
  const state = [{ components: ['tpm2', 'tpm2-00.permall'], content: Buffer.from('replaced') }];
  assert.equal(codeOf(await store.writeDir('TpmState', ['vm'], state)), 'written');
  assert.equal(codeOf(await store.remove('NvRam', ['vm_VARS.fd'])), 'deleted');
  assert.deepEqual(await store.recover(), { completed: 0, restored: 0, removed: 0, quarantined: 0 });

  assert.deepEqual(treeOf(outside), before, 'nothing outside was touched');
  assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'outside the roots');
  assert.equal(readFileSync(join(outside, 'vm', 'tpm2', 'tpm2-00.permall'), 'utf8'), 'outside tpm');
  assert.deepEqual(readdirSync(`${roots.NvRam}.moved`), ['new_VARS.fd']);
  assert.equal(readFileSync(join(`${roots.TpmState}.moved`, 'vm', 'tpm2', 'tpm2-00.permall'), 'utf8'), 'replaced');
});

test('a root that is a symlink or has one on its path is refused when the store is made', (t) => {
  const { roots, outside } = useTestRoots(t);
  const link = join(outside, '..', 'link');
  symlinkSync(outside, link);
  mkdirSync(join(outside, 'below'));
  for (const [root, pattern] of [
    [link, /link is a symbolic link/],
    [join(link, 'below'), /link is a symbolic link/],
    [join(outside, 'missing'), /ENOENT/],
  ] as const) {
    assert.throws(
      () => createFileStore({ roots: { TpmState: roots.TpmState, NvRam: root } }),
      (error) => isFileStoreError(error) && pattern.test(error.message),
      root,
    );
  }
  writeFileSync(join(outside, 'file'), '');
  assert.throws(
    () => createFileStore({ roots: { TpmState: join(outside, 'file'), NvRam: roots.NvRam } }),
    /file is not a directory/,
  );
});
