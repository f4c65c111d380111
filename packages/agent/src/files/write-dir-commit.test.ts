// A writeDir's last checks: a target that changes or becomes busy while the state is staged refuses the write before
// anything is committed; a state refused after its commit is never left where recovery would install it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stateDigest } from '@hostfiles/shared';
import { TEMP_PREFIX } from './temp-name.js';
import { flockAvailable, holdFlock, treeOf, useTestRoots } from './test-roots.js';
import type { StateEntry, StoreHooks } from './types.js';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const PERMALL = 'tpm2/tpm2-00.permall';
const state = (text: string): StateEntry[] => [{ components: PERMALL.split('/'), content: Buffer.from(text) }];
const digestOf = (text: string): string => stateDigest([{ path: PERMALL, sha256: sha(text) }]);
const codeOf = (a: { status: string; error?: { code: string } }): string => a.error?.code ?? a.status;

/** Hooks that run `staged`/`committed` once, and count the commits. */
function stepHooks(steps: { staged?: () => Promise<void> | void; committed?: () => Promise<void> | void }): {
  hooks: StoreHooks;
  commits: () => number;
} {
  let commits = 0;
  return {
    hooks: {
      staged: async () => {
        await steps.staged?.();
      },
      committed: async () => {
        commits += 1;
        await steps.committed?.();
      },
    },
    commits: () => commits,
  };
}

function putState(path: string, text: string): void {
  mkdirSync(join(path, 'tpm2'), { recursive: true });
  writeFileSync(join(path, PERMALL), text);
}

test('the target changes while the state is staged: changed, and nothing was ever committed', async (t) => {
  const dir = (r: string): string => join(r, 'vm');
  const steps = stepHooks({
    staged: () => {
      writeFileSync(join(dir(roots.TpmState), PERMALL), 'changed by a swtpm meanwhile');
    },
  });
  const { roots, store } = useTestRoots(t, { hooks: steps.hooks });
  putState(dir(roots.TpmState), 'v1');
  const answer = await store.writeDir('TpmState', ['vm'], state('v2'), digestOf('v1'));
  assert.equal(codeOf(answer), 'changed');
  assert.equal(steps.commits(), 0, 'refused before the commit');
  assert.equal(readFileSync(join(dir(roots.TpmState), PERMALL), 'utf8'), 'changed by a swtpm meanwhile');
  assert.deepEqual(readdirSync(roots.TpmState), ['vm'], 'no staging left');
});

test('the target becomes busy while the state is staged: busy, and nothing was ever committed', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const lock = (r: string): string => join(r, 'vm', 'tpm2', '.lock');
  const steps = stepHooks({
    staged: async () => {
      await holdFlock(t, lock(roots.TpmState));
    },
  });
  const { roots, store } = useTestRoots(t, { hooks: steps.hooks });
  putState(join(roots.TpmState, 'vm'), 'v1');
  writeFileSync(lock(roots.TpmState), '');
  assert.equal(codeOf(await store.writeDir('TpmState', ['vm'], state('v2'))), 'busy');
  assert.equal(steps.commits(), 0, 'refused before the commit');
  assert.equal(readFileSync(join(roots.TpmState, 'vm', PERMALL), 'utf8'), 'v1');
  assert.deepEqual(readdirSync(roots.TpmState), ['vm']);
});

test('refused after the commit and its removal failing: the refused state is never where recovery installs it', async (t) => {
  let failSync = false;
  const steps = stepHooks({
    committed: () => {
      writeFileSync(join(roots.TpmState, 'vm', PERMALL), 'changed during the commit');
      failSync = true;
    },
  });
  const hooks: StoreHooks = {
    ...steps.hooks,
    syncDir: async (dir) => {
      if (failSync)
        throw Object.assign(new Error('EIO: i/o error, fsync'), { errno: -5, code: 'EIO', syscall: 'fsync' });
      await dir.sync();
    },
  };
  const { roots, store } = useTestRoots(t, { hooks });
  putState(join(roots.TpmState, 'vm'), 'v1');
  const answer = await store.writeDir('TpmState', ['vm'], state('v2'), digestOf('v1'));
  assert.equal(codeOf(answer), 'changed', 'the refusal is the answer, not the failed cleanup');
  assert.equal(steps.commits(), 1);
  assert.ok(!treeOf(roots.TpmState).some((p) => p.startsWith(`${TEMP_PREFIX}new.`)), 'no new. left');
  failSync = false;
  await store.recover();
  assert.equal(readFileSync(join(roots.TpmState, 'vm', PERMALL), 'utf8'), 'changed during the commit');
  assert.deepEqual(readdirSync(roots.TpmState), ['vm']);
});
