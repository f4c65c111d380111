// File rows, the write that cancels a pending deletion, and the TPM-removal purge as one transaction.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError } from './errors.js';
import { addHost, addVm, fileBackup, fileRow, manualClock, openTempStore, pendingRow, sha } from './test-support.js';
import type { Store, StoreTx } from './types.js';

describe('files', () => {
  it('upserts one row per (vm, host, type), keeping its uuid, and reports the previous one', async (t) => {
    const { store } = await openTempStore(t);
    const host = await addHost(store, 'h1');
    const vm = await addVm(store, 'vm1', host);
    const first = await store.upsertFile(fileRow(vm, host, 'TpmState', '/tpm/a'));
    assert.equal(first.previous, null);
    const moved = await store.upsertFile({ ...fileRow(vm, host, 'TpmState', '/tpm/b', 'b'), uuid: 'ignored' });
    assert.equal(moved.file.uuid, first.file.uuid);
    assert.equal(moved.file.path, '/tpm/b');
    assert.equal(moved.previous?.path, '/tpm/a');
    await store.upsertFile(fileRow(vm, host, 'NvRam', '/nvram/vm1.fd'));
    assert.deepEqual(
      (await store.listFilesByVm(vm)).map((f) => [f.type, f.path]),
      [
        ['NvRam', '/nvram/vm1.fd'],
        ['TpmState', '/tpm/b'],
      ],
    );
    assert.deepEqual(
      (await store.listFilesByVm(vm, 'NvRam')).map((f) => f.path),
      ['/nvram/vm1.fd'],
    );
    assert.equal(await store.deleteFiles([first.file.uuid, 'absent']), 1);
    assert.deepEqual(
      (await store.listFilesByHost(host)).map((f) => f.path),
      ['/nvram/vm1.fd'],
    );
  });

  it('cancels the pending deletion at the same (host, path) in the upsert’s own transaction', async (t) => {
    const { store } = await openTempStore(t);
    const host = await addHost(store, 'h1');
    const vm = await addVm(store, 'vm1', host);
    const [stale] = await store.addPendingDeletions([pendingRow(host, '/tpm/vm1', 0, 'old-tpm')]);
    await store.addPendingDeletions([pendingRow(host, '/tpm/other', 0)]);

    // Rolled back with its transaction: the deletion is still pending, and no row was written.
    await assert.rejects(
      store.transaction(async (tx) => {
        const { cancelled } = await tx.upsertFile(fileRow(vm, host, 'TpmState', '/tpm/vm1'));
        assert.deepEqual(
          cancelled.map((c) => c.id),
          [stale?.id],
        );
        assert.deepEqual(
          (await tx.listPendingDeletions()).map((p) => p.path),
          ['/tpm/other'],
        );
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.deepEqual(
      (await store.listPendingDeletions()).map((p) => p.path),
      ['/tpm/other', '/tpm/vm1'],
    );
    assert.deepEqual(await store.listFilesByVm(vm), []);

    const { cancelled } = await store.upsertFile(fileRow(vm, host, 'TpmState', '/tpm/vm1'));
    assert.deepEqual(cancelled, [stale]);
    assert.deepEqual(
      (await store.listPendingDeletions()).map((p) => p.path),
      ['/tpm/other'],
    );
    assert.equal(await store.countPendingDeletionsForTpm('old-tpm'), 0);
  });

  it('leaves the pending deletion in place when the upsert itself is refused', async (t) => {
    const { store } = await openTempStore(t);
    const host = await addHost(store, 'h1');
    const vm1 = await addVm(store, 'vm1', host);
    const vm2 = await addVm(store, 'vm2', host);
    await store.upsertFile(fileRow(vm1, host, 'TpmState', '/tpm/shared'));
    await store.addPendingDeletions([pendingRow(host, '/tpm/shared', 0)]);
    const attempt = store.transaction(async (tx) => {
      await assert.rejects(tx.upsertFile(fileRow(vm2, host, 'TpmState', '/tpm/shared')), (e) =>
        isStoreError(e, 'conflict'),
      );
      return tx.listPendingDeletions();
    });
    assert.equal((await attempt).length, 1);
  });

  it('upserts one backup per (vm, type), with exactly its entries', async (t) => {
    const clock = manualClock(100);
    const { store } = await openTempStore(t, { now: clock.now });
    const vm = await addVm(store, 'vm1', null);
    const first = await store.upsertBackup(fileBackup('b1', vm, 'TpmState', Uint8Array.of(1), '1'));
    clock.set(200);
    const entry = (path: string, bytes: number[], digit: string) => ({
      path,
      content: Buffer.from(bytes),
      encoding: 'identity' as const,
      sha256: sha(digit),
      size: bytes.length,
    });
    const second = await store.upsertBackup({
      uuid: 'b2',
      vmUuid: vm,
      type: 'TpmState',
      kind: 'dir',
      sha256: sha('2'),
      size: 3,
      entries: [entry('tpm2/tpm2-00.volatilestate', [3], '4'), entry('tpm2/tpm2-00.permall', [2, 2], '3')],
    });
    assert.equal(first.updatedAt, 100);
    assert.deepEqual(second, {
      uuid: 'b1',
      vmUuid: vm,
      type: 'TpmState',
      kind: 'dir',
      sha256: sha('2'),
      size: 3,
      updatedAt: 200,
    });
    assert.deepEqual(
      (await store.listBackupEntries('b1')).map((e) => ({ ...e, content: [...e.content] })),
      [
        { ...entry('tpm2/tpm2-00.permall', [], '3'), content: [2, 2], size: 2 },
        { ...entry('tpm2/tpm2-00.volatilestate', [], '4'), content: [3], size: 1 },
      ],
      'the first entry is gone, the two new ones are there, by path',
    );
    assert.equal((await store.listBackupsByVm(vm)).length, 1);
    assert.equal((await store.listBackupsByVm(vm, 'NvRam')).length, 0);
    assert.equal(await store.deleteBackups(['b1']), 1);
    assert.deepEqual(await store.listBackupsByVm(vm), []);
    assert.deepEqual(await store.listBackupEntries('b1'), [], 'its entries went with it');
  });
});

/** A VM with a TPM, its state and NVRAM on two hosts, and backups of both. */
async function seedRemoval(store: Store) {
  const h1 = await addHost(store, 'h1');
  const h2 = await addHost(store, 'h2');
  const vm = await addVm(store, 'vm1', h1);
  await store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' });
  const state1 = await store.upsertFile(fileRow(vm, h1, 'TpmState', '/tpm/vm1'));
  const state2 = await store.upsertFile(fileRow(vm, h2, 'TpmState', '/tpm/vm1'));
  const nvram = await store.upsertFile(fileRow(vm, h1, 'NvRam', '/nvram/vm1.fd'));
  const backup = await store.upsertBackup(fileBackup('b1', vm, 'TpmState', Uint8Array.of(7), '7'));
  return { h1, h2, vm, state1: state1.file, state2: state2.file, nvram: nvram.file, backup };
}

type Seed = Awaited<ReturnType<typeof seedRemoval>>;

/** The purge of DESIGN.md step 4: h1's file was deleted, h2's is unconfirmed. `fail` breaks it after the outbox insert. */
async function purge(tx: StoreTx, seed: Seed, fail: boolean): Promise<void> {
  await tx.deleteFiles([seed.state1.uuid, seed.state2.uuid]);
  await tx.deleteBackups([seed.backup.uuid]);
  await tx.removeTpm('tpm1');
  await tx.addPendingDeletions([{ ...pendingRow(seed.h2, seed.state2.path, 500, 'tpm1'), vmUuid: seed.vm }]);
  if (fail) await tx.addPendingDeletions([pendingRow('host-gone', '/tpm/x', 500, 'tpm1')]);
  const remaining = await tx.countPendingDeletionsForTpm('tpm1');
  if (remaining > 0) await tx.setKeyBindingState('tpm1', 'detaching');
  else await tx.deleteKeyBinding('tpm1');
}

async function snapshot(store: Store, vm: string) {
  return {
    tpm: await store.getTpmByVm(vm),
    files: await store.listFilesByVm(vm),
    backups: (await store.listBackupsByVm(vm)).map((b) => b.uuid),
    pending: await store.listPendingDeletions(),
    binding: await store.getKeyBinding('tpm1'),
  };
}

describe('the TPM-removal purge', () => {
  it('changes nothing when it fails midway', async (t) => {
    const { store } = await openTempStore(t);
    const seed = await seedRemoval(store);
    const before = await snapshot(store, seed.vm);
    await assert.rejects(
      store.transaction((tx) => purge(tx, seed, true)),
      (error) => isStoreError(error, 'constraint'),
    );
    assert.deepEqual(await snapshot(store, seed.vm), before);
    assert.equal(before.binding?.state, 'attached');
  });

  it('applies whole: rows gone, the unconfirmed file pending, the binding detaching; NVRAM untouched', async (t) => {
    const { store } = await openTempStore(t);
    const seed = await seedRemoval(store);
    await store.transaction((tx) => purge(tx, seed, false));
    const after = await snapshot(store, seed.vm);
    assert.equal(after.tpm, null);
    assert.deepEqual(
      after.files.map((f) => f.uuid),
      [seed.nvram.uuid],
    );
    assert.deepEqual(after.backups, []);
    assert.deepEqual(
      after.pending.map((p) => [p.hostUuid, p.path, p.tpmUuid, p.vmUuid]),
      [[seed.h2, '/tpm/vm1', 'tpm1', seed.vm]],
    );
    assert.equal(after.binding?.state, 'detaching');
  });
});
