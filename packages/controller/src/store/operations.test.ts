// The operations journal as `ops list` and GET /v1/operations read it: filters, newest first, a bounded limit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manualClock, openTempStore } from './test-support.js';
import type { OperationKind, Store } from './types.js';

/** Starts an operation at `at`, finished in `state` unless that is 'running'. */
async function journal(
  store: Store,
  clock: ReturnType<typeof manualClock>,
  at: number,
  id: string,
  kind: OperationKind,
  state: 'running' | 'done' | 'failed',
): Promise<void> {
  clock.set(at);
  await store.startOperation({ id, kind, subject: `s-${id}`, step: 'start', input: { id } });
  if (state !== 'running') await store.finishOperation(id, state, { ended: state });
}

describe('listOperations', () => {
  it('answers newest first (created, then id), filtered by state and kind, at most limit', async (t) => {
    const clock = manualClock(1000);
    const { store } = await openTempStore(t, { now: clock.now });
    await journal(store, clock, 1, 'a', 'tpm.remove', 'done');
    await journal(store, clock, 2, 'b', 'file.write', 'failed');
    // Two at the same time: the id decides, so pages never shuffle.
    await journal(store, clock, 3, 'c', 'file.write', 'done');
    await journal(store, clock, 3, 'd', 'file.write', 'running');
    await journal(store, clock, 4, 'e', 'vm.sync', 'running');

    const ids = async (filter: Parameters<Store['listOperations']>[0]) =>
      (await store.listOperations(filter)).map((o) => o.id);
    assert.deepEqual(await ids({ limit: 50 }), ['e', 'd', 'c', 'b', 'a']);
    assert.deepEqual(await ids({ limit: 2 }), ['e', 'd']);
    assert.deepEqual(await ids({ state: 'running', limit: 50 }), ['e', 'd']);
    assert.deepEqual(await ids({ kind: 'file.write', limit: 50 }), ['d', 'c', 'b']);
    assert.deepEqual(await ids({ kind: 'file.write', state: 'done', limit: 50 }), ['c']);
    assert.deepEqual(await ids({ kind: 'nope', limit: 50 }), []);

    const [failed] = await store.listOperations({ state: 'failed', limit: 1 });
    assert.deepEqual(failed, {
      id: 'b',
      kind: 'file.write',
      subject: 's-b',
      step: 'start',
      state: 'failed',
      input: { id: 'b' },
      report: { ended: 'failed' },
      createdAt: 2,
      updatedAt: 2,
    });
  });

  it('refuses a limit that is not a whole number from 1', async (t) => {
    const { store } = await openTempStore(t);
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(store.listOperations({ limit }), RangeError);
    }
    assert.deepEqual(await store.listOperations({ limit: 1 }), []);
  });
});
