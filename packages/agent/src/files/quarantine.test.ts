// Recovery never deletes what may be the only copy of a state, nor a tree someone holds a lock in: such trees are
// quarantined under a name that startup keeps, listing shows and a request may delete.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { confinePath, createLogger } from '@hostfiles/shared';
import type { StoreEvent } from './types.js';
import { TEMP_PREFIX } from './temp-name.js';
import { flockAvailable, holdFlock, treeOf, useTestRoots, type TestRoots } from './test-roots.js';

const QUARANTINE = '.hostfiles-quarantine.';

function putState(path: string, version: string): void {
  mkdirSync(join(path, 'tpm2'), { recursive: true });
  writeFileSync(join(path, 'tpm2', 'tpm2-00.permall'), version);
}
const versionAt = (path: string): string => readFileSync(join(path, 'tpm2', 'tpm2-00.permall'), 'utf8');
const topNames = (dir: string): string[] => treeOf(dir).filter((p) => !p.includes('/'));
const quarantinedIn = (dir: string): string[] => topNames(dir).filter((p) => p.startsWith(QUARANTINE));

interface Logged {
  readonly event: string;
  readonly level: string;
  readonly path?: string;
  readonly from?: string;
}

function useLoggedRoots(t: TestContext): TestRoots & { readonly logged: Logged[] } {
  const logged: Logged[] = [];
  const logger = createLogger<StoreEvent>({ write: (line) => logged.push(JSON.parse(line) as Logged) });
  return { ...useTestRoots(t, { logger }), logged };
}

function skipWithoutFlock(t: TestContext): boolean {
  if (flockAvailable()) return false;
  t.skip('util-linux flock(1) is not installed');
  return true;
}

test('a state made at the name while old. and new. wait: both are quarantined, listed, and deletable by request', async (t) => {
  const { roots, store, logged } = useLoggedRoots(t);
  const r = roots.TpmState;
  putState(join(r, 'vm1'), 'fresh by libvirt');
  putState(join(r, `${TEMP_PREFIX}old.vm1`), 'the only copy of the old state');
  putState(join(r, `${TEMP_PREFIX}new.vm1`), 'the committed new state');

  assert.deepEqual(await store.recover(), { completed: 0, restored: 0, removed: 0, quarantined: 2 });
  assert.equal(versionAt(join(r, 'vm1')), 'fresh by libvirt', 'the state at the name is left alone');
  const kept = quarantinedIn(r);
  assert.equal(kept.length, 2);
  assert.deepEqual(kept.map((name) => versionAt(join(r, name))).sort(), [
    'the committed new state',
    'the only copy of the old state',
  ]);
  for (const role of ['old', 'new']) {
    const name = kept.find((n) => n.startsWith(`${QUARANTINE}${role}.vm1.`));
    assert.ok(name !== undefined, `the ${role} tree's quarantine says what it was: ${kept.join(', ')}`);
    const line = logged.find((l) => l.event === 'quarantined' && l.path === join(r, name));
    assert.ok(line !== undefined, `a quarantined line for ${name}`);
    assert.equal(line.level, 'warn');
    assert.equal(line.from, join(r, `${TEMP_PREFIX}${role}.vm1`));
  }
  assert.deepEqual(await store.recover(), { completed: 0, restored: 0, removed: 0, quarantined: 0 }, 'kept');
  assert.deepEqual(quarantinedIn(r), kept);

  const listed = await store.list('TpmState');
  assert.deepEqual(
    listed.map((u) => u.path),
    [...kept.map((name) => join(r, name)), join(r, 'vm1')].sort(),
    'listed as units: reconcile shows them as unknown state',
  );
  for (const name of kept) {
    const confined = confinePath(join(r, name), r);
    assert.ok(confined.ok, 'a request may name it');
    assert.deepEqual(await store.remove('TpmState', confined.value), { status: 'deleted' });
  }
  assert.deepEqual(topNames(r), ['vm1']);
});

test('a del. tree with a lock held in it: put back when its name is free, quarantined when not, never removed', async (t) => {
  if (skipWithoutFlock(t)) return;
  const { roots, store } = useLoggedRoots(t);
  const r = roots.TpmState;
  putState(join(r, `${TEMP_PREFIX}del.free`), 'running, name free');
  putState(join(r, `${TEMP_PREFIX}del.taken`), 'running, name taken');
  putState(join(r, 'taken'), 'made since');
  putState(join(r, `${TEMP_PREFIX}del.idle`), 'no lock: the delete completes');
  for (const name of ['free', 'taken']) {
    writeFileSync(join(r, `${TEMP_PREFIX}del.${name}`, 'tpm2', '.lock'), '');
    await holdFlock(t, join(r, `${TEMP_PREFIX}del.${name}`, 'tpm2', '.lock'));
  }

  assert.deepEqual(await store.recover(), { completed: 0, restored: 1, removed: 1, quarantined: 1 });
  assert.equal(versionAt(join(r, 'free')), 'running, name free');
  assert.equal(versionAt(join(r, 'taken')), 'made since');
  const [kept, ...more] = quarantinedIn(r);
  assert.deepEqual(more, []);
  assert.ok(kept !== undefined && kept.startsWith(`${QUARANTINE}del.taken.`), kept);
  assert.equal(versionAt(join(r, kept)), 'running, name taken');
  assert.deepEqual(topNames(r), [kept, 'free', 'taken'].sort());
});

test('busy leftovers are never discarded: a busy old. beside its replacement and a busy random temp tree', async (t) => {
  if (skipWithoutFlock(t)) return;
  const { roots, store } = useLoggedRoots(t);
  const r = roots.TpmState;
  putState(join(r, 'vm'), 'new, swapped in');
  putState(join(r, `${TEMP_PREFIX}old.vm`), 'old, still held');
  putState(join(r, `${TEMP_PREFIX}0123456789abcdef`), 'held staging');
  for (const dir of [`${TEMP_PREFIX}old.vm`, `${TEMP_PREFIX}0123456789abcdef`]) {
    writeFileSync(join(r, dir, 'tpm2', '.lock'), '');
    await holdFlock(t, join(r, dir, 'tpm2', '.lock'));
  }
  assert.deepEqual(await store.recover(), { completed: 0, restored: 0, removed: 0, quarantined: 2 });
  assert.equal(versionAt(join(r, 'vm')), 'new, swapped in');
  assert.deepEqual(
    quarantinedIn(r)
      .map((name) => versionAt(join(r, name)))
      .sort(),
    ['held staging', 'old, still held'],
  );
});

test('a file delete never replaces a del. left by an earlier one: a busy leftover is quarantined, an idle one removed', async (t) => {
  if (skipWithoutFlock(t)) return;
  const { roots, store } = useLoggedRoots(t);
  const r = roots.NvRam;
  writeFileSync(join(r, 'vm_VARS.fd'), 'current');
  writeFileSync(join(r, `${TEMP_PREFIX}del.vm_VARS.fd`), 'held by a QEMU');
  await holdFlock(t, join(r, `${TEMP_PREFIX}del.vm_VARS.fd`));
  assert.deepEqual(await store.remove('NvRam', ['vm_VARS.fd']), { status: 'deleted' });
  const [kept, ...more] = quarantinedIn(r);
  assert.deepEqual(more, []);
  assert.ok(kept !== undefined);
  assert.equal(readFileSync(join(r, kept), 'utf8'), 'held by a QEMU');
  assert.deepEqual(topNames(r), [kept]);

  writeFileSync(join(r, 'other_VARS.fd'), 'current');
  writeFileSync(join(r, `${TEMP_PREFIX}del.other_VARS.fd`), 'idle leftover');
  assert.deepEqual(await store.remove('NvRam', ['other_VARS.fd']), { status: 'deleted' });
  assert.deepEqual(topNames(r), [kept]);
});
