// File rows, the write that cancels a pending deletion, and the TPM-removal purge (the flow's) as one transaction.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { removeTpms } from '../flows/index.js';
import { isStoreError } from './errors.js';
import { failingAtFinish, flowHosts, RETRY_BASE_MS, type AgentHost } from './flow-support.js';
import {
  addHost,
  addVm,
  fileBackup,
  fileRow,
  manualClock,
  ENGINES,
  onEngine,
  openStore,
  pendingRow,
  sha,
} from './test-support.js';
import type { Store } from './types.js';

for (const engine of ENGINES)
  describe(`files (${engine})`, onEngine(engine), () => {
    it('upserts one row per (vm, host, type), keeping its uuid, and reports the previous one', async (t) => {
      const store = await openStore(t, engine);
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
      const store = await openStore(t, engine);
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
      const store = await openStore(t, engine);
      const host = await addHost(store, 'h1');
      const vm1 = await addVm(store, 'vm1', host);
      const vm2 = await addVm(store, 'vm2', host);
      await store.upsertFile(fileRow(vm1, host, 'TpmState', '/tpm/shared'));
      await store.addPendingDeletions([pendingRow(host, '/tpm/shared', 0)]);
      let later: unknown;
      const attempt = store.transaction(async (tx) => {
        await assert.rejects(tx.upsertFile(fileRow(vm2, host, 'TpmState', '/tpm/shared')), (e) =>
          isStoreError(e, 'conflict'),
        );
        // The refusal ended the transaction, on either engine: nothing after it runs, nothing of it commits.
        later = await tx.listPendingDeletions().catch((error: unknown) => error);
      });
      // …and it fails even though the callback caught the refusal and returned.
      await assert.rejects(attempt, (e) => isStoreError(e, 'io') && /failed at an earlier statement/.test(e.message));
      assert.ok(isStoreError(later, 'io') && /failed at an earlier statement/.test(later.message));
      assert.equal((await store.listPendingDeletions()).length, 1);
    });

    it('records numbered generations per (vm, type) with exactly their entries, and reads the newest as the backup', async (t) => {
      const clock = manualClock(100);
      const store = await openStore(t, engine, { now: clock.now });
      const host = await addHost(store, 'h1');
      const vm = await addVm(store, 'vm1', host);
      const first = await store.recordGeneration(fileBackup('b1', vm, 'TpmState', Uint8Array.of(1), '1'));
      clock.set(200);
      const entry = (path: string, bytes: number[], digit: string) => ({
        path,
        content: Buffer.from(bytes),
        encoding: 'identity' as const,
        sha256: sha(digit),
        size: bytes.length,
      });
      const dir = {
        uuid: 'b2',
        vmUuid: vm,
        type: 'TpmState' as const,
        kind: 'dir' as const,
        sha256: sha('2'),
        size: 3,
        source: 'adopt' as const,
        hostUuid: host,
        entries: [entry('tpm2/tpm2-00.volatilestate', [3], '4'), entry('tpm2/tpm2-00.permall', [2, 2], '3')],
      };
      const second = await store.recordGeneration(dir);
      assert.deepEqual([first.created, first.backup.generation, first.backup.capturedAt], [true, 1, 100]);
      const expected = {
        uuid: 'b2',
        vmUuid: vm,
        type: 'TpmState',
        generation: 2,
        kind: 'dir',
        sha256: sha('2'),
        size: 3,
        source: 'adopt',
        hostUuid: host,
        capturedAt: 200,
      };
      assert.deepEqual(second, { backup: expected, created: true, pruned: [] });
      // The same state again makes nothing: the newest already holds it.
      clock.set(300);
      assert.deepEqual(await store.recordGeneration({ ...dir, uuid: 'b3' }), {
        backup: expected,
        created: false,
        pruned: [],
      });
      assert.deepEqual(
        (await store.listBackupEntries('b2')).map((e) => ({ ...e, content: [...e.content] })),
        [
          { ...entry('tpm2/tpm2-00.permall', [], '3'), content: [2, 2], size: 2 },
          { ...entry('tpm2/tpm2-00.volatilestate', [], '4'), content: [3], size: 1 },
        ],
        'its entries, by path',
      );
      assert.equal((await store.listBackupEntries('b1')).length, 1, 'the older generation keeps its own');
      assert.deepEqual(await store.listBackupsByVm(vm), [expected], 'the backup is the newest generation');
      assert.deepEqual(
        (await store.listBackupsByVms([vm])).map((b) => b.generation),
        [2],
      );
      assert.deepEqual(
        (await store.listGenerations(vm)).map((b) => b.generation),
        [2, 1],
        'newest first',
      );
      assert.equal((await store.getGeneration(vm, 'TpmState', 1))?.uuid, 'b1');
      assert.equal(await store.getGeneration(vm, 'TpmState', 3), null);
      assert.equal((await store.listBackupsByVm(vm, 'NvRam')).length, 0);
      // A host removed leaves its generations without a source host.
      await store.setVmHost(vm, null);
      await store.removeHost(host);
      assert.equal((await store.getGeneration(vm, 'TpmState', 2))?.hostUuid, null);
    });

    it("keeps the database's last N generations, never reuses a number, and deletes them all with the state", async (t) => {
      const store = await openStore(t, engine);
      const vm = await addVm(store, 'vm1', null);
      const capture = (digit: string) =>
        store.recordGeneration(fileBackup(`b${digit}`, vm, 'NvRam', Buffer.from(digit), digit));
      assert.equal(await store.getKeepGenerations(), 5, 'unset: the default');
      for (const digit of ['1', '2', '3']) await capture(digit);
      // A lower N drops nothing by itself: the next capture of the (vm, type) prunes to it.
      await store.setKeepGenerations(2);
      assert.equal(await store.getKeepGenerations(), 2);
      assert.equal((await store.listGenerations(vm)).length, 3);
      assert.deepEqual((await capture('4')).pruned, [1, 2], 'the oldest beyond the last 2, oldest first');
      assert.deepEqual(
        (await store.listGenerations(vm)).map((b) => b.generation),
        [4, 3],
      );
      assert.deepEqual(await store.listBackupEntries('b1'), [], 'its entries went with it');
      // keep 1 never drops the newest, even when the capture made nothing new; set inside the capture's own
      // transaction, it is the value that capture prunes to.
      const same = await store.transaction(async (tx) => {
        await tx.setKeepGenerations(1);
        return tx.recordGeneration(fileBackup('b4', vm, 'NvRam', Buffer.from('4'), '4'));
      });
      assert.deepEqual([same.created, same.pruned], [false, [3]]);
      assert.deepEqual(
        (await store.listGenerations(vm)).map((b) => b.generation),
        [4],
      );
      for (const bad of [0, 10_000, 2.5]) await assert.rejects(store.setKeepGenerations(bad), RangeError);
      assert.equal(await store.getKeepGenerations(), 1, 'a refused value changes nothing');
      await store.setKeepGenerations(5);
      await store.recordGeneration(fileBackup('t1', vm, 'TpmState', Uint8Array.of(9), '9'));
      // The NvRam state deleted (a TPM removal drops it): every generation goes; the counter stays.
      assert.equal(await store.deleteGenerations(vm, ['NvRam']), 1);
      assert.deepEqual(await store.listGenerations(vm, 'NvRam'), []);
      assert.equal((await capture('6')).backup.generation, 5, 'numbers go on: 4 is never given again');
      assert.equal(await store.deleteGenerations(vm), 2, 'all types');
      assert.deepEqual(await store.listGenerations(vm), []);
    });
  });

/**
 * A VM with secure boot and a TPM: its TPM state on two real agents (on h1's disk too), its NVRAM on h1, and a
 * backup of its TPM state. h2's agent is stopped: its deletion can't be confirmed.
 */
async function seedRemoval(t: TestContext, store: Store) {
  const clock = manualClock();
  const { deps, hosts } = await flowHosts(t, store, ['h1', 'h2'], clock.now);
  const [h1, h2] = hosts.map((host) => host.uuid);
  assert.ok(h1 !== undefined && h2 !== undefined && hosts[1] !== undefined);
  // A real uuid (flows resolve one by its form); secure boot: NVRAM is never touched.
  const vm = randomUUID();
  await store.addVm({ uuid: vm, name: 'vm1', hostUuid: h1, bootMode: 'UEFI', secureBoot: true });
  await store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' });
  const onDisk = join(rootOf(hosts, 0, 'TpmState'), 'vm1');
  mkdirSync(join(onDisk, 'tpm2'), { recursive: true });
  writeFileSync(join(onDisk, 'tpm2', 'tpm2-00.permall'), 'seeds');
  const stateRow = (host: string, path: string) => ({ ...fileRow(vm, host, 'TpmState', path), kind: 'dir' as const });
  const state1 = await store.upsertFile(stateRow(h1, onDisk));
  const state2 = await store.upsertFile(stateRow(h2, join(rootOf(hosts, 1, 'TpmState'), 'vm1')));
  const nvram = await store.upsertFile(fileRow(vm, h1, 'NvRam', join(rootOf(hosts, 0, 'NvRam'), 'vm1_VARS.fd')));
  const { backup } = await store.recordGeneration(fileBackup('b1', vm, 'TpmState', Uint8Array.of(7), '7'));
  await hosts[1].agent.stop();
  return { deps, h1, h2, vm, onDisk, state1: state1.file, state2: state2.file, nvram: nvram.file, backup };
}

function rootOf(hosts: readonly AgentHost[], index: number, type: 'TpmState' | 'NvRam'): string {
  const host = hosts[index];
  assert.ok(host !== undefined);
  return host.agent.roots[type];
}

async function snapshot(store: Store, seed: { vm: string; h1: string; h2: string }) {
  return {
    tpm: await store.getTpmByVm(seed.vm),
    files: await store.listFilesByVm(seed.vm),
    backups: (await store.listBackupsByVm(seed.vm)).map((b) => b.uuid),
    pending: await store.listPendingDeletions(),
    binding: await store.getKeyBinding('tpm1'),
    owned: [...(await store.listOwnedPaths(seed.h1)), ...(await store.listOwnedPaths(seed.h2))].map((o) => o.path),
  };
}

// The purge is removeTpms' own transaction (DESIGN.md, removal steps 5 and 6), run here through the flow itself.
for (const engine of ENGINES)
  describe(`the TPM-removal purge (${engine})`, onEngine(engine), () => {
    it('rolls back whole when its transaction fails after its last write: no row, backup or binding changed', async (t) => {
      const store = await openStore(t, engine);
      const seed = await seedRemoval(t, store);
      const before = await snapshot(store, seed);
      assert.equal(before.binding?.state, 'attached');
      assert.equal(before.owned.length, 3, 'both TPM state paths and the NVRAM path are owned');
      await assert.rejects(removeTpms({ ...seed.deps, store: failingAtFinish(store) }, ['vm1']), /injected/);
      assert.deepEqual(await snapshot(store, seed), before);
    });

    it('applies whole: rows gone, the unconfirmed state pending, the binding detaching; NVRAM untouched', async (t) => {
      const store = await openStore(t, engine);
      const seed = await seedRemoval(t, store);
      const report = await removeTpms(seed.deps, ['vm1']);
      assert.equal(existsSync(seed.onDisk), false, "h1's agent deleted the state");
      const after = await snapshot(store, seed);
      assert.equal(after.tpm, null);
      assert.deepEqual(
        after.files.map((f) => f.uuid),
        [seed.nvram.uuid],
      );
      assert.deepEqual(after.backups, []);
      assert.deepEqual(
        after.pending.map((p) => [p.hostUuid, p.path, p.tpmUuid, p.vmUuid, p.nextAttemptAt]),
        [[seed.h2, seed.state2.path, 'tpm1', seed.vm, seed.deps.now() + RETRY_BASE_MS]],
      );
      assert.equal(after.binding?.state, 'detaching');
      assert.deepEqual(
        after.owned.sort(),
        [seed.nvram.path, seed.state2.path].sort(),
        "the confirmed path is given back; the pending one and the NVRAM's stay owned",
      );
      assert.deepEqual(
        report.vms.map((v) => [v.tpmUuid, v.nvram, v.binding]),
        [['tpm1', 'kept: secure boot', 'detaching']],
      );
      assert.deepEqual(
        report.pending.map((p) => p.path),
        [seed.state2.path],
      );
      assert.equal((await store.getOperation(report.operationId))?.state, 'done');
    });
  });
