// Every interrupted replace, built by hand as a crash leaves it, is settled to exactly the old or the new state.
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '@hostfiles/shared';
import { TEMP_PREFIX } from './temp-name.js';
import type { StoreEvent } from './types.js';
import { flockAvailable, holdFlock, treeOf, useTestRoots } from './test-roots.js';

const NEW = `${TEMP_PREFIX}new.`;
const OLD = `${TEMP_PREFIX}old.`;
const QUARANTINE = '.hostfiles-quarantine.';

/** A state directory whose one file says which version it is. */
function putState(path: string, version: string): void {
  mkdirSync(join(path, 'tpm2'), { recursive: true });
  writeFileSync(join(path, 'tpm2', 'tpm2-00.permall'), version);
}
const versionAt = (path: string): string => readFileSync(join(path, 'tpm2', 'tpm2-00.permall'), 'utf8');

test('recovery settles each interrupted replace and removes every other temp entry', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  const r = roots.TpmState;
  putState(join(r, `${NEW}a`), 'new'); // committed, target was absent
  putState(join(r, 'b'), 'old'); // committed, the swap had not begun
  putState(join(r, `${NEW}b`), 'new');
  putState(join(r, `${OLD}c`), 'old'); // the old moved aside, the new not yet in
  putState(join(r, `${NEW}c`), 'new');
  putState(join(r, `${OLD}d`), 'old'); // a rollback cut off: the old goes back
  putState(join(r, 'e'), 'new'); // swapped; the old not yet removed
  putState(join(r, `${OLD}e`), 'old');
  putState(join(r, 'f'), 'current'); // someone else's state stands there: it is kept, old and new quarantined
  putState(join(r, `${NEW}f`), 'new');
  putState(join(r, `${OLD}f`), 'old');
  putState(join(r, 'g', `${NEW}deep`), 'new'); // deeper than a unit
  putState(join(r, `${TEMP_PREFIX}0123456789abcdef`), 'staging'); // not committed: dropped
  writeFileSync(join(r, 'g', `${TEMP_PREFIX}0123-file`), 'torn');
  putState(join(r, `${TEMP_PREFIX}del.h`), 'deleting'); // a delete cut off: it completes
  writeFileSync(join(outside, 'keep'), 'outside');
  symlinkSync(outside, join(r, `${NEW}link`)); // not a directory of ours: removed as a link
  writeFileSync(join(roots.NvRam, `${TEMP_PREFIX}0123-x_VARS.fd`), 'torn');

  const report = await store.recover();
  const quarantined = treeOf(r).filter((p) => !p.includes('/') && p.startsWith(QUARANTINE));
  assert.deepEqual(
    treeOf(r).filter((p) => !p.includes('/') && !p.startsWith(QUARANTINE)),
    ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
  );
  assert.deepEqual(quarantined.map((name) => versionAt(join(r, name))).sort(), ['new', 'old'], "f's old and new, kept");
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'e', 'f', 'g/deep'].map((name) => versionAt(join(r, name))),
    ['new', 'new', 'new', 'old', 'new', 'current', 'new'],
  );
  assert.deepEqual(treeOf(join(r, 'g')), ['deep', 'deep/tpm2', 'deep/tpm2/tpm2-00.permall']);
  assert.deepEqual(treeOf(roots.NvRam), []);
  assert.deepEqual(treeOf(outside), ['keep']);
  assert.deepEqual(report, { completed: 4, restored: 1, removed: 8, quarantined: 2 });
  assert.deepEqual(
    await store.recover(),
    { completed: 0, restored: 0, removed: 0, quarantined: 0 },
    'nothing left to do',
  );
});

test('recovery never takes a state from under a lock: a busy target keeps its state, a busy old one goes back', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  const r = roots.TpmState;
  putState(join(r, 'a'), 'running'); // committed new, but a swtpm holds the target
  writeFileSync(join(r, 'a', 'tpm2', '.lock'), '');
  putState(join(r, `${NEW}a`), 'new');
  putState(join(r, `${OLD}b`), 'running'); // the old moved aside while a swtpm held it
  writeFileSync(join(r, `${OLD}b`, 'tpm2', '.lock'), '');
  putState(join(r, `${NEW}b`), 'new');
  await holdFlock(t, join(r, 'a', 'tpm2', '.lock'));
  await holdFlock(t, join(r, `${OLD}b`, 'tpm2', '.lock'));

  const report = await store.recover();
  assert.deepEqual(
    ['a', 'b'].map((name) => versionAt(join(r, name))),
    ['running', 'running'],
  );
  assert.deepEqual(
    treeOf(r).filter((p) => !p.includes('/')),
    ['a', 'b'],
  );
  assert.deepEqual(report, { completed: 0, restored: 1, removed: 2, quarantined: 0 });
});

test("a root of many names (the QEMU user's junk in the NvRam root) is recovered as a stream: every leftover among them is settled, every other name kept", async (t) => {
  const { roots, store } = useTestRoots(t);
  const r = roots.NvRam;
  // 3,000 files of someone else's (the root is read 128 names at a time), 200 torn temp files of ours among them,
  // removed while the root is read.
  for (let i = 0; i < 3000; i++) closeSync(openSync(join(r, `junk-${i}`), 'w'));
  for (let i = 0; i < 200; i++) writeFileSync(join(r, `${TEMP_PREFIX}${i.toString(16).padStart(16, '0')}`), 'torn');
  putState(join(roots.TpmState, `${NEW}a`), 'new');

  assert.deepEqual(await store.recover(), { completed: 1, restored: 0, removed: 200, quarantined: 0 });
  const left = readdirSync(r);
  assert.equal(left.length, 3000);
  assert.ok(left.every((name) => name.startsWith('junk-')));
  assert.equal(versionAt(join(roots.TpmState, 'a')), 'new');
});

test('a replace recovery could not settle is left whole: its new and old states are kept for the next start, not swept as staging', async (t) => {
  const logged: { event: string; path?: string; message?: string }[] = [];
  const logger = createLogger<StoreEvent>({
    write: (line) => logged.push(JSON.parse(line) as (typeof logged)[number]),
  });
  // /proc/locks cannot be read once (EIO): the settling of c, which must know whether someone holds its old state,
  // fails. Every later read works, so nothing else stands in the way of the sweep that follows.
  let reads = 0;
  const readLocks = (): Promise<ReadonlySet<string>> => {
    reads += 1;
    return reads === 1
      ? Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { errno: -5, code: 'EIO', syscall: 'read' }))
      : Promise.resolve(new Set<string>());
  };
  const { roots, store } = useTestRoots(t, { logger, readLocks });
  const r = roots.TpmState;
  putState(join(r, `${OLD}c`), 'old'); // the old moved aside, the new not yet in: which goes in depends on locks
  putState(join(r, `${NEW}c`), 'new');
  putState(join(r, `${TEMP_PREFIX}0123456789abcdef`), 'staging'); // not committed: still dropped

  const report = await store.recover();
  assert.equal(reads > 1, true, 'locks were read again after the failure');
  assert.deepEqual(
    logged.filter((l) => l.event === 'recovery_failed').map((l) => [l.path, l.message]),
    [[join(r, 'c'), 'EIO (read)']],
  );
  assert.deepEqual(
    treeOf(r).filter((p) => !p.includes('/')),
    [`${NEW}c`, `${OLD}c`],
    "c's two states kept as they were; the staging tree removed",
  );
  assert.deepEqual([versionAt(join(r, `${NEW}c`)), versionAt(join(r, `${OLD}c`))], ['new', 'old']);
  assert.deepEqual(report, { completed: 0, restored: 0, removed: 1, quarantined: 0 });

  // At the next start /proc/locks reads again: the replace is settled as usual.
  assert.deepEqual(await store.recover(), { completed: 1, restored: 0, removed: 1, quarantined: 0 });
  assert.equal(versionAt(join(r, 'c')), 'new');
});
