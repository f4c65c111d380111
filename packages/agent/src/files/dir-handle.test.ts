import assert from 'node:assert/strict';
import { constants, fstatSync, mkdtempSync, openSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDir } from './dir-handle.js';
import { CHILD_DIR_FLAGS } from './fd-path.js';

test('a held directory: the directory itself, synced and chmodded through its fd, closed once however often asked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-dir-handle-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const held = openDir(dir, CHILD_DIR_FLAGS);
  assert.equal((await held.stat({ bigint: true })).ino, statSync(dir, { bigint: true }).ino);
  await held.sync();
  await held.chmod(0o711);
  assert.equal(statSync(dir).mode & 0o777, 0o711);
  const fd = held.fd;
  await held.close();
  assert.throws(() => fstatSync(fd), { code: 'EBADF' });
  // The fd number is free again: a file opened now may get it, and a second close must not close that file.
  const other = openSync(join(dir, 'other'), constants.O_CREAT | constants.O_WRONLY, 0o600);
  await held.close();
  assert.doesNotThrow(() => fstatSync(other));
  closeSync(other);
  assert.throws(() => held.fd, /used after close/);
});

test('openDir refuses what CHILD_DIR_FLAGS refuse, with the errno fs/promises would give', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-dir-handle-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  assert.throws(() => openDir(join(dir, 'missing'), CHILD_DIR_FLAGS), { code: 'ENOENT' });
});
