import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { treeOf, useTestRoots, type TestRoots } from './test-roots.js';

function codeOf(answer: { status: string; error?: { code: string } }): string | undefined {
  return answer.status === 'failed' ? answer.error?.code : answer.status;
}

/** roots.TpmState/vm/<name> → a link to an outside file holding 'outside'. */
function linkToOutsideFile({ roots, outside }: TestRoots, name: string): string {
  writeFileSync(join(outside, 'target'), 'outside');
  mkdirSync(join(roots.TpmState, 'vm'), { recursive: true });
  const link = join(roots.TpmState, 'vm', name);
  symlinkSync(join(outside, 'target'), link);
  return link;
}

test('a symlink as the target answers symlink for write, delete and read; the outside file is untouched', async (t) => {
  const env = useTestRoots(t);
  const link = linkToOutsideFile(env, 'f');
  assert.equal(codeOf(await env.store.write('TpmState', ['vm', 'f'], Buffer.from('evil'))), 'symlink');
  assert.equal(codeOf(await env.store.read('TpmState', ['vm', 'f'])), 'symlink');
  assert.equal(codeOf(await env.store.remove('TpmState', ['vm', 'f'])), 'symlink');
  assert.equal(readFileSync(join(env.outside, 'target'), 'utf8'), 'outside');
  assert.equal(readlinkSync(link), join(env.outside, 'target'), 'the link itself is kept');
  assert.deepEqual(treeOf(join(env.roots.TpmState, 'vm')), ['f'], 'no temp file left');
});

test('a symlink to a directory as the target answers symlink for delete', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  writeFileSync(join(outside, 'data'), 'd');
  symlinkSync(outside, join(roots.NvRam, 'vm'));
  assert.equal(codeOf(await store.remove('NvRam', ['vm'])), 'symlink');
  assert.equal(codeOf(await store.read('NvRam', ['vm'])), 'symlink');
  assert.equal(codeOf(await store.write('NvRam', ['vm'], Buffer.from('x'))), 'symlink');
  assert.deepEqual(treeOf(outside), ['data']);
});

test('a symlink as an intermediate directory answers symlink; nothing is made outside', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  writeFileSync(join(outside, 'f'), 'outside');
  mkdirSync(join(roots.TpmState, 'vm'));
  symlinkSync(outside, join(roots.TpmState, 'vm', 'tpm2'));
  symlinkSync(outside, join(roots.TpmState, 'top'));
  for (const components of [
    ['vm', 'tpm2', 'f'],
    ['vm', 'tpm2', 'new-dir', 'f'],
    ['top', 'f'],
  ]) {
    const label = components.join('/');
    assert.equal(codeOf(await store.write('TpmState', components, Buffer.from('evil'))), 'symlink', label);
    assert.equal(codeOf(await store.read('TpmState', components)), 'symlink', label);
    assert.equal(codeOf(await store.remove('TpmState', components)), 'symlink', label);
  }
  assert.deepEqual(treeOf(outside), ['f']);
  assert.equal(readFileSync(join(outside, 'f'), 'utf8'), 'outside');
});
