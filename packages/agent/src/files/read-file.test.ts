import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { useTestRoots } from './test-roots.js';

test('read answers the content of a regular file', async (t) => {
  const { store } = useTestRoots(t);
  const content = Buffer.from([0, 1, 2, 255]);
  await store.write('NvRam', ['vm', 'VARS.fd'], content);
  const answer = await store.read('NvRam', ['vm', 'VARS.fd']);
  assert.equal(answer.status, 'read');
  assert.ok(answer.content.equals(content));
});

test('read of a missing file, below a missing dir or below a file answers not_found', async (t) => {
  const { roots, store } = useTestRoots(t);
  writeFileSync(join(roots.NvRam, 'file'), 'x');
  for (const components of [['missing'], ['no-dir', 'f'], ['file', 'f']]) {
    const answer = await store.read('NvRam', components);
    assert.equal(answer.status === 'failed' && answer.error.code, 'not_found', components.join('/'));
  }
});

test('read of a directory answers not_regular_file', async (t) => {
  const { roots, store } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'vm', 'dir'), { recursive: true });
  const answer = await store.read('TpmState', ['vm', 'dir']);
  assert.equal(answer.status === 'failed' && answer.error.code, 'not_regular_file');
});

test('read of a FIFO answers not_regular_file instead of blocking', async (t) => {
  const { roots, store } = useTestRoots(t);
  execFileSync('mkfifo', [join(roots.TpmState, 'fifo')]);
  const answer = await store.read('TpmState', ['fifo']);
  assert.equal(answer.status === 'failed' && answer.error.code, 'not_regular_file');
});

test('a component the caller should have refused is a programmer error, not an answer', async (t) => {
  const { store } = useTestRoots(t);
  for (const components of [[], ['..'], ['a/b'], ['.'], ['']]) {
    await assert.rejects(store.read('NvRam', components), RangeError, JSON.stringify(components));
  }
});
