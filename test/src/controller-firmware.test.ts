// Real firmware variable stores through the whole controller: Debian's OVMF store with Microsoft keys enrolled and
// the 64 MiB AAVMF store are written, synced into backups, lost on disk, and restored, byte for byte; the backup
// keeps them as they travel (gzip), so a 64 MiB store costs the database a few hundred KiB at most.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addVm, fileState, restoreVm, syncVm, writeFile } from '@hostfiles/controller';
import { sha256Of } from '@hostfiles/shared';
import { backupBytes, withFleet } from './support/controller.js';
import { skipWithout } from './support/real-tools.js';

const STORES = [
  { name: 'ovmf', path: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd', package: 'ovmf' },
  { name: 'aavmf', path: '/usr/share/AAVMF/AAVMF_VARS.fd', package: 'qemu-efi-aarch64' },
] as const;

for (const store of STORES) {
  test(`${store.path}: written, synced, restored byte for byte; stored compressed`, async (t) => {
    const missing = existsSync(store.path) ? undefined : `${store.path} is not installed (package ${store.package})`;
    if (skipWithout(t, missing)) return;
    const bytes = readFileSync(store.path);
    await withFleet(1, async (fleet) => {
      const vm = await addVm(fleet.deps, { name: store.name, host: 'host0', bootMode: 'UEFI', secureBoot: true });
      const path = join(fleet.agents[0]?.setup.roots.NvRam ?? '', `${store.name}_VARS.fd`);
      const written = await writeFile(fleet.deps, { vm: store.name, type: 'NvRam', path, state: fileState(bytes) });
      assert.deepEqual([written.size, written.sha256], [bytes.length, sha256Of(bytes)]);
      assert.equal(Buffer.compare(readFileSync(path), bytes), 0, 'on the host, byte for byte');

      const synced = await syncVm(fleet.deps, store.name);
      assert.deepEqual(
        synced.backups.map((b) => [b.type, b.size, b.sha256]),
        [['NvRam', bytes.length, sha256Of(bytes)]],
      );
      const [backup] = await fleet.store.listBackupsByVm(vm.uuid);
      assert.ok(backup);
      const [entry] = await fleet.store.listBackupEntries(backup.uuid);
      assert.ok(entry);
      assert.equal(entry.encoding, 'gzip');
      assert.ok(entry.content.length < bytes.length / 10, `stored in ${entry.content.length} bytes`);
      assert.equal(Buffer.compare(await backupBytes(fleet.store, backup), bytes), 0, 'the backup, byte for byte');

      unlinkSync(path);
      const restored = await restoreVm(fleet.deps, store.name);
      assert.deepEqual(
        restored.files.map((f) => [f.path, f.status]),
        [[path, 'written']],
      );
      assert.equal(Buffer.compare(readFileSync(path), bytes), 0, 'restored, byte for byte');
    });
  });
}
