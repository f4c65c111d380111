import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  parseProcLocks,
  procLocksText,
  readProcLocks,
  sameLocks,
  perTurn,
  sharedReads,
  stableText,
  stableTextNow,
  type LocksText,
  type ProcRead,
} from './locks.js';
import { flockAvailable, holdFlock } from './test-roots.js';

/** A source whose reads all go through the pool (its fd never open for a read made at once). */
const poolOnly = (inPool: () => Promise<string>): LocksText => ({ inPool, now: () => undefined });

test('parseProcLocks keeps POSIX, FLOCK and OFDLCK inodes and skips waiters and leases', () => {
  const text = [
    '1: POSIX  ADVISORY  READ  5433 08:01:7864448 128 128',
    '1: -> POSIX  ADVISORY  WRITE 5999 08:01:1111111 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 2001 08:01:7864554 0 EOF',
    '3: OFDLCK ADVISORY  WRITE -1 fe:00:8713209 128 191',
    '4: LEASE  ACTIVE    READ  1234 08:01:2222222 0 EOF',
    '5: POSIX  ADVISORY  WRITE 699 00:16:28457 0 EOF',
    '6: POSIX  ADVISORY  WRITE 699 00:16:000123 0 EOF',
    '  7: FLOCK ADVISORY WRITE 1 08:01:4242',
    '8: POSIX  ADVISORY  WRITE 699 00:16:99x 0 EOF',
    '9: POSIXX ADVISORY  WRITE 699 00:16:555 0 EOF',
    '10: OFDLCK ADVISORY  READ -1 fe:00:0 0 EOF\r',
    '',
    'garbage',
  ].join('\n');
  assert.deepEqual(
    [...parseProcLocks(text)].sort(),
    ['0', '123', '28457', '4242', '7864448', '7864554', '8713209'],
    'leading zeros left out, any whitespace but a newline between fields, an inode that is not all digits or a kind that is not one skipped',
  );
  assert.equal(parseProcLocks('').size, 0);
  assert.equal(parseProcLocks('1: POSIX\nADVISORY WRITE 1 08:01:77 0 EOF').size, 0, 'a line never runs into the next');
});

/** A fresh empty file to lock and its inode; undefined (the test skipped, saying why) without flock(1). */
function lockFile(t: TestContext): { readonly path: string; readonly inode: string } | undefined {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-locks-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, '.lock');
  writeFileSync(path, '');
  return { path, inode: String(statSync(path).ino) };
}

test('readProcLocks reads afresh through its kept fd: a lock taken since the last read is seen, and a released one gone', async (t) => {
  const file = lockFile(t);
  if (file === undefined) return;
  const { path, inode } = file;
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
    poolOnly(
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
    ),
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
  const read = sharedReads(
    poolOnly(() => {
      calls++;
      return calls === 1
        ? Promise.reject(new Error('EIO'))
        : Promise.resolve('1: FLOCK  ADVISORY  WRITE 2 08:01:77 0 EOF');
    }),
  );
  await assert.rejects(read(), /EIO/);
  assert.deepEqual([...(await read())], ['77']);
  assert.equal(calls, 2);
});

test('sharedReads: never two reads at once, and each caller served by a read that started after it called (pool reads and reads made at once alike)', async () => {
  let inFlight = 0;
  let most = 0;
  let reads = 0;
  let atOnce = 0;
  // The clock moves on by 0.4 ms at each look: some reads follow the last one closely (made at once), some do not.
  let clockMs = 0;
  const text = (n: number): string => `1: FLOCK  ADVISORY  WRITE 2 08:01:${n} 0 EOF`;
  const read = sharedReads(
    {
      inPool: async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        const n = ++reads;
        // Resolve after a varying number of turns of the event loop, so calls land at every point of a read's life.
        for (let i = 0; i < n % 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
        inFlight--;
        return text(n);
      },
      now: () => {
        assert.equal(inFlight, 0, 'never made while a pool read runs');
        atOnce++;
        return text(++reads);
      },
    },
    { now: () => (clockMs += 0.4), hotMs: 1 },
  );
  const calls: Promise<void>[] = [];
  for (let i = 0; i < 60; i++) {
    const after = reads;
    calls.push(
      read().then((set) => {
        assert.ok(
          Number([...set][0]) > after,
          `served by read ${[...set][0] ?? ''}, called after read ${after} started`,
        );
      }),
    );
    if (i % 4 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    else if (i % 4 === 1) await Promise.resolve();
    if (i % 10 === 9) clockMs += 5; // an idle spell: the next read goes through the pool
  }
  await Promise.all(calls);
  assert.equal(most, 1, 'reads share one fd: never two at once');
  assert.ok(reads < 60, `${reads} reads for 60 callers`);
  assert.ok(atOnce > 0 && atOnce < reads, `${atOnce} of ${reads} reads made at once`);
});

test("sharedReads: a read within hotMs of the last one's end is made at once; after an idle spell, or before the fd is open, in the pool", async () => {
  let clockMs = 0;
  let opened = false;
  const made: string[] = [];
  const read = sharedReads(
    {
      inPool: () => {
        made.push('pool');
        opened = true;
        return Promise.resolve('1: FLOCK  ADVISORY  WRITE 2 08:01:5 0 EOF');
      },
      now: () => {
        if (!opened) return undefined;
        made.push('now');
        return '1: FLOCK  ADVISORY  WRITE 2 08:01:6 0 EOF';
      },
    },
    { now: () => clockMs, hotMs: 1 },
  );
  assert.deepEqual([...(await read())], ['5'], 'the first read: nothing to follow');
  clockMs += 0.5;
  const hot = read();
  assert.deepEqual(made, ['pool', 'now'], 'made before read() returned');
  assert.deepEqual([...(await hot)], ['6']);
  clockMs += 1;
  assert.deepEqual([...(await read())], ['5'], '1 ms after the last read ended: through the pool');
  assert.deepEqual(made, ['pool', 'now', 'pool']);

  const failing = sharedReads(
    {
      inPool: () => Promise.resolve(''),
      now: () => {
        throw new Error('EIO');
      },
    },
    { now: () => 0, hotMs: 1 },
  );
  assert.equal((await failing()).size, 0);
  await assert.rejects(failing(), /EIO/, 'a failed read made at once fails its caller, never throws');
});

test('sharedReads: after a text longer than hotMaxChars, every read goes through the pool, however soon; a short one brings reads at once back', async () => {
  let clockMs = 0;
  let long = true;
  const line = (inode: number): string => `1: POSIX  ADVISORY  WRITE 2 08:01:${String(inode)} 0 EOF`;
  // A host with many locks: 40 lines, over the 1,000 characters this source is given as its bound.
  const text = (inode: number): string =>
    long ? Array.from({ length: 40 }, (_, i) => line(inode + i)).join('\n') : line(inode);
  const made: string[] = [];
  const read = sharedReads(
    {
      inPool: () => {
        made.push('pool');
        return Promise.resolve(text(100));
      },
      now: () => {
        made.push('now');
        return text(200);
      },
    },
    { now: () => clockMs, hotMs: 5, hotMaxChars: 1000 },
  );
  assert.equal((await read()).size, 40);
  clockMs += 0.1;
  assert.equal((await read()).has('100'), true, 'right after a long text: through the pool');
  assert.deepEqual(made, ['pool', 'pool']);
  long = false;
  clockMs += 0.1;
  assert.deepEqual([...(await read())], ['100'], 'the pool read that finds the text short again');
  clockMs += 0.1;
  assert.deepEqual([...(await read())], ['200'], 'after a short text: at once again');
  assert.deepEqual(made, ['pool', 'pool', 'pool', 'now']);
});

test('procLocksText: the read made at once sees what the pool read sees, a lock taken and released', async (t) => {
  const file = lockFile(t);
  if (file === undefined) return;
  const { path, inode } = file;
  const text = procLocksText();
  assert.equal(text.now(), undefined, 'no fd before the first read');
  assert.equal(parseProcLocks(await text.inPool()).has(inode), false);
  const lock = await holdFlock(t, path);
  assert.equal(parseProcLocks(text.now() ?? '').has(inode), true);
  assert.equal(parseProcLocks(await text.inPool()).has(inode), true);
  await lock.release();
  assert.equal(parseProcLocks(text.now() ?? '').has(inode), false);
});

test('stableText and stableTextNow: one read(2) is whole; a longer text is read again until two agree, else the union', async () => {
  const line = (ino: string): string => `1: POSIX  ADVISORY  WRITE 1 fe:00:${ino} 0 EOF`;
  const cases: { reads: ProcRead[]; text: string; count: number }[] = [
    { reads: [{ text: 'a', chunks: 1 }], text: 'a', count: 1 }, // a text of one read(2) is not read again
    {
      reads: [
        { text: 'a', chunks: 2 },
        { text: 'b', chunks: 2 },
        { text: 'b', chunks: 2 },
      ],
      text: 'b',
      count: 3,
    },
    {
      reads: ['11', '22', '33'].map((ino) => ({ text: line(ino), chunks: 2 })),
      text: ['11', '22', '33'].map(line).join('\n'),
      count: 3,
    },
  ];
  for (const { reads, text, count } of cases) {
    let i = 0;
    const next = (): ProcRead => reads[Math.min(i++, reads.length - 1)] as ProcRead;
    assert.equal(await stableText(() => Promise.resolve(next())), text);
    assert.equal(i, count);
    i = 0;
    assert.equal(stableTextNow(next), text);
    assert.equal(i, count);
  }
  assert.deepEqual([...parseProcLocks(['11', '22', '33'].map(line).join('\n'))].sort(), ['11', '22', '33']);
});

test('perTurn: every caller of one turn is served by one read, made at its end, after all of them called', async () => {
  const turns: (() => void)[] = [];
  let reads = 0;
  const read = perTurn(
    () => {
      reads++;
      return reads === 3 ? Promise.reject(new Error('EIO')) : Promise.resolve(new Set([String(reads)]));
    },
    (run) => turns.push(run),
  );
  const first = read();
  const second = read();
  assert.equal(reads, 0, 'no read before the turn ends');
  assert.equal(turns.length, 1, 'one read scheduled for the turn');
  turns.shift()?.();
  const third = read(); // the read of the last turn has started: this one waits for the next
  assert.equal(await first, await second, 'the same read, the same set');
  assert.deepEqual([...(await first)], ['1']);
  assert.equal(turns.length, 1);
  turns.shift()?.();
  assert.deepEqual([...(await third)], ['2']);
  const failed = read();
  turns.shift()?.();
  await assert.rejects(failed, /EIO/, "a failed read fails that turn's callers");
  const after = read();
  turns.shift()?.();
  assert.deepEqual([...(await after)], ['4'], 'and the next turn reads again');

  const throwing = perTurn(
    () => {
      throw new Error('EBADF');
    },
    (run) => turns.push(run),
  );
  const thrown = throwing();
  turns.shift()?.();
  await assert.rejects(thrown, /EBADF/, 'a read that throws rejects its callers');
  let scheduling = true;
  const unscheduled = perTurn(
    () => Promise.resolve(new Set<string>()),
    (run) => {
      if (scheduling) throw new Error('no turn');
      turns.push(run);
    },
  );
  await assert.rejects(unscheduled(), /no turn/);
  scheduling = false;
  const later = unscheduled();
  turns.shift()?.();
  assert.equal((await later).size, 0, 'a failure to schedule is not kept for the callers after it');
});
