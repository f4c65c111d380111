// Adopt and move with real agents and a real SQLite file: state libvirt laid out (<root>/<uuid>/tpm2/…, .lock,
// <name>_VARS.fd) is registered without copying, backed up, restored onto the host the VM moved to, and read back
// from there; clashes are refused before anything is recorded.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addTpm,
  addVm,
  adoptVm,
  isFlowError,
  moveVm,
  reconcileHost,
  removeTpms,
  restoreVm,
  syncVm,
} from '@hostfiles/controller';
import { sha256Of, stateDigest } from '@hostfiles/shared';
import { backupFiles, withFleet, type Fleet, roots, plant } from './support/controller.js';

/** What libvirt leaves for a UEFI VM with a vTPM that ran once. */
function libvirtLayout(fleet: Fleet, i: number, uuid: string, name: string) {
  const r = roots(fleet, i);
  const dir = join(r.TpmState, uuid);
  const permall = plant(join(dir, 'tpm2', 'tpm2-00.permall'), Buffer.from(`seeds of ${name}`));
  const volatile = plant(join(dir, 'tpm2', 'tpm2-00.volatilestate'), Buffer.from(`volatile of ${name}`));
  plant(join(dir, 'tpm2', '.lock'), Buffer.alloc(0));
  const vars = join(r.NvRam, `${name}_VARS.fd`);
  const varsContent = plant(vars, Buffer.alloc(540 * 1024, 0x5a));
  const digest = stateDigest([
    { path: 'tpm2/tpm2-00.permall', sha256: sha256Of(permall) },
    { path: 'tpm2/tpm2-00.volatilestate', sha256: sha256Of(volatile) },
  ]);
  return { dir, permall, volatile, vars, varsContent, digest };
}

test("adopt registers libvirt's state where it is; a backup, a move and a restore carry it to another host", async () => {
  await withFleet(2, async (fleet) => {
    const uuid = randomUUID();
    const layout = libvirtLayout(fleet, 0, uuid, 'web');
    const vm = await addVm(fleet.deps, { name: 'web', host: 'host0', bootMode: 'UEFI', secureBoot: true, uuid });
    assert.equal(vm.uuid, uuid, "libvirt's domain uuid");
    await addTpm(fleet.deps, 'web', 'kms');
    assert.deepEqual(
      (await reconcileHost(fleet.deps, 'host0')).unknown.map((u) => u.path).sort(),
      [layout.dir, layout.vars].sort(),
      'before: unknown to hostfiles',
    );

    const adopted = await adoptVm(fleet.deps, 'web', { backup: true });
    assert.deepEqual(
      adopted.states.map((s) => (s.status === 'adopted' ? [s.type, s.kind, s.path, s.sha256] : [s.type, s.status])),
      [
        ['TpmState', 'dir', layout.dir, layout.digest],
        ['NvRam', 'file', layout.vars, sha256Of(layout.varsContent)],
      ],
    );
    assert.deepEqual(adopted.backup?.notUpdated, []);
    const after = await reconcileHost(fleet.deps, 'host0');
    assert.deepEqual([after.unknown, after.orphans, after.missing, after.modified], [[], [], [], []]);
    assert.ok(existsSync(join(layout.dir, 'tpm2', '.lock')), 'adopting changes nothing on the host');

    const [tpmBackup] = await fleet.store.listBackupsByVm(uuid, 'TpmState');
    assert.ok(tpmBackup);
    assert.deepEqual(
      [...(await backupFiles(fleet.store, tpmBackup)).entries()].map(([path, bytes]) => [path, bytes.toString()]),
      [
        ['tpm2/tpm2-00.permall', 'seeds of web'],
        ['tpm2/tpm2-00.volatilestate', 'volatile of web'],
      ],
      'the whole state, never the lock',
    );

    // libvirt moved the VM to host1 (without its storage): record it, restore the backups there.
    const moved = await moveVm(fleet.deps, 'web', 'host1');
    assert.deepEqual([moved.from?.hostName, moved.to.hostName, moved.elsewhere.length], ['host0', 'host1', 2]);
    const restored = await restoreVm(fleet.deps, 'web');
    assert.deepEqual(
      restored.files.map((f) => [f.type, f.status]),
      [
        ['NvRam', 'written'],
        ['TpmState', 'written'],
      ],
    );
    const r1 = roots(fleet, 1);
    const newDir = join(r1.TpmState, uuid);
    assert.equal(readFileSync(join(newDir, 'tpm2', 'tpm2-00.permall'), 'utf8'), 'seeds of web');
    assert.equal(readFileSync(join(newDir, 'tpm2', 'tpm2-00.volatilestate'), 'utf8'), 'volatile of web');
    assert.equal(existsSync(join(newDir, 'tpm2', '.lock')), false);
    assert.equal(statSync(newDir).mode & 0o777, 0o711, "libvirt's <uuid>/ mode");
    assert.equal(statSync(join(newDir, 'tpm2')).mode & 0o777, 0o700);
    assert.equal(Buffer.compare(readFileSync(join(r1.NvRam, 'web_VARS.fd')), layout.varsContent), 0);

    // The VM runs on host1 now and changes its state: sync reads it from there, not from host0's stale copy.
    writeFileSync(join(newDir, 'tpm2', 'tpm2-00.permall'), 'seeds of web, later');
    const synced = await syncVm(fleet.deps, 'web');
    assert.deepEqual(
      synced.backups.map((b) => [b.type, b.hostName]),
      [
        ['NvRam', 'host1'],
        ['TpmState', 'host1'],
      ],
    );
    const [newer] = await fleet.store.listBackupsByVm(uuid, 'TpmState');
    assert.ok(newer);
    assert.equal(
      (await backupFiles(fleet.store, newer)).get('tpm2/tpm2-00.permall')?.toString(),
      'seeds of web, later',
    );

    // Removing the TPM deletes the state on both hosts, whole; secure boot keeps NVRAM.
    const removal = await removeTpms(fleet.deps, ['web']);
    assert.deepEqual(removal.pending, []);
    assert.equal(existsSync(layout.dir), false, "host0's directory, its lock file included");
    assert.equal(existsSync(newDir), false);
    assert.ok(existsSync(layout.vars));
  });
});

test('adopt refuses what would clash, and says when nothing is there', async () => {
  await withFleet(1, async (fleet) => {
    const a = await addVm(fleet.deps, { name: 'a', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    const b = await addVm(fleet.deps, { name: 'b', host: 'host0', bootMode: 'Legacy', secureBoot: false });
    await assert.rejects(adoptVm(fleet.deps, 'b'), (e) => isFlowError(e) && e.code === 'not_found');
    const layout = libvirtLayout(fleet, 0, a.uuid, 'a');
    await adoptVm(fleet.deps, 'a');
    await assert.rejects(
      adoptVm(fleet.deps, 'b', { paths: { TpmState: layout.dir } }),
      (e) => isFlowError(e) && e.code === 'conflict' && /overlaps VM/.test(e.message),
    );
    await assert.rejects(
      adoptVm(fleet.deps, 'b', { paths: { TpmState: join(layout.dir, 'tpm2') } }),
      (e) => isFlowError(e) && e.code === 'conflict',
      'inside another VM state',
    );
    const elsewhere = join(roots(fleet, 0).TpmState, 'copy-of-a');
    plant(join(elsewhere, 'tpm2', 'tpm2-00.permall'), Buffer.from('copy'));
    await assert.rejects(
      adoptVm(fleet.deps, 'a', { paths: { TpmState: elsewhere } }),
      (e) => isFlowError(e) && /recorded at/.test(e.message),
    );
    assert.deepEqual((await fleet.store.listFilesByVm(b.uuid)).length, 0, 'nothing recorded for b');
  });
});

test("adopt takes a VM's file row recorded inside its state directory up into the whole state (upgrade from 0.1)", async () => {
  await withFleet(1, async (fleet) => {
    const uuid = randomUUID();
    const layout = libvirtLayout(fleet, 0, uuid, 'old');
    await addVm(fleet.deps, { name: 'old', host: 'host0', bootMode: 'UEFI', secureBoot: true, uuid });
    const host0 = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
    const deep = join(layout.dir, 'tpm2', 'tpm2-00.permall');
    await fleet.store.upsertFile({
      uuid: randomUUID(),
      vmUuid: uuid,
      hostUuid: host0,
      type: 'TpmState',
      path: deep,
      kind: 'file',
      sha256: sha256Of(layout.permall),
      size: layout.permall.length,
      lastSyncAt: 1,
    });
    await adoptVm(fleet.deps, 'old');
    assert.deepEqual(
      (await fleet.store.listFilesByVm(uuid)).map((f) => [f.type, f.kind, f.path]),
      [
        ['NvRam', 'file', layout.vars],
        ['TpmState', 'dir', layout.dir],
      ],
    );
    assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'nothing of the state is to be deleted');
  });
});
