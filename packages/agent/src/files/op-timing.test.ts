// OpTiming: an op waits for its command's journal record (the gate) just before its first change, and stops with
// nothing changed when the record fails; with onDurable it answers before its last fsyncs, its unit locked until then.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { settled } from '../journal/held-sync.js';
import { CommandNotRecorded } from './op-context.js';
import { roleName, TEMP_PREFIX } from './temp-name.js';
import { heldDirSyncs, treeOf, useTestRoots } from './test-roots.js';
import type { StateEntry } from './types.js';

interface HeldGate {
  /** what the op is given as OpTiming.gate */
  readonly gate: Promise<void>;
  /** settles once an op first waits on the gate */
  readonly reached: Promise<void>;
  open(): void;
  fail(error: Error): void;
}

/**
 * A gate the test opens or fails. A thenable, not a native promise: awaiting it calls its `then`, which is how the
 * test sees the moment the op waits on it (a native promise is awaited without any call the test could see).
 */
function heldGate(): HeldGate {
  let open: () => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const inner = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  let reach = (): void => undefined;
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const thenable = {
    then: (onOpen?: () => unknown, onFail?: (error: unknown) => unknown): Promise<unknown> => {
      reach();
      return inner.then(onOpen, onFail);
    },
  };
  return { gate: thenable as unknown as Promise<void>, reached, open, fail };
}

/** Waits until `op` waits on the gate; fails (never hangs) if the op ends without ever waiting on it. */
async function reached(held: HeldGate, op: Promise<unknown>): Promise<void> {
  const ended = op.then(
    () => Promise.reject(new Error('the op ended without waiting on the gate')),
    (error: unknown) => Promise.reject(new Error(`the op failed without waiting on the gate: ${String(error)}`)),
  );
  await Promise.race([held.reached, ended]);
  ended.catch(() => undefined); // settles later, when the test lets the op end
}

const eio = (): Error => Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO' });
const tempNames = (dir: string): string[] => readdirSync(dir).filter((name) => name.startsWith(TEMP_PREFIX));
const PERMALL = ['tpm2', 'tpm2-00.permall'];
const state = (text: string): StateEntry[] => [{ components: PERMALL, content: Buffer.from(text) }];

test('write: the temp file is made and synced while the record is not yet durable; the rename waits for it', async (t) => {
  const { roots, store } = useTestRoots(t);
  const held = heldGate();
  const writing = store.write('TpmState', ['vm', 'tpm2-00.permall'], Buffer.from('state'), undefined, {
    gate: held.gate,
  });
  await reached(held, writing);
  const unit = join(roots.TpmState, 'vm');
  assert.equal(tempNames(unit).length, 1, 'the temp file is there before the gate');
  assert.deepEqual(
    readdirSync(unit).filter((name) => !name.startsWith(TEMP_PREFIX)),
    [],
    'the target is not, until the record is durable',
  );
  held.open();
  assert.deepEqual(await writing, { status: 'written' });
  assert.equal(readFileSync(join(unit, 'tpm2-00.permall'), 'utf8'), 'state');
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/tpm2-00.permall']);
});

test('write: a record that fails stops it before the rename; its temp file and the directories it made are gone', async (t) => {
  const { roots, store } = useTestRoots(t);
  const held = heldGate();
  const writing = store.write('TpmState', ['vm', 'tpm2', 'tpm2-00.permall'], Buffer.from('state'), undefined, {
    gate: held.gate,
  });
  await reached(held, writing);
  assert.equal(treeOf(roots.TpmState).length, 3, 'vm, vm/tpm2 and the temp file, made before the gate');
  held.fail(eio());
  await assert.rejects(writing, (error: unknown) => {
    assert.ok(error instanceof CommandNotRecorded);
    assert.match((error.cause as Error).message, /EIO/);
    return true;
  });
  assert.deepEqual(treeOf(roots.TpmState), [], 'nothing of it is left');
});

test('write: over an existing file, a failed record leaves the old content and the directories that were there', async (t) => {
  const { roots, store } = useTestRoots(t);
  const unit = join(roots.NvRam, 'vm');
  mkdirSync(unit);
  writeFileSync(join(unit, 'VARS.fd'), 'old');
  const held = heldGate();
  const writing = store.write('NvRam', ['vm', 'VARS.fd'], Buffer.from('new'), undefined, { gate: held.gate });
  await reached(held, writing);
  held.fail(eio());
  await assert.rejects(writing, CommandNotRecorded);
  assert.deepEqual(treeOf(roots.NvRam), ['vm', 'vm/VARS.fd']);
  assert.equal(readFileSync(join(unit, 'VARS.fd'), 'utf8'), 'old');
});

test('delete: nothing moves before the record is durable; a failed record leaves the state where it was', async (t) => {
  const { roots, store } = useTestRoots(t);
  const unit = join(roots.TpmState, 'vm', 'tpm2');
  mkdirSync(unit, { recursive: true });
  writeFileSync(join(unit, 'tpm2-00.permall'), 'state');
  const held = heldGate();
  const removing = store.remove('TpmState', ['vm', 'tpm2', 'tpm2-00.permall'], undefined, { gate: held.gate });
  await reached(held, removing);
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/tpm2', 'vm/tpm2/tpm2-00.permall']);
  held.fail(eio());
  await assert.rejects(removing, CommandNotRecorded);
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/tpm2', 'vm/tpm2/tpm2-00.permall']);

  const open = heldGate();
  const again = store.remove('TpmState', ['vm', 'tpm2', 'tpm2-00.permall'], undefined, { gate: open.gate });
  await reached(open, again);
  open.open();
  assert.deepEqual(await again, { status: 'deleted' });
  assert.deepEqual(treeOf(roots.TpmState), []);
});

test('writeDir: the new state is staged before the gate, committed after it; a failed record drops the staging', async (t) => {
  const { roots, store } = useTestRoots(t);
  const unit = join(roots.TpmState, 'vm');
  mkdirSync(join(unit, 'tpm2'), { recursive: true });
  writeFileSync(join(unit, ...PERMALL), 'old');
  const held = heldGate();
  const writing = store.writeDir('TpmState', ['vm'], state('new'), undefined, { gate: held.gate });
  await reached(held, writing);
  const staged = tempNames(roots.TpmState);
  assert.equal(staged.length, 1, 'the staged tree is there before the gate');
  assert.deepEqual(treeOf(join(roots.TpmState, staged[0] ?? '')), ['tpm2', 'tpm2/tpm2-00.permall']);
  held.fail(eio());
  await assert.rejects(writing, CommandNotRecorded);
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/tpm2', 'vm/tpm2/tpm2-00.permall']);
  assert.equal(readFileSync(join(unit, ...PERMALL), 'utf8'), 'old');

  const fresh = heldGate();
  const made = store.writeDir('TpmState', ['new-vm'], state('s'), undefined, { gate: fresh.gate });
  await reached(fresh, made);
  fresh.fail(eio());
  await assert.rejects(made, CommandNotRecorded);
  assert.deepEqual(treeOf(roots.TpmState), ['vm', 'vm/tpm2', 'vm/tpm2/tpm2-00.permall'], 'no staging left either');
});

test('onDurable: the op answers once renamed, before its directory fsyncs; its unit stays locked until they are done', async (t) => {
  // The first write's two directory fsyncs held (the unit's, and the root's, which gained the unit).
  const fsyncs = heldDirSyncs(2);
  const { roots, store } = useTestRoots(t, { hooks: fsyncs.hooks });
  let durable: Promise<void> | undefined;
  const first = store.write('TpmState', ['vm', 'f'], Buffer.from('one'), undefined, {
    onDurable: (done) => {
      durable = done;
    },
  });
  await fsyncs.held;
  assert.equal(await settled(first), true, 'answered while its fsyncs are held');
  assert.deepEqual(await first, { status: 'written' });
  assert.equal(readFileSync(join(roots.TpmState, 'vm', 'f'), 'utf8'), 'one');
  assert.ok(durable !== undefined);
  assert.equal(await settled(durable), false, 'not durable yet');

  // Another write on the same unit waits for its lock; one on another unit, begun after it, runs to its end.
  const same = store.write('TpmState', ['vm', 'g'], Buffer.from('two'));
  assert.deepEqual(await store.write('TpmState', ['other', 'h'], Buffer.from('three')), { status: 'written' });
  assert.equal(await settled(same), false);
  assert.deepEqual(readdirSync(join(roots.TpmState, 'vm')), ['f'], 'the write on the locked unit has not begun');

  fsyncs.release();
  await durable;
  assert.deepEqual(await same, { status: 'written' });
  assert.deepEqual(readdirSync(join(roots.TpmState, 'vm')).sort(), ['f', 'g']);
});

test('writeDir: leftovers of an interrupted replace are settled only once the record is durable', async (t) => {
  const { roots, store } = useTestRoots(t);
  // A committed new state whose swap was cut off: settling it renames it into place.
  const fresh = join(roots.TpmState, roleName('new', 'vm') ?? '');
  mkdirSync(join(fresh, 'tpm2'), { recursive: true });
  writeFileSync(join(fresh, ...PERMALL), 'committed');
  const held = heldGate();
  const writing = store.writeDir('TpmState', ['vm'], state('next'), undefined, { gate: held.gate });
  await reached(held, writing);
  assert.deepEqual(readdirSync(roots.TpmState), [roleName('new', 'vm')], 'nothing settled before the gate');
  held.fail(eio());
  await assert.rejects(writing, CommandNotRecorded);
  assert.deepEqual(readdirSync(roots.TpmState), [roleName('new', 'vm')], 'nor after a failed record');
});

test('a refused write or writeDir leaves none of the directories it made for its target', async (t) => {
  const { roots, store } = useTestRoots(t);
  const digest = 'a'.repeat(64);
  assert.equal((await store.write('TpmState', ['vm', 'tpm2', 'f'], Buffer.from('x'), digest)).status, 'failed');
  assert.equal((await store.writeDir('NvRam', ['host', 'vm'], state('x'), digest)).status, 'failed');
  assert.deepEqual(treeOf(roots.TpmState), []);
  assert.deepEqual(treeOf(roots.NvRam), []);
  // What was there before stays.
  mkdirSync(join(roots.TpmState, 'kept'));
  assert.equal((await store.write('TpmState', ['kept', 'new', 'f'], Buffer.from('x'), digest)).status, 'failed');
  assert.deepEqual(treeOf(roots.TpmState), ['kept']);
});
