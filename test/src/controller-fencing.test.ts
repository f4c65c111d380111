// Fencing with real agents: a capture is recorded only from the VM's current host at the epoch its sync read; every
// move and restore raises the epoch.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addVm, adoptVm, fileState, moveVm, restoreVm, syncVm, writeFile, type Vm } from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { gatedAgents } from './support/gates.js';

/** A UEFI VM with secure boot on host0, its NVRAM written there (generation 1). */
async function placeVm(fleet: Fleet): Promise<{ vm: Vm; path: string }> {
  const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
  const path = join(roots(fleet, 0).NvRam, 'vm1_VARS.fd');
  await writeFile(fleet.deps, { vm: 'vm1', type: 'NvRam', path, state: fileState(randomBytes(64)) });
  return { vm, path };
}

const generations = async (fleet: Fleet, vm: Vm): Promise<number[]> =>
  (await fleet.store.listGenerations(vm.uuid)).map((g) => g.generation);
const epoch = async (fleet: Fleet, vm: Vm): Promise<number> =>
  (await fleet.store.getVm(vm.uuid))?.epoch ?? assert.fail('no VM');

test('a host the VM left is never captured from: its copy is read, recorded on its row, fenced', async () => {
  await withFleet(2, async (fleet) => {
    const { vm, path } = await placeVm(fleet);
    assert.equal(await epoch(fleet, vm), 0);
    await moveVm(fleet.deps, 'vm1', 'host1');
    assert.equal(await epoch(fleet, vm), 1, 'a move raises the epoch');
    // The VM ran on host0 after it left (or host0 came back with what it had): a newer-looking copy there.
    const stale = randomBytes(64);
    writeFileSync(path, stale);
    const report = await syncVm(fleet.deps, 'vm1');
    assert.deepEqual(report.backups, []);
    assert.deepEqual(
      report.fenced.map((f) => [f.type, f.hostName, f.code, f.reason]),
      [['NvRam', 'host0', 'fenced', "host host0 is not VM vm1's current host"]],
    );
    assert.deepEqual(await generations(fleet, vm), [1], 'no generation from host0');
    const [row] = await fleet.store.listFilesByVm(vm.uuid);
    assert.equal(row?.size, 64, "host0's row says what host0 holds, as reconcile would");
    // Nor does adopting it there with --backup capture it.
    const adopted = await adoptVm(fleet.deps, 'vm1', { host: 'host0', paths: { NvRam: path }, backup: true });
    assert.deepEqual(
      adopted.backup?.fenced.map((f) => [f.type, f.hostName]),
      [['NvRam', 'host0']],
    );
    assert.deepEqual(await generations(fleet, vm), [1]);
  });
});

test('an ownership that changes while a sync reads fences its capture (checked in the recording transaction)', async () => {
  await withFleet(1, async (fleet) => {
    const { vm, path } = await placeVm(fleet);
    writeFileSync(path, randomBytes(64));
    // The sync holds the VM's key; only a writer outside the flows' locks can change the ownership meanwhile. The
    // check must hold anyway: it is the last line, inside the transaction that records.
    const { agents, gate } = gatedAgents(fleet.deps.agents, (kind) => kind === 'files.read', 'after');
    const sync = syncVm({ ...fleet.deps, agents }, 'vm1');
    await gate.reached;
    await fleet.store.bumpVmEpoch(vm.uuid);
    gate.open();
    const report = await sync;
    assert.deepEqual(
      report.fenced.map((f) => [f.type, f.reason]),
      [['NvRam', "VM vm1's ownership changed while the sync read (epoch 0, now 1)"]],
    );
    assert.deepEqual(await generations(fleet, vm), [1]);
    // The next sync, at the new epoch, captures it.
    assert.deepEqual(
      (await syncVm(fleet.deps, 'vm1')).backups.map((b) => [b.type, b.generation]),
      [['NvRam', 2]],
    );
  });
});

test('a restore raises the epoch, once its states are written', async () => {
  await withFleet(1, async (fleet) => {
    const { vm } = await placeVm(fleet);
    const report = await restoreVm(fleet.deps, 'vm1');
    assert.deepEqual(report.generations, [{ type: 'NvRam', generation: 1 }]);
    assert.equal(await epoch(fleet, vm), 1);
    await fleet.stop(0);
    const failed = await restoreVm(fleet.deps, 'vm1');
    assert.match(failed.error ?? '', /unreachable|unavailable|ECONNREFUSED|timeout/i);
    assert.equal(await epoch(fleet, vm), 1, 'nothing written: the same ownership');
  });
});
