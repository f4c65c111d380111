import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { readSmallFile, smallFileProblem } from './read-small-file.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-small-file-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

test('readSmallFile: a regular file gives its text and permission bits', (t) => {
  const path = join(tempDir(t), 'key');
  writeFileSync(path, 'ünïcode\n', { mode: 0o640 });
  assert.deepEqual(readSmallFile(path), { ok: true, text: 'ünïcode\n', mode: 0o640 });
});

test('readSmallFile: what is no regular file is refused unread, a FIFO at once (no writer waited for)', (t) => {
  const dir = tempDir(t);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  assert.deepEqual(readSmallFile(fifo), { ok: false, code: 'not_file' });
  assert.deepEqual(readSmallFile(dir), { ok: false, code: 'not_file' });
  assert.deepEqual(readSmallFile(join(dir, 'none')), { ok: false, code: 'ENOENT' });
  assert.deepEqual(readSmallFile(join(dir, 'fifo', 'below')), { ok: false, code: 'ENOTDIR' });
  assert.equal(smallFileProblem({ code: 'not_file' }), 'not a regular file');
  assert.equal(smallFileProblem({ code: 'EACCES' }), 'EACCES');
});

test('readSmallFile: past the cap by its size, or by what it turns out to hold, it is too large', (t) => {
  const path = join(tempDir(t), 'big');
  writeFileSync(path, 'x'.repeat(11));
  assert.deepEqual(readSmallFile(path, 10), { ok: false, code: 'too_large', size: 11 });
  assert.equal(readSmallFile(path, 11).ok, true, 'at the cap exactly it is read');
  assert.equal(smallFileProblem({ code: 'too_large' }), 'over 1 MiB');
  assert.equal(smallFileProblem({ code: 'too_large' }, 10), 'over 10 bytes');
  // A /proc file says size 0 and holds more: read until the cap, no further, then refused; read whole under it.
  const status = readFileSync('/proc/self/status', 'utf8');
  assert.ok(status.length > 100);
  assert.deepEqual(readSmallFile('/proc/self/status', 50), { ok: false, code: 'too_large', size: 51 });
  const whole = readSmallFile('/proc/self/status');
  assert.equal(whole.ok && whole.text.split('\n')[0], status.split('\n')[0]);
});
