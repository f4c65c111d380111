import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { MAX_MESSAGE_LENGTH, readAnswerSchema, stateDigest, type ReadEntry } from '@hostfiles/shared';
import { useTestRoots } from './test-roots.js';
import type { ReadState } from './types.js';

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const decode = (e: { content: string; encoding?: 'gzip' | undefined }): Buffer =>
  e.encoding === 'gzip' ? gunzipSync(Buffer.from(e.content, 'base64')) : Buffer.from(e.content, 'base64');
const codeOf = (answer: ReadState): string | undefined => (answer.status === 'failed' ? answer.error.code : undefined);

test('a message naming a long path is clipped to what a controller reads (MAX_MESSAGE_LENGTH)', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  writeFileSync(join(outside, 'secret'), 'outside content');
  // Five directories of 250 characters: a message of 1,283 characters, longer than a message may be.
  const deep = Array.from({ length: 5 }, (_, i) => String(i).repeat(250));
  mkdirSync(join(roots.TpmState, 'uuid', ...deep), { recursive: true });
  linkSync(join(outside, 'secret'), join(roots.TpmState, 'uuid', ...deep, 'permall'));
  const dir = await store.read('TpmState', ['uuid']);
  assert.equal(codeOf(dir), 'not_regular_file');
  const message = dir.status === 'failed' ? dir.error.message : '';
  assert.ok(message.length <= MAX_MESSAGE_LENGTH, `${message.length} characters`);
  assert.match(message, /^0{250}\/1{250}\/.*…\(truncated, 1283 chars\)$/);
  const answer = {
    requestId: randomUUID(),
    hostUuid: randomUUID(),
    kind: 'files.read',
    results: [{ op: 'read', type: 'TpmState', path: '/t/uuid', ...dir }],
  };
  assert.ok(readAnswerSchema.safeParse(answer).success);
});

test('read of a file answers its bytes, sha256 and size; gzip only when that is smaller', async (t) => {
  const { store } = useTestRoots(t);
  const cases = [Buffer.from([0, 1, 2, 255]), Buffer.alloc(200_000, 'a'), randomBytes(5000), Buffer.alloc(0)];
  for (const [i, content] of cases.entries()) {
    await store.write('NvRam', [`vm${i}_VARS.fd`], content);
    const answer = await store.read('NvRam', [`vm${i}_VARS.fd`]);
    assert.ok(answer.status === 'read' && answer.kind === 'file');
    assert.ok(decode(answer).equals(content));
    assert.equal(answer.sha256, sha(content));
    assert.equal(answer.size, content.length);
    assert.equal(answer.encoding, i === 1 ? 'gzip' : undefined, `case ${i}`);
  }
});

test('read of a directory answers every regular file below it, never the lock, temp names or links', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  const dir = join(roots.TpmState, 'uuid');
  mkdirSync(join(dir, 'tpm2', 'deeper'), { recursive: true });
  const files = {
    'tpm2/tpm2-00.permall': randomBytes(3000),
    'tpm2/deeper/x': Buffer.alloc(4096, 1),
    top: Buffer.from('t'),
  };
  for (const [path, bytes] of Object.entries(files)) writeFileSync(join(dir, path), bytes);
  writeFileSync(join(dir, 'tpm2', '.lock'), 'lock');
  writeFileSync(join(dir, 'tpm2', '.hostfiles-tmp-0123-x'), 'partial');
  mkdirSync(join(dir, '.hostfiles-tmp-new.tpm2'));
  writeFileSync(join(dir, '.hostfiles-tmp-new.tpm2', 'f'), 'staged');
  writeFileSync(join(outside, 'secret'), 'secret');
  symlinkSync(join(outside, 'secret'), join(dir, 'tpm2', 'link'));
  symlinkSync(outside, join(dir, 'dir-link'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);

  const answer = await store.read('TpmState', ['uuid']);
  assert.ok(answer.status === 'read' && answer.kind === 'dir', JSON.stringify(answer));
  assert.deepEqual(
    answer.entries.map((e: ReadEntry) => e.path),
    ['top', 'tpm2/deeper/x', 'tpm2/tpm2-00.permall'],
  );
  for (const entry of answer.entries) {
    const bytes = files[entry.path as keyof typeof files];
    assert.ok(decode(entry).equals(bytes), entry.path);
    assert.equal(entry.sha256, sha(bytes));
    assert.equal(entry.size, bytes.length);
  }
  assert.equal(answer.sha256, stateDigest(answer.entries));
  assert.equal(answer.size, 3000 + 4096 + 1);
});

test('read of a missing file, below a missing dir or below a file answers not_found', async (t) => {
  const { roots, store } = useTestRoots(t);
  writeFileSync(join(roots.NvRam, 'file'), 'x');
  for (const components of [['missing'], ['no-dir', 'f'], ['file', 'f']]) {
    assert.equal(codeOf(await store.read('NvRam', components)), 'not_found', components.join('/'));
  }
});

test('read of a FIFO answers not_regular_file instead of blocking', async (t) => {
  const { roots, store } = useTestRoots(t);
  execFileSync('mkfifo', [join(roots.TpmState, 'fifo')]);
  assert.equal(codeOf(await store.read('TpmState', ['fifo'])), 'not_regular_file');
});

test('a file with other hard links is refused, alone or inside a directory state', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  writeFileSync(join(outside, 'secret'), 'outside content');
  linkSync(join(outside, 'secret'), join(roots.NvRam, 'vm_VARS.fd'));
  mkdirSync(join(roots.TpmState, 'uuid', 'tpm2'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'uuid', 'tpm2', 'ok'), 'fine');
  linkSync(join(outside, 'secret'), join(roots.TpmState, 'uuid', 'tpm2', 'tpm2-00.permall'));
  const file = await store.read('NvRam', ['vm_VARS.fd']);
  assert.equal(codeOf(file), 'not_regular_file');
  assert.match(file.status === 'failed' ? file.error.message : '', /hard links/);
  const dir = await store.read('TpmState', ['uuid']);
  assert.equal(codeOf(dir), 'not_regular_file');
  assert.match(dir.status === 'failed' ? dir.error.message : '', /tpm2\/tpm2-00.permall has other hard links/);
  assert.ok(!JSON.stringify([file, dir]).includes(Buffer.from('outside content').toString('base64')));
});

test('a component the caller should have refused is a programmer error, not an answer', async (t) => {
  const { store } = useTestRoots(t);
  for (const components of [[], ['..'], ['a/b'], ['.'], ['']]) {
    await assert.rejects(store.read('NvRam', components), RangeError, JSON.stringify(components));
  }
});
