// Reconcile with real agents and a real SQLite file: a file planted on disk is an orphan, a recorded file deleted
// from disk is missing, a file already pending deletion is neither; `apply` and a retry pass delete the orphans and
// nothing else; a write landing on an orphan's path cancels its deletion.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  fileState,
  addTpm,
  addVm,
  reconcileHost,
  retryPendingDeletions,
  writeFile,
  ORPHAN_VM_UUID,
  RECONCILE_HOST,
} from '@hostfiles/controller';
import { withFleet, type Fleet } from './support/controller.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function plant(path: string, content: Buffer): Buffer {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return content;
}

function roots(fleet: Fleet, i: number): { readonly TpmState: string; readonly NvRam: string } {
  const setup = fleet.agents[i]?.setup;
  assert.ok(setup);
  return setup.roots;
}

test('orphans and missing files are found; apply and a retry delete the orphans and nothing else', async () => {
  await withFleet(2, async (fleet) => {
    const [r0, r1] = [roots(fleet, 0), roots(fleet, 1)];
    const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    await addTpm(fleet.deps, 'vm1', 'kms-1');
    const tpmPath = join(r0.TpmState, vm.uuid, 'tpm2', 'tpm2-00.permall');
    const varsPath = join(r0.NvRam, `${vm.uuid}_VARS.fd`);
    const tpm = randomBytes(1000);
    await writeFile(fleet.deps, { vm: 'vm1', type: 'TpmState', path: tpmPath, state: fileState(tpm) });
    await writeFile(fleet.deps, { vm: 'vm1', type: 'NvRam', path: varsPath, state: fileState(randomBytes(500)) });
    // The same layout on host1, where the VM also has a file: a reconcile of host0 never touches it.
    const otherPath = join(r1.TpmState, vm.uuid, 'tpm2', 'tpm2-00.permall');
    await writeFile(fleet.deps, { vm: 'vm1', host: 'host1', type: 'TpmState', path: otherPath, state: fileState(tpm) });

    const strayTpm = join(r0.TpmState, 'gone-vm', 'tpm2', 'tpm2-00.permall');
    const strayVars = join(r0.NvRam, 'gone-vm_VARS.fd');
    const planted = [plant(strayTpm, randomBytes(700)), plant(strayVars, randomBytes(300))];
    const hostOnly = plant(join(r1.NvRam, 'host1-only_VARS.fd'), Buffer.from('not host0'));
    // A file already in the outbox is accounted for: neither orphan nor rescheduled.
    const waiting = join(r0.NvRam, 'waiting_VARS.fd');
    plant(waiting, Buffer.from('waiting'));
    const host0 = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
    const [waitingRow] = await fleet.store.addPendingDeletions([
      {
        hostUuid: host0,
        type: 'NvRam',
        path: waiting,
        vmUuid: vm.uuid,
        tpmUuid: null,
        nextAttemptAt: 0,
        lastError: 'x',
      },
    ]);
    unlinkSync(varsPath);

    const report = await reconcileHost(fleet.deps, 'host0');
    assert.equal(report.hostName, 'host0');
    assert.equal(report.listed, 4, 'the TPM state, two planted files and the waiting one');
    assert.deepEqual(
      report.orphans.map((o) => [o.type, o.path, o.size, o.sha256]),
      [
        ['TpmState', strayTpm, 700, sha256(planted[0] ?? Buffer.alloc(0))],
        ['NvRam', strayVars, 300, sha256(planted[1] ?? Buffer.alloc(0))],
      ],
    );
    assert.deepEqual(
      report.missing.map((m) => [m.vmUuid, m.type, m.path, m.size]),
      [[vm.uuid, 'NvRam', varsPath, 500]],
    );
    assert.equal(report.pending, 1);
    assert.deepEqual(report.scheduled, []);
    assert.deepEqual(
      (await fleet.store.listPendingDeletions()).map((p) => p.id),
      [waitingRow?.id],
      'without apply, nothing is scheduled',
    );
    const operation = await fleet.store.getOperation(report.operationId);
    assert.deepEqual([operation?.kind, operation?.state], [RECONCILE_HOST, 'done']);

    const applied = await reconcileHost(fleet.deps, 'host0', { apply: true });
    assert.deepEqual(applied.scheduled, [strayTpm, strayVars]);
    const pending = await fleet.store.listPendingDeletions();
    assert.deepEqual(
      pending
        .filter((p) => p.path !== waiting)
        .map((p) => [p.hostUuid, p.path, p.vmUuid, p.tpmUuid])
        .sort(),
      [
        [host0, strayTpm, ORPHAN_VM_UUID, null],
        [host0, strayVars, ORPHAN_VM_UUID, null],
      ].sort(),
    );
    assert.deepEqual(
      pending.filter((p) => p.path === waiting).map((p) => [p.id, p.vmUuid]),
      [[waitingRow?.id, vm.uuid]],
      'the row already pending is left as it was',
    );

    const pass = await retryPendingDeletions(fleet.deps, { all: true });
    assert.deepEqual([pass.attempted, pass.confirmed, pass.stillPending], [3, 3, 0]);
    assert.equal(existsSync(strayTpm), false);
    assert.equal(existsSync(dirname(dirname(strayTpm))), false, 'empty parents pruned by the agent');
    assert.equal(existsSync(strayVars), false);
    assert.equal(Buffer.compare(readFileSync(tpmPath), tpm), 0, 'the recorded file is untouched');
    assert.equal(Buffer.compare(readFileSync(otherPath), tpm), 0, "host1's file is untouched");
    assert.equal(Buffer.compare(readFileSync(join(r1.NvRam, 'host1-only_VARS.fd')), hostOnly), 0);

    const after = await reconcileHost(fleet.deps, 'host0');
    assert.deepEqual([after.listed, after.orphans, after.pending], [1, [], 0]);
    assert.deepEqual(
      after.missing.map((m) => m.path),
      [varsPath],
      'still missing: reconcile reports it, it does not forget the row',
    );
  });
});

test("a write landing on an orphan's path cancels its deletion: the retry never deletes the new file", async () => {
  await withFleet(1, async (fleet) => {
    const r0 = roots(fleet, 0);
    await addVm(fleet.deps, { name: 'late', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    // As if a write reached the disk and the controller died before recording it.
    const path = join(r0.NvRam, 'late_VARS.fd');
    plant(path, Buffer.from('half provisioned'));
    const report = await reconcileHost(fleet.deps, 'host0', { apply: true });
    assert.deepEqual(report.scheduled, [path]);

    await writeFile(fleet.deps, { vm: 'late', type: 'NvRam', path, state: fileState(Buffer.from('provisioned')) });
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.equal((await retryPendingDeletions(fleet.deps, { all: true })).attempted, 0);
    assert.equal(readFileSync(path, 'utf8'), 'provisioned');
    assert.deepEqual((await reconcileHost(fleet.deps, 'host0')).orphans, []);
  });
});

test('a host that cannot be listed fails the reconcile, journaled as failed; an unknown host is refused', async () => {
  await withFleet(1, async (fleet) => {
    await assert.rejects(reconcileHost(fleet.deps, 'nosuchhost'), /no host nosuchhost/);
    await fleet.stop(0);
    await assert.rejects(reconcileHost(fleet.deps, 'host0', { apply: true }), { name: 'AgentCallError' });
    assert.equal((await fleet.store.getHostByName('host0'))?.state, 'Disconnected');
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.deepEqual(await fleet.store.listUnfinishedOperations(), [], 'the operation was finished, failed');
  });
});
