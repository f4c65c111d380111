// A controller killed by SIGKILL at each step of a `vm recover` (host0 lost, the VM recovered onto host1): after
// restart, resume finishes the same operation exactly once — the VM moved once (its epoch one higher), host0's copy
// scheduled once, no generation made — and once host0 is back a retry pass leaves the hosts as recorded.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addVm,
  fileState,
  resumeOperations,
  retryPendingDeletions,
  syncVm,
  writeFile,
  RECOVER_VM,
  type FlowDeps,
  type RecoverReport,
} from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { crashAt, RECOVER_CRASH_POINTS, type RecoverCrashPoint } from './support/crash-controller.js';
import { assertEndState } from './support/end-state.js';

interface Scene {
  readonly vmUuid: string;
  readonly on0: string;
  readonly on1: string;
  /** the newest generation's bytes (generation 2) */
  readonly newest: string;
}

/** A secure-boot VM's NVRAM on host0, written (generation 1) then changed and synced (2); host0's agent killed. */
async function placeScene(fleet: Fleet): Promise<Scene> {
  const vm = await addVm(fleet.deps, { name: 'v', host: 'host0', bootMode: 'UEFI', secureBoot: true });
  const on0 = join(roots(fleet, 0).NvRam, 'v_VARS.fd');
  await writeFile(fleet.deps, { vm: 'v', type: 'NvRam', path: on0, state: fileState(Buffer.from('vars 1')) });
  writeFileSync(on0, 'vars 2');
  await syncVm(fleet.deps, 'v');
  await fleet.agents[0]?.stop('SIGKILL');
  return { vmUuid: vm.uuid, on0, on1: join(roots(fleet, 1).NvRam, 'v_VARS.fd'), newest: 'vars 2' };
}

const STEPS = [
  // libvirt's layout asked of host1 (no row there yet), before the journal.
  'files.stat host1',
  'start vm.recover restore',
  'commit addOwnedPaths,addPendingDeletions',
  'files.apply host1',
  'commit upsertFile',
  'commit setVmHost,deleteFiles,addPendingDeletions,finishOperation',
];
const REACHED: Readonly<Record<RecoverCrashPoint, number>> = {
  started: 2,
  guarded: 3,
  landed: 4,
  restored: 5,
  'mid-move': 5,
  moved: 6,
};

async function assertKilledAt(point: RecoverCrashPoint, deps: FlowDeps, s: Scene, id: string, trace: string[]) {
  assert.deepEqual(trace, [...STEPS.slice(0, REACHED[point]), `kill ${point}`]);
  const operation = await deps.store.getOperation(id);
  const vm = await deps.store.getVm(s.vmUuid);
  if (point === 'moved') {
    assert.equal(operation?.state, 'done');
    assert.equal(vm?.epoch, 1, 'moved: the epoch rose once');
  } else {
    assert.deepEqual([operation?.state, operation?.step], ['running', 'restore'], 'never finished');
    assert.equal(vm?.epoch, 0, 'nothing moved');
  }
}

for (const point of RECOVER_CRASH_POINTS) {
  test(`SIGKILL ${point} of a vm recover, then restart: resume finishes it exactly once`, async () => {
    await withFleet(2, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const operationId = randomUUID();
      const plan = { flow: RECOVER_VM, point, vm: 'v', to: 'host1', operationId } as const;
      const crashed = await crashAt(fleet, ctl.deps, plan);
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, s, operationId, [...crashed.trace]);

      const resume = await resumeOperations(ctl.deps);
      const expected = point === 'moved' ? [] : [operationId];
      assert.deepEqual([resume.resumed, resume.failed, resume.errors], [expected, [], []]);
      assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'nothing left to resume');
      const operation = await ctl.deps.store.getOperation(operationId);
      assert.equal(operation?.state, 'done');
      const report = operation.report as RecoverReport;
      assert.deepEqual(report.generations, [{ type: 'NvRam', generation: 2 }]);
      assert.deepEqual(
        report.scheduled.map((p) => p.path),
        [s.on0],
      );

      const vm = await ctl.deps.store.getVm(s.vmUuid);
      assert.equal((await ctl.deps.store.getHost(vm?.hostUuid ?? ''))?.name, 'host1');
      assert.equal(vm?.epoch, 1, 'the epoch rose exactly once');
      assert.deepEqual(
        (await ctl.deps.store.listPendingDeletions()).map((p) => [p.path, p.expectSha256]),
        [[s.on0, null]],
        "host0's copy scheduled exactly once, whatever it holds",
      );
      assert.deepEqual(
        (await ctl.deps.store.listGenerations(s.vmUuid)).map((g) => g.generation),
        [2, 1],
        'a recover makes no generation',
      );
      assert.equal(readFileSync(s.on1, 'utf8'), s.newest);

      // host0 back: its stale copy goes, and the hosts hold exactly what is recorded.
      await fleet.restart(0);
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.stillPending], [1, 0]);
      await assertEndState(fleet, ctl.deps);
    });
  });
}
