// A controller killed by SIGKILL at each step of a restore of a VM's backups onto another host: the kill is located by
// the dead controller's trace, the operation's journal row, the target host's disk and the rows and guards it left;
// after restart, resumeRestore finishes the same operation once, and a retry pass finds nothing left to delete.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addTpm,
  addVm,
  fileState,
  resumeOperations,
  retryPendingDeletions,
  syncVm,
  writeFile,
  RESTORE_VM,
  type FileType,
  type FlowDeps,
  type RestoreReport,
} from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { crashAt, RESTORE_CRASH_POINTS, type RestoreCrashPoint } from './support/crash-controller.js';
import { assertEndState } from './support/end-state.js';

interface Scene {
  readonly vmUuid: string;
  readonly host1: string;
  /** where the restore puts each type on host1 */
  readonly paths: Readonly<Record<FileType, string>>;
  /** the bytes of each type's backup */
  readonly bytes: Readonly<Record<FileType, string>>;
}

/** A VM with TPM state and NVRAM on host0, synced: its backups are restored onto host1. */
async function placeScene(fleet: Fleet): Promise<Scene> {
  const vm = await addVm(fleet.deps, { name: 'v', host: 'host0', bootMode: 'UEFI', secureBoot: true });
  await addTpm(fleet.deps, 'v', 'kms-1');
  const bytes = { TpmState: 'tpm of v', NvRam: 'vars of v' };
  const on0 = {
    TpmState: join(roots(fleet, 0).TpmState, vm.uuid, 'tpm2-00.permall'),
    NvRam: join(roots(fleet, 0).NvRam, 'v_VARS.fd'),
  };
  for (const type of ['TpmState', 'NvRam'] as const) {
    await writeFile(fleet.deps, { vm: 'v', type, path: on0[type], state: fileState(Buffer.from(bytes[type])) });
  }
  await syncVm(fleet.deps, 'v');
  const paths = {
    TpmState: join(roots(fleet, 1).TpmState, vm.uuid, 'tpm2-00.permall'),
    NvRam: join(roots(fleet, 1).NvRam, 'v_VARS.fd'),
  };
  const host1 = (await fleet.store.getHostByName('host1'))?.uuid ?? '';
  return { vmUuid: vm.uuid, host1, paths, bytes };
}

// In the order the backups are listed (by type).
const TYPES = ['NvRam', 'TpmState'] as const;

/** Where the kill landed: the dead controller's trace, the journal row, host1's disk, its rows and guards. */
async function assertKilledAt(
  point: RestoreCrashPoint,
  deps: FlowDeps,
  s: Scene,
  id: string,
  trace: readonly string[],
) {
  const steps = [
    // libvirt's layout asked of host1 (the NVRAM backup fits it), before the journal.
    'files.stat host1',
    'start vm.restore write',
    'commit addOwnedPaths,addPendingDeletions',
    'files.apply host1',
    'commit upsertFile,bumpVmEpoch',
  ];
  const reached = { started: 2, guarded: 3, landed: 4, 'mid-record': 4, recorded: 5 }[point];
  assert.deepEqual(trace, [...steps.slice(0, reached), `kill ${point}`]);
  const operation = await deps.store.getOperation(id);
  assert.deepEqual([operation?.state, operation?.step], ['running', 'write'], 'the operation is never finished');
  const landed = reached >= 4;
  for (const type of TYPES) {
    const path = s.paths[type];
    if (landed) assert.equal(readFileSync(path, 'utf8'), s.bytes[type], `${path}: written`);
    else assert.equal(existsSync(path), false, `${path}: nothing sent`);
  }
  const rows = (await deps.store.listFilesByHost(s.host1)).map((r) => r.path).sort();
  const guards = (await deps.store.listPendingDeletions({ hostUuid: s.host1 })).map((p) => p.path).sort();
  const owned = (await deps.store.listOwnedPaths(s.host1)).map((o) => o.path).sort();
  const all = Object.values(s.paths).sort();
  assert.deepEqual(rows, point === 'recorded' ? all : [], 'rows only once the record committed');
  assert.deepEqual(guards, reached === 3 || reached === 4 ? all : [], 'guards armed, cancelled by the record');
  assert.deepEqual(owned, point === 'started' ? [] : all, 'the paths taken charge of with the guards');
}

for (const point of RESTORE_CRASH_POINTS) {
  test(`SIGKILL ${point} of a restore, then restart: resume finishes it once, host1 holds the backups`, async () => {
    await withFleet(2, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const operationId = randomUUID();
      const plan = { flow: RESTORE_VM, point, vm: 'v', host: 'host1', paths: s.paths, operationId } as const;
      const crashed = await crashAt(fleet, ctl.deps, plan);
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, s, operationId, crashed.trace);

      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual([resume.resumed, resume.failed, resume.errors], [[operationId], [], []]);
      assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'nothing left to resume');
      const operation = await ctl.deps.store.getOperation(operationId);
      assert.equal(operation?.state, 'done');
      const report = operation.report as RestoreReport;
      assert.deepEqual(
        report.files.map((f) => [f.type, f.path, f.status]),
        TYPES.map((type) => [type, s.paths[type], 'written']),
      );
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.equal(pass.attempted, 0, 'every guard cancelled by its row');

      for (const type of TYPES) assert.equal(readFileSync(s.paths[type], 'utf8'), s.bytes[type]);
      assert.equal((await ctl.deps.store.listFilesByVm(s.vmUuid)).length, 4, 'two states on each host');
      await assertEndState(fleet, ctl.deps);
    });
  });
}

test('a restore resumed while its host is down ends failed, and the resume report says so; its recorded states stay', async () => {
  await withFleet(2, async (fleet, ctl) => {
    const s = await placeScene(fleet);
    const operationId = randomUUID();
    const plan = { flow: RESTORE_VM, point: 'recorded', vm: 'v', host: 'host1', paths: s.paths, operationId } as const;
    ctl.deps = (await crashAt(fleet, ctl.deps, plan)).deps;
    await fleet.stop(1);

    // The repeat reaches no host: the write's outcome is unknown, so the restore is finished 'failed'.
    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual([resume.resumed, resume.failed, resume.errors], [[operationId], [operationId], []]);
    const operation = await ctl.deps.store.getOperation(operationId);
    assert.equal(operation?.state, 'failed');
    const report = operation.report as RestoreReport;
    assert.deepEqual(
      report.files.map((f) => f.status),
      ['unknown', 'unknown'],
    );

    await fleet.restart(1);
    assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'a failed operation is not repeated');
    assert.equal((await retryPendingDeletions(ctl.deps, { all: true })).attempted, 0);
    // What the dead controller wrote and recorded is still there, as recorded.
    for (const type of TYPES) assert.equal(readFileSync(s.paths[type], 'utf8'), s.bytes[type]);
    await assertEndState(fleet, ctl.deps);
  });
});
