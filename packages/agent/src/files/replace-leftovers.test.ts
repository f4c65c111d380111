// A replace's `new.` and `old.` names are looked for before an op on its target only while some may be there: until
// startup recovery has settled the root, and again once a replace ends leaving one (ReplaceLeftovers).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { QUARANTINE_PREFIX } from './settle.js';
import { roleName } from './temp-name.js';
import { STATE_WALK } from './tree-walk.js';
import { useTestRoots } from './test-roots.js';
import type { StateEntry } from './types.js';

const state = (text: string): StateEntry[] => [{ components: ['tpm2', 'tpm2-00.permall'], content: Buffer.from(text) }];

/** A directory with a file at `path`, as a replace cut off would leave its old state. */
function plantOld(path: string): void {
  mkdirSync(join(path, 'tpm2'), { recursive: true });
  writeFileSync(join(path, 'tpm2', 'tpm2-00.permall'), 'old state');
}

test('after a clean recovery no op looks for replace leftovers, until a replace leaves one behind', async (t) => {
  const armed = { on: false, root: '' };
  const { roots, store } = useTestRoots(t, {
    hooks: {
      // After the commit, something is put where the old state must go: the swap fails, and the name stays.
      committed: () => {
        if (armed.on) plantOld(join(armed.root, roleName('old', 'b') ?? ''));
        return Promise.resolve();
      },
    },
  });
  armed.root = roots.TpmState;
  assert.deepEqual(await store.recover(), { completed: 0, restored: 0, removed: 0, quarantined: 0 });
  assert.deepEqual(await store.writeDir('TpmState', ['a'], state('a')), { status: 'written' });
  // No replace of `a` left this: an op on `a` does not look for it (two lstats fewer), and leaves it be.
  const oldA = join(roots.TpmState, roleName('old', 'a') ?? '');
  plantOld(oldA);
  assert.deepEqual(await store.remove('TpmState', ['a']), { status: 'deleted' });
  assert.equal(existsSync(oldA), true, 'not looked for');

  assert.deepEqual(await store.writeDir('TpmState', ['b'], state('b')), { status: 'written' });
  armed.on = true;
  const failed = await store.writeDir('TpmState', ['b'], state('b2'));
  armed.on = false;
  assert.equal(failed.status === 'failed' && failed.error.code, 'io_error');
  // From now on each op settles its target's leftovers first, as a restart would: the old state of `a` goes back to
  // its name (nothing newer was committed), then the delete deletes it.
  assert.deepEqual(await store.remove('TpmState', ['a']), { status: 'deleted' });
  assert.equal(existsSync(oldA), false, 'settled');
  assert.deepEqual(readdirSync(roots.TpmState).sort(), ['b', roleName('old', 'b')].sort());
});

test('before recovery has run, ops look for replace leftovers', async (t) => {
  const { roots, store } = useTestRoots(t);
  plantOld(join(roots.TpmState, roleName('old', 'a') ?? ''));
  assert.deepEqual(await store.remove('TpmState', ['a']), { status: 'deleted' }, 'put back, then deleted');
  assert.deepEqual(readdirSync(roots.TpmState), []);
});

test('after a recovery that left something as it was, ops keep looking for replace leftovers', async (t) => {
  const cases: Record<string, (root: string) => void> = {
    // deeper than a state may be: its recovery fails (recovery_failed), the unit is left as it is
    'a unit it could not recover': (root) => {
      mkdirSync(join(root, 'deep', ...Array.from({ length: STATE_WALK.maxDepth + 1 }, (_, i) => `d${i}`)), {
        recursive: true,
      });
    },
    // never recovered into: whatever is in it stays
    'a quarantine': (root) => {
      mkdirSync(join(root, `${QUARANTINE_PREFIX}1.x`));
    },
    // a cut-off replace whose old state goes back: what is below it is not recovered on the way
    'a state put back': (root) => {
      plantOld(join(root, roleName('old', 'back') ?? ''));
    },
  };
  for (const [what, make] of Object.entries(cases)) {
    const { roots, store } = useTestRoots(t);
    make(roots.TpmState);
    await store.recover();
    plantOld(join(roots.TpmState, roleName('old', 'a') ?? ''));
    assert.deepEqual(await store.remove('TpmState', ['a']), { status: 'deleted' }, what);
    assert.equal(existsSync(join(roots.TpmState, roleName('old', 'a') ?? '')), false, `${what}: settled`);
  }
});
