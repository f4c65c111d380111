// The schema itself holds the rules: WAL, foreign keys, CHECKs on enums, unique keys. The store does not
// validate its inputs, so every refusal here comes from SQLite.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError, type StoreErrorCode } from './errors.js';
import {
  addHost,
  addVm,
  ENGINES,
  fileBackup,
  fileRow,
  onEngine,
  openStoreWithRaw,
  pendingRow,
  sha,
} from './test-support.js';

const pending = () => pendingRow('host-h1', '/tpm/old', 0);
import type { HostState, Store } from './types.js';
import type { Engine } from './test-support.js';

const refused = (code: StoreErrorCode, pattern: RegExp) => (error: unknown) =>
  isStoreError(error, code) && pattern.test(error.message);

async function inventory(store: Store): Promise<{ host: string; vm: string }> {
  const host = await addHost(store, 'h1');
  const vm = await addVm(store, 'vm1', host);
  return { host, vm };
}

describe('schema (sqlite)', () => {
  it('puts the database in WAL mode (persistent in the file)', async (t) => {
    const { raw } = await openStoreWithRaw(t, 'sqlite');
    assert.deepEqual(await raw('PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
  });
});

/** How each engine names a violated unique key of two tables, met below the store. */
const UNIQUE_BELOW: Record<Engine, { readonly files: RegExp; readonly pending: RegExp }> = {
  sqlite: {
    files: /UNIQUE constraint failed: vm_host_files.vm_uuid, vm_host_files.host_uuid, vm_host_files.type/,
    pending: /UNIQUE constraint failed: pending_deletions.host_uuid, pending_deletions.path/,
  },
  postgres: {
    files: /duplicate key value violates unique constraint "vm_host_files_vm_host_type"/,
    pending: /duplicate key value violates unique constraint "pending_deletions_host_path"/,
  },
};

for (const engine of ENGINES)
  describe(`schema (${engine})`, onEngine(engine), () => {
    it('enforces foreign keys', async (t) => {
      const { store } = await openStoreWithRaw(t, engine);
      const { host, vm } = await inventory(store);
      const fk = refused('constraint', /FOREIGN KEY/);
      await assert.rejects(addVm(store, 'lost', 'host-nowhere'), fk);
      await assert.rejects(store.upsertFile(fileRow('vm-nowhere', host, 'NvRam', '/nvram/x.fd')), fk);
      await assert.rejects(store.addTpm({ uuid: 't', vmUuid: 'vm-nowhere', keyProvider: 'kp' }), fk);
      await assert.rejects(store.addPendingDeletions([{ ...pending(), hostUuid: 'host-nowhere' }]), fk);
      // RESTRICT: a host with a VM, a VM with a TPM or files, cannot go
      await assert.rejects(store.removeHost(host), fk);
      await store.addTpm({ uuid: 't1', vmUuid: vm, keyProvider: 'kp' });
      await assert.rejects(store.removeVm(vm), fk);
      await store.removeTpm('t1');
      await store.upsertFile(fileRow(vm, host, 'NvRam', '/nvram/vm1.fd'));
      await assert.rejects(store.removeVm(vm), fk);
    });

    it('deletes backups with their VM (CASCADE), and nothing else goes silently', async (t) => {
      const { store, raw } = await openStoreWithRaw(t, engine);
      const { host, vm } = await inventory(store);
      await store.recordGeneration(fileBackup('b1', vm, 'NvRam', Uint8Array.of(1, 2, 3), 'b'));
      await store.removeVm(vm);
      assert.deepEqual(await raw('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM vm_host_backup_files'), [{ n: 0 }]);
      assert.deepEqual(await raw('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM vm_host_backup_entries'), [{ n: 0 }]);
      await store.removeHost(host);
      assert.equal(await store.getHost(host), null);
    });

    it('enforces CHECK constraints on enums and shapes', async (t) => {
      const { store } = await openStoreWithRaw(t, engine);
      const { host, vm } = await inventory(store);
      const check = refused('constraint', /CHECK/);
      const hostRow = {
        uuid: 'x',
        name: 'x',
        url: 'u',
        publicKey: 'p',
        keyId: 'k',
        certificate: null,
        state: 'Connected' as HostState,
        lastSeenAt: null,
      };
      await assert.rejects(store.addHost({ ...hostRow, state: 'Up' as HostState }), check);
      await assert.rejects(store.addHost({ ...hostRow, certificate: 'not a PEM certificate' }), check);
      await assert.rejects(store.setHostEndpoint(host, 'https://h1', '-----BEGIN PRIVATE KEY-----\n'), check);
      await assert.rejects(
        store.addVm({ uuid: 'v', name: 'v', hostUuid: null, bootMode: 'BIOS' as 'UEFI', secureBoot: false }),
        check,
      );
      await assert.rejects(
        store.addVm({ uuid: 'v', name: 'v', hostUuid: null, bootMode: 'Legacy', secureBoot: true }),
        check,
      );
      await assert.rejects(store.upsertFile({ ...fileRow(vm, host, 'NvRam', '/p'), type: 'Other' as 'NvRam' }), check);
      await assert.rejects(store.upsertFile(fileRow(vm, host, 'NvRam', 'relative/path')), check);
      await assert.rejects(store.upsertFile({ ...fileRow(vm, host, 'NvRam', '/p'), sha256: 'ABC' }), check);
      await assert.rejects(store.upsertFile({ ...fileRow(vm, host, 'NvRam', '/p'), size: -1 }), check);
      await store.addTpm({ uuid: 't1', vmUuid: vm, keyProvider: 'kp' });
      await assert.rejects(store.setKeyBindingState('t1', 'gone' as 'attached'), check);
      await store.startOperation({ id: 'op', kind: 'vm.sync', subject: 's', step: 'a', input: {} });
      await assert.rejects(store.finishOperation('op', 'exploded' as 'done', null), check);
    });

    it('holds the settings to their names and ranges (below the store, which refuses them first)', async (t) => {
      const { raw } = await openStoreWithRaw(t, engine);
      const insert = (name: string, value: number) =>
        raw('INSERT INTO settings (name, value, updated_at) VALUES (?, ?, 1)', [name, value]);
      const check = /CHECK constraint failed|violates check constraint/;
      await assert.rejects(insert('keep_generations', 0), check);
      await assert.rejects(insert('keep_generations', 10_000), check);
      await assert.rejects(insert('keep_forever', 1), check);
      await insert('keep_generations', 9999);
    });

    it('keeps names, (vm, host, type) and (host, path) unique', async (t) => {
      const { store, raw } = await openStoreWithRaw(t, engine);
      const { host, vm } = await inventory(store);
      const conflict = refused('conflict', /UNIQUE/);
      await assert.rejects(addHost(store, 'h1'), conflict);
      await assert.rejects(
        store.addVm({ uuid: 'other', name: 'vm1', hostUuid: null, bootMode: 'UEFI', secureBoot: false }),
        conflict,
      );
      await store.addTpm({ uuid: 't1', vmUuid: vm, keyProvider: 'kp' });
      await assert.rejects(store.addTpm({ uuid: 't2', vmUuid: vm, keyProvider: 'kp' }), conflict);

      await store.upsertFile(fileRow(vm, host, 'TpmState', '/tpm/vm1'));
      const other = await addVm(store, 'vm2', host);
      await assert.rejects(store.upsertFile(fileRow(other, host, 'TpmState', '/tpm/vm1')), conflict);
      // The upsert turns a second (vm, host, type) into an update, so the key is checked below the store.
      await assert.rejects(
        raw(
          `INSERT INTO vm_host_files (uuid, vm_uuid, host_uuid, type, path, sha256, size, last_sync_at)
         VALUES ('dup', ?, ?, 'TpmState', '/tpm/elsewhere', ?, 1, 1)`,
          [vm, host, sha('c')],
        ),
        UNIQUE_BELOW[engine].files,
      );
      await store.addPendingDeletions([pending()]);
      await assert.rejects(
        raw(
          `INSERT INTO pending_deletions (host_uuid, type, path, vm_uuid, next_attempt_at, created_at)
         VALUES (?, 'TpmState', ?, 'v', 1, 1)`,
          [pending().hostUuid, pending().path],
        ),
        UNIQUE_BELOW[engine].pending,
      );
    });
  });
