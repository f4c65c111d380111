// Destroying a VM with real agents and a real SQLite file: every file of both types gone from every host and every
// row gone; with a host down, the outbox holds its files until it returns; a controller killed at any step of the
// destruction finishes it after restart.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fileState,
  addTpm,
  addVm,
  destroyVm,
  resumeOperations,
  retryPendingDeletions,
  writeFile,
  DESTROY_VM,
  type FlowDeps,
  type Vm,
} from '@hostfiles/controller';
import { newFileBackup, withFleet, type Fleet } from './support/controller.js';
import { crashAndRestart, crashAt, CRASH_POINTS, type CrashPoint } from './support/crash-controller.js';

interface Placed {
  readonly vm: Vm;
  readonly tpmUuid: string | null;
  /** every file of the VM, on every host */
  readonly paths: string[];
}

/**
 * A UEFI VM on host `home` with NVRAM there and, with a TPM, TPM state on `home` and on `also` (where it lived
 * before); a backup of each file type on the controller.
 */
async function placeVm(
  fleet: Fleet,
  name: string,
  home: number,
  options: { tpm: boolean; secureBoot: boolean; also?: number },
): Promise<Placed> {
  const deps = fleet.deps;
  const vm = await addVm(deps, { name, host: `host${home}`, bootMode: 'UEFI', secureBoot: options.secureBoot });
  const paths: string[] = [];
  let tpmUuid: string | null = null;
  if (options.tpm) {
    tpmUuid = (await addTpm(deps, name, 'kms-1')).tpm.uuid;
    for (const h of options.also === undefined ? [home] : [options.also, home]) {
      const path = join(fleet.agents[h]?.setup.roots.TpmState ?? '', vm.uuid, 'tpm2-00.permall');
      await writeFile(deps, {
        vm: name,
        host: `host${h}`,
        type: 'TpmState',
        path,
        state: fileState(Buffer.from(name)),
      });
      paths.push(path);
    }
  }
  const nvram = join(fleet.agents[home]?.setup.roots.NvRam ?? '', `${vm.uuid}_VARS.fd`);
  await writeFile(deps, { vm: name, type: 'NvRam', path: nvram, state: fileState(Buffer.from(`vars ${name}`)) });
  paths.push(nvram);
  for (const type of ['TpmState', 'NvRam'] as const) {
    await deps.store.recordGeneration(newFileBackup(vm.uuid, type, Buffer.from(`backup ${type} ${name}`)));
  }
  return { vm, tpmUuid, paths };
}

/** Nothing of the VM is left: no file on any host, no row of any kind, nothing pending. */
async function assertGone(deps: FlowDeps, placed: Placed): Promise<void> {
  for (const path of placed.paths) assert.equal(existsSync(path), false, path);
  assert.equal(await deps.store.getVm(placed.vm.uuid), null);
  assert.equal(await deps.store.getTpmByVm(placed.vm.uuid), null);
  assert.deepEqual(await deps.store.listFilesByVm(placed.vm.uuid), []);
  assert.deepEqual(await deps.store.listBackupsByVm(placed.vm.uuid), []);
  assert.deepEqual(await deps.store.listPendingDeletions({ vmUuid: placed.vm.uuid }), []);
  if (placed.tpmUuid !== null) assert.equal(await deps.store.getKeyBinding(placed.tpmUuid), null);
}

/** The VM beside it is untouched: its files, rows, TPM and binding. */
async function assertIntact(deps: FlowDeps, placed: Placed): Promise<void> {
  for (const path of placed.paths) assert.equal(existsSync(path), true, path);
  assert.deepEqual(
    (await deps.store.listFilesByVm(placed.vm.uuid)).map((f) => f.path).sort(),
    [...placed.paths].sort(),
  );
  assert.equal((await deps.store.listBackupsByVm(placed.vm.uuid)).length, 2);
  if (placed.tpmUuid !== null) {
    assert.equal((await deps.store.getTpmByVm(placed.vm.uuid))?.uuid, placed.tpmUuid);
    assert.equal((await deps.store.getKeyBinding(placed.tpmUuid))?.state, 'attached');
  }
}

test('all hosts up: every file of both types gone from every host, every row gone, one command per host', async () => {
  await withFleet(2, async (fleet, ctl) => {
    const doomed = await placeVm(fleet, 'doomed', 1, { tpm: true, secureBoot: true, also: 0 });
    const beside = await placeVm(fleet, 'beside', 1, { tpm: true, secureBoot: true });
    const report = await destroyVm(ctl.deps, 'doomed');
    assert.equal(report.commands, 2);
    assert.deepEqual(report.pending, []);
    assert.deepEqual(report.tpm, { tpmUuid: doomed.tpmUuid, binding: 'detached' });
    assert.deepEqual(
      report.hosts.flatMap((h) => h.files.map((f) => f.status)),
      ['deleted', 'deleted', 'deleted'],
    );
    await assertGone(ctl.deps, doomed);
    await assertIntact(ctl.deps, beside);
    const operation = await ctl.deps.store.getOperation(report.operationId);
    assert.deepEqual([operation?.kind, operation?.state], [DESTROY_VM, 'done']);
  });
});

test('a VM without a TPM: its NVRAM and backups go, and so does it', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const bare = await placeVm(fleet, 'bare', 0, { tpm: false, secureBoot: true });
    const report = await destroyVm(ctl.deps, bare.vm.uuid);
    assert.equal(report.tpm, null);
    await assertGone(ctl.deps, bare);
  });
});

test('a host down: its files wait in the outbox, the binding stays detaching, and drain when it returns', async () => {
  await withFleet(2, async (fleet, ctl) => {
    // TPM state on host1 and host0, NVRAM on host0: host0 down leaves one file of each type pending.
    const doomed = await placeVm(fleet, 'doomed', 0, { tpm: true, secureBoot: false, also: 1 });
    const [onUp, onDown, nvram] = doomed.paths;
    await fleet.stop(0);
    const report = await destroyVm(ctl.deps, 'doomed');
    assert.equal(existsSync(onUp ?? ''), false);
    assert.deepEqual(report.pending.map((p) => [p.type, p.path]).sort(), [
      ['NvRam', nvram],
      ['TpmState', onDown],
    ]);
    assert.deepEqual(report.tpm, { tpmUuid: doomed.tpmUuid, binding: 'detaching' });
    // The rows are gone all the same: the outbox is what remembers the files, and which TPM's binding they hold.
    assert.equal(await ctl.deps.store.getVm(doomed.vm.uuid), null);
    assert.deepEqual(await ctl.deps.store.listFilesByVm(doomed.vm.uuid), []);
    assert.deepEqual(await ctl.deps.store.listBackupsByVm(doomed.vm.uuid), []);
    assert.deepEqual(
      (await ctl.deps.store.listPendingDeletions()).map((row) => [row.path, row.tpmUuid]).sort(),
      [
        [onDown, doomed.tpmUuid],
        [nvram, null],
      ].sort(),
    );

    const whileDown = await retryPendingDeletions(ctl.deps, { all: true });
    assert.deepEqual([whileDown.confirmed, whileDown.stillPending], [0, 2]);
    assert.equal(existsSync(onDown ?? ''), true);

    await fleet.restart(0);
    const drained = await retryPendingDeletions(ctl.deps, { all: true });
    assert.deepEqual([drained.confirmed, drained.stillPending], [2, 0]);
    assert.deepEqual(drained.detached, [doomed.tpmUuid]);
    await assertGone(ctl.deps, doomed);
    assert.deepEqual(await ctl.deps.store.listKeyBindings(), []);
  });
});

test('an unknown VM is refused', async () => {
  await withFleet(1, async (_fleet, ctl) => {
    await assert.rejects(destroyVm(ctl.deps, 'nope'), /no VM nope/);
  });
});

const PURGE =
  'commit deleteFiles,removeOwnedPaths,deleteGenerations,addPendingDeletions,removeTpm,deleteKeyBinding,removeVm,finishOperation';

/**
 * Where the kill landed: the dead controller's trace (after its busy probe), the journal row, the hosts' disks and the
 * rows it left. `doomed.paths`: TPM state on host0, then TPM state and NVRAM on host1.
 */
async function assertKilledAt(
  point: CrashPoint,
  deps: FlowDeps,
  doomed: Placed,
  operationId: string,
  trace: readonly string[],
): Promise<void> {
  const start = trace.indexOf('start vm.destroy collect');
  assert.deepEqual(
    trace.slice(0, start).sort(),
    ['files.busy host0', 'files.busy host1'],
    'the busy probe, before the journal',
  );
  const applied = trace.filter((line) => line.startsWith('files.apply'));
  const reached = { 'after-collect': 0, 'mid-dispatch': 1, 'before-purge': 2, 'mid-purge': 2, 'after-purge': 2 }[point];
  assert.deepEqual(trace.slice(start), [
    'start vm.destroy collect',
    ...(point === 'after-collect' ? [] : ['step dispatch']),
    ...applied,
    ...(point === 'after-purge' ? [PURGE] : []),
    `kill ${point}`,
  ]);
  assert.equal(applied.length, reached, `hosts that answered: ${applied.join(', ')}`);
  // host0 holds one of the VM's files, host1 the other two.
  const onHost = { 'files.apply host0': [0], 'files.apply host1': [1, 2] } as Record<string, number[]>;
  const deleted = applied.flatMap((line) => onHost[line] ?? []).sort();
  const gone = doomed.paths.flatMap((path, i) => (existsSync(path) ? [] : [i]));
  assert.deepEqual(gone, deleted, 'the files of exactly the hosts that answered are gone');
  const operation = await deps.store.getOperation(operationId);
  if (point === 'after-purge') {
    assert.equal(operation?.state, 'done');
    assert.equal(await deps.store.getVm(doomed.vm.uuid), null, 'the purge committed');
    assert.deepEqual(await deps.store.listPendingDeletions(), [], 'every file confirmed: nothing pending');
    return;
  }
  assert.deepEqual(
    [operation?.state, operation?.step],
    ['running', point === 'after-collect' ? 'collect' : 'dispatch'],
  );
  assert.equal((await deps.store.getTpmByVm(doomed.vm.uuid))?.uuid, doomed.tpmUuid, 'nothing purged');
  assert.equal((await deps.store.listFilesByVm(doomed.vm.uuid)).length, 3);
  assert.equal((await deps.store.listBackupsByVm(doomed.vm.uuid)).length, 2);
  assert.equal((await deps.store.getKeyBinding(doomed.tpmUuid ?? ''))?.state, 'attached');
  assert.deepEqual(await deps.store.listPendingDeletions(), [], 'nothing in the outbox yet');
}

for (const point of CRASH_POINTS) {
  test(`SIGKILL ${point} of a destruction, then restart: resume finishes it`, async () => {
    await withFleet(2, async (fleet, ctl) => {
      const doomed = await placeVm(fleet, 'doomed', 1, { tpm: true, secureBoot: false, also: 0 });
      const beside = await placeVm(fleet, 'beside', 0, { tpm: true, secureBoot: true });
      const operationId = randomUUID();
      const plan = { point, flow: DESTROY_VM, vms: ['doomed'], operationId } as const;
      const crashed = await crashAt(fleet, ctl.deps, plan);
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, doomed, operationId, crashed.trace);
      const purged = point === 'after-purge';

      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual(resume.errors, []);
      assert.deepEqual(resume.resumed, purged ? [] : [operationId]);
      assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'nothing left to resume');
      assert.equal((await ctl.deps.store.getOperation(operationId))?.state, 'done');
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.equal(pass.attempted, 0, 'every file confirmed by the dead controller or by resume');
      await assertGone(ctl.deps, doomed);
      await assertIntact(ctl.deps, beside);
      assert.equal(readFileSync(beside.paths.at(-1) ?? '', 'utf8'), 'vars beside');
      assert.deepEqual(await ctl.deps.store.listPendingDeletions(), []);
      assert.deepEqual(await ctl.deps.store.listUnfinishedOperations(), []);
    });
  });
}

test('a destruction left unfinished whose VM another flow destroyed meanwhile ends failed at resume', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const doomed = await placeVm(fleet, 'doomed', 0, { tpm: true, secureBoot: false });
    const operationId = randomUUID();
    const plan = { point: 'after-collect', flow: DESTROY_VM, vms: ['doomed'], operationId } as const;
    ctl.deps = await crashAndRestart(fleet, ctl.deps, plan);
    await destroyVm(ctl.deps, 'doomed');

    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual([resume.resumed, resume.failed, resume.errors], [[operationId], [operationId], []]);
    const operation = await ctl.deps.store.getOperation(operationId);
    assert.equal(operation?.state, 'failed');
    assert.deepEqual((operation.report as { skipped: unknown }).skipped, [
      { vmUuid: doomed.vm.uuid, reason: 'the VM no longer exists' },
    ]);
    await assertGone(ctl.deps, doomed);
  });
});
