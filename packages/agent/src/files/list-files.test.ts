import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TEMP_PREFIX } from './temp-name.js';
import { treeOf, useTestRoots } from './test-roots.js';

const sha256 = (content: string): string => createHash('sha256').update(content).digest('hex');

test('list answers every regular file with size, sha256 and mtime; skips links and temp files', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  writeFileSync(join(outside, 'secret'), 'outside');
  await store.write('TpmState', ['vm-1', 'tpm2', 'tpm2-00.permall'], Buffer.from('permall'));
  await store.write('TpmState', ['top'], Buffer.from(''));
  symlinkSync(join(outside, 'secret'), join(roots.TpmState, 'vm-1', 'link-to-file'));
  symlinkSync(outside, join(roots.TpmState, 'link-to-dir'));
  symlinkSync(join(roots.TpmState, 'top'), join(roots.TpmState, 'vm-1', 'link-inside'));
  writeFileSync(join(roots.TpmState, 'vm-1', `${TEMP_PREFIX}x-123`), 'partial');
  await store.write('NvRam', ['other'], Buffer.from('not this root'));

  const entries = await store.list('TpmState');
  const permall = join(roots.TpmState, 'vm-1', 'tpm2', 'tpm2-00.permall');
  const top = join(roots.TpmState, 'top');
  assert.deepEqual(entries, [
    { type: 'TpmState', path: top, size: 0, sha256: sha256(''), mtime: Math.floor(statSync(top).mtimeMs) },
    {
      type: 'TpmState',
      path: permall,
      size: 7,
      sha256: sha256('permall'),
      mtime: Math.floor(statSync(permall).mtimeMs),
    },
  ]);
  assert.ok(entries.every((e) => Number.isInteger(e.mtime)));
});

test('list of an empty root is empty', async (t) => {
  const { store } = useTestRoots(t);
  assert.deepEqual(await store.list('NvRam'), []);
});

test('removeTempFiles deletes leftover temp files under both roots and keeps everything else', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'vm', 'tpm2'), { recursive: true });
  mkdirSync(join(roots.NvRam, 'vm'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'vm', 'tpm2', `${TEMP_PREFIX}state-abc`), 'partial');
  writeFileSync(join(roots.TpmState, `${TEMP_PREFIX}top-abc`), 'partial');
  writeFileSync(join(roots.NvRam, 'vm', `${TEMP_PREFIX}VARS.fd-abc`), 'partial');
  writeFileSync(join(roots.NvRam, 'vm', 'VARS.fd'), 'keep');
  writeFileSync(join(outside, `${TEMP_PREFIX}outside`), 'not ours');
  symlinkSync(outside, join(roots.NvRam, 'vm', 'link'));

  assert.equal(await store.removeTempFiles(), 3);
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/tpm2']);
  assert.deepEqual(treeOf(roots.NvRam), ['vm', 'vm/VARS.fd', 'vm/link']);
  assert.ok(existsSync(join(outside, `${TEMP_PREFIX}outside`)), 'a link is never followed');
  assert.equal(await store.removeTempFiles(), 0);
});
