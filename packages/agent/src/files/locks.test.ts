import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseProcLocks, readProcLocks, sameLocks, sharedReads } from './locks.js';
import { flockAvailable, holdFlock } from './test-roots.js';

test('parseProcLocks keeps POSIX, FLOCK and OFDLCK inodes and skips waiters and leases', () => {
  const text = [
    '1: POSIX  ADVISORY  READ  5433 08:01:7864448 128 128',
    '1: -> POSIX  ADVISORY  WRITE 5999 08:01:1111111 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 2001 08:01:7864554 0 EOF',
    '3: OFDLCK ADVISORY  WRITE -1 fe:00:8713209 128 191',
    '4: LEASE  ACTIVE    READ  1234 08:01:2222222 0 EOF',
    '5: POSIX  ADVISORY  WRITE 699 00:16:28457 0 EOF',
    '',
    'garbage',
  ].join('\n');
  assert.deepEqual([...parseProcLocks(text)].sort(), ['28457', '7864448', '7864554', '8713209']);
  assert.equal(parseProcLocks('').size, 0);
});

test('readProcLocks reads afresh through its kept fd: a lock taken since the last read is seen, and a released one gone', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-locks-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, '.lock');
  writeFileSync(path, '');
  const inode = String(statSync(path).ino);
  assert.equal((await readProcLocks()).has(inode), false);
  const lock = await holdFlock(t, path);
  assert.equal((await readProcLocks()).has(inode), true, 'taken after the fd was opened and read once');
  await lock.release();
  assert.equal((await readProcLocks()).has(inode), false);
});

test('sameLocks: the same inodes, whatever the set object; any inode more, less or other is a change', () => {
  const before = new Set(['1', '2']);
  assert.equal(sameLocks(before, before), true);
  assert.equal(sameLocks(new Set(['2', '1']), before), true);
  assert.equal(sameLocks(new Set(['1', '2', '3']), before), false);
  assert.equal(sameLocks(new Set(['1']), before), false);
  assert.equal(sameLocks(new Set(['1', '3']), before), false);
});

test('sharedReads: a caller is served by a read that started after it called; callers during a read share one queued read', async () => {
  const started: { text: string; resolve: () => void }[] = [];
  let texts = 0;
  const read = sharedReads(
    () =>
      new Promise<string>((resolve) => {
        const text = `${++texts}: POSIX  ADVISORY  WRITE 1 fe:00:${texts} 0 EOF`;
        started.push({
          text,
          resolve: () => {
            resolve(text);
          },
        });
      }),
  );
  const inodesOf = async (p: Promise<ReadonlySet<string>>): Promise<string[]> => [...(await p)];
  const first = read();
  assert.equal(started.length, 1, 'nothing running: a read starts at once');
  const second = read();
  const third = read();
  assert.equal(
    started.length,
    1,
    'callers during a read wait for the one queued behind it, never share the running one',
  );
  started[0]?.resolve();
  assert.deepEqual(await inodesOf(first), ['1']);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(started.length, 2, 'the queued read starts once the running one is done');
  const fourth = read();
  started[1]?.resolve();
  assert.deepEqual(await inodesOf(second), ['2'], 'served by the read that started after it called');
  assert.equal(await second, await third, 'the same read, the same set');
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(started.length, 3);
  started[2]?.resolve();
  assert.deepEqual(await inodesOf(fourth), ['3'], 'called during read 2: served by read 3');
  assert.equal(texts, 3, 'four callers, three reads');
});

test('sharedReads: a failed read fails its callers only; the next caller reads again', async () => {
  let calls = 0;
  const read = sharedReads(() => {
    calls++;
    return calls === 1
      ? Promise.reject(new Error('EIO'))
      : Promise.resolve('1: FLOCK  ADVISORY  WRITE 2 08:01:77 0 EOF');
  });
  await assert.rejects(read(), /EIO/);
  assert.deepEqual([...(await read())], ['77']);
  assert.equal(calls, 2);
});
