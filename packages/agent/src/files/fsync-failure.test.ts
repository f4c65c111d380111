// A directory fsync that fails after the change is in place never makes the answer a failure the disk contradicts;
// one that fails before the commit leaves nothing that recovery could install later.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { useTestRoots, type TestRoots } from './test-roots.js';
import type { StateEntry, StoreEvent } from './types.js';

const PERMALL = 'tpm2/tpm2-00.permall';
const state = (text: string): StateEntry[] => [{ components: PERMALL.split('/'), content: Buffer.from(text) }];
const codeOf = (a: { status: string; error?: { code: string } }): string => a.error?.code ?? a.status;
const eio = (): Error =>
  Object.assign(new Error('EIO: i/o error, fsync'), { errno: -5, code: 'EIO', syscall: 'fsync' });

interface Logged {
  readonly event: string;
  readonly level: string;
  readonly path?: string;
  readonly code?: string;
}

/** Roots whose directory fsyncs fail while `failing.on` is set, and whose store's log lines are kept. */
function useFailingSync(t: TestContext): TestRoots & { failing: { on: boolean }; logged: Logged[] } {
  const failing = { on: false };
  const logged: Logged[] = [];
  const roots = useTestRoots(t, {
    logger: createLogger<StoreEvent>({ write: (line) => logged.push(JSON.parse(line) as Logged) }),
    hooks: {
      committed: () => {
        failing.on = true;
        return Promise.resolve();
      },
      syncDir: async (dir: DirHandle) => {
        if (failing.on) throw eio();
        await dir.sync();
      },
    },
  });
  return { ...roots, failing, logged };
}

const fsyncFailed = (logged: readonly Logged[], path: string): Logged[] =>
  logged.filter((l) => l.event === 'fsync_failed' && l.path === path);

test('writeDir: the parent fsync fails once the new state is in place: written, logged, and the new state stays', async (t) => {
  const { roots, store, logged } = useFailingSync(t);
  const dir = join(roots.TpmState, 'vm');
  mkdirSync(join(dir, 'tpm2'), { recursive: true });
  writeFileSync(join(dir, PERMALL), 'old');
  assert.deepEqual(await store.writeDir('TpmState', ['vm'], state('new')), { status: 'written' });
  assert.equal(readFileSync(join(dir, PERMALL), 'utf8'), 'new');
  assert.deepEqual(readdirSync(roots.TpmState), ['vm'], 'the old state is gone, no temp name is left');
  assert.deepEqual(
    fsyncFailed(logged, dir).map((l) => [l.level, l.code]),
    [['warn', 'EIO']],
  );
  await store.recover();
  assert.equal(readFileSync(join(dir, PERMALL), 'utf8'), 'new', 'recovery agrees with the answer');
});

test('writeDir of a new state below new parents: their fsyncs fail too, and the answer is still written', async (t) => {
  const { roots, store, logged } = useFailingSync(t);
  const dir = join(roots.TpmState, 'a', 'b', 'vm');
  assert.deepEqual(await store.writeDir('TpmState', ['a', 'b', 'vm'], state('new')), { status: 'written' });
  assert.equal(readFileSync(join(dir, PERMALL), 'utf8'), 'new');
  assert.equal(fsyncFailed(logged, dir).length, 1);
});

test('write and delete: the directory fsync after the rename or removal fails: written and deleted, logged', async (t) => {
  const { roots, store, logged, failing } = useFailingSync(t);
  const path = join(roots.NvRam, 'vm_VARS.fd');
  writeFileSync(path, 'old');
  failing.on = true;
  assert.deepEqual(await store.write('NvRam', ['vm_VARS.fd'], Buffer.from('new')), { status: 'written' });
  assert.equal(readFileSync(path, 'utf8'), 'new');
  assert.deepEqual(await store.remove('NvRam', ['vm_VARS.fd']), { status: 'deleted' });
  assert.equal(existsSync(path), false);
  assert.deepEqual(
    fsyncFailed(logged, path).map((l) => [l.level, l.code]),
    [
      ['warn', 'EIO'],
      ['warn', 'EIO'],
    ],
  );
  assert.deepEqual(readdirSync(roots.NvRam), []);
});

test('writeDir: the fsync of the commit fails: a failure, and nothing that recovery could install later', async (t) => {
  const { roots, store, failing } = useFailingSync(t);
  const dir = join(roots.TpmState, 'vm');
  mkdirSync(join(dir, 'tpm2'), { recursive: true });
  writeFileSync(join(dir, PERMALL), 'old');
  failing.on = true;
  assert.equal(codeOf(await store.writeDir('TpmState', ['vm'], state('new'))), 'io_error');
  failing.on = false;
  assert.ok(!readdirSync(roots.TpmState).some((name) => name.includes('new.')), 'no new. left');
  await store.recover();
  assert.equal(readFileSync(join(dir, PERMALL), 'utf8'), 'old');
  assert.deepEqual(readdirSync(roots.TpmState), ['vm']);
});
