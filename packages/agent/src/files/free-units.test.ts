import assert from 'node:assert/strict';
import {
  constants,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { borrowDir, openDir, type DirHandle } from './dir-handle.js';
import { closeAll } from './fd-path.js';
import { FREE_FOR_MS, FreeUnits } from './free-units.js';
import { unitBusy } from './preconditions.js';
import { openRootDir } from './root-dir.js';
import { flockAvailable, holdFlock, useTestRoots } from './test-roots.js';

const statsOf = (path: string): BigIntStats => statSync(path, { bigint: true });

/** Counts the checks it answered from memory: each of those skipped its walk. */
class CountingFreeUnits extends FreeUnits {
  hits = 0;

  override has(locks: ReadonlySet<string>, stats: BigIntStats): boolean {
    const hit = super.has(locks, stats);
    if (hit) this.hits += 1;
    return hit;
  }
}

test('free units: only under the very Set the locks were read as, only for the directory walked, and bounded', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-free-'));
  t.after(() => {
    rmSync(base, { recursive: true, force: true });
  });
  for (const name of ['a', 'b', 'c']) mkdirSync(join(base, name));
  const [a, b, c] = ['a', 'b', 'c'].map((name) => statsOf(join(base, name))) as [BigIntStats, BigIntStats, BigIntStats];
  const free = new FreeUnits(2);
  const locks = new Set(['1']);
  free.add(locks, a);
  assert.equal(free.has(locks, a), true);
  assert.equal(free.has(locks, b), false, 'another directory was not walked');
  // An equal Set made anew: readProcLocks read another text in between, so nothing found before counts.
  const reread = new Set(['1']);
  assert.equal(free.has(reread, a), false);
  free.add(reread, b);
  assert.equal(free.has(locks, a), false, 'forgotten once the locks were read as another Set');
  assert.equal(free.has(reread, b), true);
  free.add(reread, c);
  free.add(reread, a); // a third unit in a memo of two: started afresh
  assert.deepEqual(
    [a, b, c].map((s) => free.has(reread, s)),
    [true, false, false],
  );
});

test('free units: a unit is taken as free for FREE_FOR_MS after its walk, not longer', () => {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-free-'));
  try {
    const stats = statsOf(base);
    let clock = 1_000;
    const free = new FreeUnits(16, () => clock);
    const locks = new Set(['1']);
    free.add(locks, stats);
    clock += FREE_FOR_MS;
    assert.equal(free.has(locks, stats), true);
    clock += 1;
    assert.equal(free.has(locks, stats), false, 'a lock that went and came back since could not be told apart');
    free.add(locks, stats); // walked again
    assert.equal(free.has(locks, stats), true);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a unit found free is not walked again while the locks read the same; new locks make it walked again', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-free-'));
  t.after(() => {
    rmSync(base, { recursive: true, force: true });
  });
  mkdirSync(join(base, 'vm', 'tpm2'), { recursive: true });
  writeFileSync(join(base, 'vm', 'tpm2', 'tpm2-00.permall'), 'state');
  const root = openRootDir(base);
  const held: DirHandle[] = [borrowDir(root.fd), openDir(join(base, 'vm'), constants.O_RDONLY | constants.O_DIRECTORY)];
  t.after(() => closeAll(held));
  const free = new CountingFreeUnits();
  // readProcLocks gives back one Set while the text it reads stays the same: so does this.
  let locks: ReadonlySet<string> = new Set(['1']);
  const check = (): Promise<boolean> =>
    unitBusy(() => Promise.resolve(locks), held, ['vm', 'tpm2', 'tpm2-00.permall'], free)();
  assert.equal(await check(), false);
  assert.equal(free.hits, 0, 'the first check walks the unit');
  assert.equal(await check(), false);
  assert.equal(free.hits, 1, "the next op's check is answered without a walk");
  // A lock on a file in the unit: a new line in /proc/locks, so a new Set, and the unit is walked again.
  locks = new Set(['1', String(statsOf(join(base, 'vm', 'tpm2', 'tpm2-00.permall')).ino)]);
  assert.equal(await check(), true);
  assert.equal(free.hits, 1);
});

test('with real locks: a lock taken in a unit found free makes it busy; a directory brought to its name is walked', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, outside, store } = useTestRoots(t);
  // A lock held elsewhere the whole time, so /proc/locks is never empty and every check walks or remembers.
  writeFileSync(join(outside, 'held'), '');
  await holdFlock(t, join(outside, 'held'));
  // A state that is in use at another name below the root, locked before any unit is found free.
  mkdirSync(join(roots.TpmState, 'running', 'tpm2'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'running', 'tpm2', 'tpm2-00.permall'), 'in use');
  writeFileSync(join(roots.TpmState, 'running', 'tpm2', '.lock'), '');
  await holdFlock(t, join(roots.TpmState, 'running', 'tpm2', '.lock'));

  assert.equal((await store.write('TpmState', ['vm', 'tpm2', 'tpm2-00.permall'], Buffer.from('a'))).status, 'written');
  const lock = join(roots.TpmState, 'vm', 'tpm2', '.lock');
  writeFileSync(lock, '');
  const swtpm = await holdFlock(t, lock);
  const refused = await store.remove('TpmState', ['vm', 'tpm2', 'tpm2-00.permall']);
  assert.equal(refused.status === 'failed' && refused.error.code, 'busy', 'the lock taken after the write is seen');
  await swtpm.release();
  assert.equal((await store.remove('TpmState', ['vm', 'tpm2', 'tpm2-00.permall'])).status, 'deleted');

  // `other` found free; then the running state is put at its name, as recovery puts a state back with a rename. No
  // lock changed, but this is another directory: it is walked, and its lock found.
  assert.equal(
    (await store.write('TpmState', ['other', 'tpm2', 'tpm2-00.permall'], Buffer.from('b'))).status,
    'written',
  );
  renameSync(join(roots.TpmState, 'other'), join(outside, 'other'));
  renameSync(join(roots.TpmState, 'running'), join(roots.TpmState, 'other'));
  const moved = await store.remove('TpmState', ['other', 'tpm2', 'tpm2-00.permall']);
  assert.equal(moved.status === 'failed' && moved.error.code, 'busy');
  const whole = await store.remove('TpmState', ['other']);
  assert.equal(whole.status === 'failed' && whole.error.code, 'busy', 'as a unit deleted whole');
  assert.equal(statsOf(join(roots.TpmState, 'other', 'tpm2', 'tpm2-00.permall')).size, 6n, 'the running state stays');
});
