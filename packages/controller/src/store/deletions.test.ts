// The outbox: what is due, backoff after a failed attempt, merging a repeated deletion, confirming the last one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addHost, manualClock, openTempStore, pendingRow } from './test-support.js';

describe('pending deletions', () => {
  it('lists what is due (nextAttemptAt ≤ now), by host, earliest first, and backs off a failed attempt', async (t) => {
    const { store } = await openTempStore(t);
    const h1 = await addHost(store, 'h1');
    const h2 = await addHost(store, 'h2');
    const [a, b, c] = await store.addPendingDeletions([
      pendingRow(h1, '/tpm/a', 200),
      pendingRow(h1, '/tpm/b', 100),
      pendingRow(h2, '/tpm/c', 150),
      pendingRow(h2, '/tpm/later', 1000),
    ]);
    const paths = async (now: number, options?: { hostUuid?: string; limit?: number }) =>
      (await store.listDueDeletions(now, options)).map((p) => p.path);

    assert.deepEqual(await paths(99), []);
    assert.deepEqual(await paths(200), ['/tpm/b', '/tpm/a', '/tpm/c']);
    assert.deepEqual(await paths(200, { hostUuid: h2 }), ['/tpm/c']);
    assert.deepEqual(await paths(200, { limit: 1 }), ['/tpm/b']);
    assert.equal(await store.nextDeletionDueAt(), 100);
    assert.equal(await store.nextDeletionDueAt(h2), 150);

    assert.ok(b && a && c);
    assert.equal(await store.markDeletionFailed(b.id, { nextAttemptAt: 400, lastError: 'unreachable' }), true);
    assert.deepEqual(await paths(200), ['/tpm/a', '/tpm/c']);
    assert.deepEqual(await paths(400), ['/tpm/a', '/tpm/b', '/tpm/c']);
    const [failed] = await store.listPendingDeletions({ hostUuid: h1 });
    assert.equal(failed?.path, '/tpm/a');
    const retried = (await store.listPendingDeletions({ hostUuid: h1 })).find((p) => p.id === b.id);
    assert.deepEqual([retried?.attempts, retried?.nextAttemptAt, retried?.lastError], [1, 400, 'unreachable']);
    assert.equal(await store.nextDeletionDueAt(), 150);

    assert.equal(await store.deletePendingDeletions([a.id, c.id, 12345]), 2);
    assert.equal(await store.markDeletionFailed(a.id, { nextAttemptAt: 1, lastError: 'late' }), false);
    assert.deepEqual(await paths(10_000), ['/tpm/b', '/tpm/later']);
  });

  it('merges a deletion repeated at the same (host, path): one row, attempts kept, the earlier attempt', async (t) => {
    const clock = manualClock(10);
    const { store } = await openTempStore(t, { now: clock.now });
    const h1 = await addHost(store, 'h1');
    const [first] = await store.addPendingDeletions([pendingRow(h1, '/tpm/a', 500, 'tpm1')]);
    assert.ok(first);
    await store.markDeletionFailed(first.id, { nextAttemptAt: 900, lastError: 'timeout' });
    clock.set(20);
    const [merged] = await store.addPendingDeletions([{ ...pendingRow(h1, '/tpm/a', 700, null), vmUuid: 'vm-again' }]);
    assert.deepEqual(merged, {
      ...first,
      vmUuid: 'vm-again',
      attempts: 1,
      nextAttemptAt: 700,
      lastError: 'timeout',
      tpmUuid: 'tpm1',
    });
    assert.equal((await store.listPendingDeletions()).length, 1);
    const [later] = await store.addPendingDeletions([pendingRow(h1, '/tpm/a', 5000, 'tpm1')]);
    assert.equal(later?.nextAttemptAt, 700);
  });

  it('counts what a removed TPM still waits for, so the last confirmation can detach its binding', async (t) => {
    const { store } = await openTempStore(t);
    const h1 = await addHost(store, 'h1');
    const h2 = await addHost(store, 'h2');
    const vm = 'vm-1';
    await store.addVm({ uuid: vm, name: 'vm1', hostUuid: h1, bootMode: 'UEFI', secureBoot: false });
    await store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' });
    const rows = await store.addPendingDeletions([
      pendingRow(h1, '/tpm/1', 0, 'tpm1'),
      pendingRow(h2, '/tpm/1', 0, 'tpm1'),
      pendingRow(h2, '/nvram/1', 0),
    ]);
    await store.transaction(async (tx) => {
      await tx.removeTpm('tpm1');
      await tx.setKeyBindingState('tpm1', 'detaching');
    });
    assert.equal(await store.countPendingDeletionsForTpm('tpm1'), 2);
    assert.deepEqual(
      (await store.listPendingDeletions({ tpmUuid: 'tpm1' })).map((p) => p.hostUuid),
      [h1, h2],
    );
    // What the retry worker does when its confirmations come back, one transaction each.
    const confirm = (id: number) =>
      store.transaction(async (tx) => {
        await tx.deletePendingDeletions([id]);
        if ((await tx.countPendingDeletionsForTpm('tpm1')) === 0) await tx.deleteKeyBinding('tpm1');
      });
    await confirm(rows[0]?.id ?? -1);
    assert.equal((await store.getKeyBinding('tpm1'))?.state, 'detaching');
    await confirm(rows[1]?.id ?? -1);
    assert.equal(await store.getKeyBinding('tpm1'), null);
    assert.deepEqual(
      (await store.listKeyBindings()).map((b) => b.tpmUuid),
      [],
    );
    assert.equal((await store.listPendingDeletions()).length, 1);
  });
});
