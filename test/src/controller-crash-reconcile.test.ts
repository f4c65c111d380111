// A controller killed by SIGKILL at each step of `reconcile --apply` on a host holding a recorded state, hostfiles'
// own leftover (an orphan) and libvirt's state (unknown): the kill is located by the dead controller's trace, the
// operation's journal row and the outbox; after restart, resumeReconcile finishes the same operation once, and a retry
// pass deletes the orphan alone: the host then holds the recorded state and libvirt's, nothing else.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addVm,
  fileState,
  resumeOperations,
  retryPendingDeletions,
  writeFile,
  ORPHAN_VM_UUID,
  RECONCILE_HOST,
  type FlowDeps,
  type ReconcileReport,
} from '@hostfiles/controller';
import { plant, roots, withFleet, type Fleet } from './support/controller.js';
import { crashAt, RECONCILE_CRASH_POINTS, type ReconcileCrashPoint } from './support/crash-controller.js';
import { assertEndState } from './support/end-state.js';

interface Scene {
  readonly hostUuid: string;
  readonly recorded: string;
  readonly orphan: string;
  readonly unknown: string;
}

async function placeScene(fleet: Fleet): Promise<Scene> {
  const hostUuid = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
  const vm = await addVm(fleet.deps, { name: 'c', host: 'host0', bootMode: 'UEFI', secureBoot: true });
  const recorded = join(roots(fleet, 0).NvRam, 'c_VARS.fd');
  await writeFile(fleet.deps, { vm: 'c', type: 'NvRam', path: recorded, state: fileState(Buffer.from('vars c')) });
  // hostfiles' own leftover: a path it took charge of, in no row and no pending deletion.
  const orphan = join(roots(fleet, 0).NvRam, 'leftover_VARS.fd');
  plant(orphan, Buffer.from('ours once'));
  await fleet.store.addOwnedPaths([{ hostUuid, path: orphan, type: 'NvRam', vmUuid: vm.uuid }]);
  const unknown = join(roots(fleet, 0).NvRam, 'libvirt_VARS.fd');
  plant(unknown, Buffer.from("libvirt's"));
  return { hostUuid, recorded, orphan, unknown };
}

/** Where the kill landed: the dead controller's trace, the journal row and the outbox it left. */
async function assertKilledAt(
  point: ReconcileCrashPoint,
  deps: FlowDeps,
  s: Scene,
  id: string,
  trace: readonly string[],
) {
  const steps = ['start host.reconcile list', 'files.list host0', 'commit addPendingDeletions,finishOperation'];
  const reached = { started: 1, listed: 2, 'mid-schedule': 2, scheduled: 3 }[point];
  assert.deepEqual(trace, [...steps.slice(0, reached), `kill ${point}`]);
  const operation = await deps.store.getOperation(id);
  const pending = (await deps.store.listPendingDeletions()).map((p) => [p.path, p.expectSha256]);
  if (point === 'scheduled') {
    assert.equal(operation?.state, 'done', 'scheduled and finished in one transaction');
    assert.deepEqual(pending, [[s.orphan, fileState(Buffer.from('ours once')).sha256]]);
  } else {
    assert.deepEqual([operation?.state, operation?.step], ['running', 'list']);
    assert.deepEqual(pending, [], 'nothing scheduled');
  }
  for (const path of [s.recorded, s.orphan, s.unknown]) assert.equal(existsSync(path), true, `${path}: untouched`);
}

for (const point of RECONCILE_CRASH_POINTS) {
  test(`SIGKILL ${point} of reconcile --apply, then restart: resume finishes it once, the retry deletes the orphan alone`, async () => {
    await withFleet(1, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const operationId = randomUUID();
      const plan = { flow: RECONCILE_HOST, point, host: 'host0', includeUnknown: false, operationId } as const;
      const crashed = await crashAt(fleet, ctl.deps, plan);
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, s, operationId, crashed.trace);

      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual(resume.errors, []);
      assert.deepEqual([resume.resumed, resume.failed], [point === 'scheduled' ? [] : [operationId], []]);
      assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'nothing left to resume');
      const operation = await ctl.deps.store.getOperation(operationId);
      assert.equal(operation?.state, 'done');
      const report = operation.report as ReconcileReport;
      assert.deepEqual(
        [report.orphans.map((o) => o.path), report.unknown.map((u) => u.path), report.scheduled, report.missing],
        [[s.orphan], [s.unknown], [s.orphan], []],
      );
      assert.equal((await ctl.deps.store.listPendingDeletions()).length, 1, 'the orphan scheduled once');

      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.dropped, pass.stillPending], [1, 0, 0]);
      assert.equal(existsSync(s.orphan), false, 'the orphan deleted');
      assert.equal(readFileSync(s.unknown, 'utf8'), "libvirt's", 'unknown state kept');
      await assertEndState(fleet, ctl.deps, { foreign: [s.unknown] });
    });
  });
}

test('SIGKILL mid-schedule of reconcile --apply --include-unknown: resume schedules both, the retry deletes both', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const s = await placeScene(fleet);
    const operationId = randomUUID();
    const plan = {
      flow: RECONCILE_HOST,
      point: 'mid-schedule',
      host: 'host0',
      includeUnknown: true,
      operationId,
    } as const;
    const crashed = await crashAt(fleet, ctl.deps, plan);
    ctl.deps = crashed.deps;
    await assertKilledAt('mid-schedule', ctl.deps, s, operationId, crashed.trace);

    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual([resume.resumed, resume.failed, resume.errors], [[operationId], [], []]);
    const report = (await ctl.deps.store.getOperation(operationId))?.report as ReconcileReport;
    assert.deepEqual([...report.scheduled].sort(), [s.orphan, s.unknown].sort());
    // The unknown state belongs to no VM hostfiles knows: its row carries the nil VM.
    assert.deepEqual(
      (await ctl.deps.store.listPendingDeletions()).map((p) => [p.path, p.vmUuid === ORPHAN_VM_UUID]).sort(),
      [
        [s.orphan, false],
        [s.unknown, true],
      ].sort(),
    );
    const pass = await retryPendingDeletions(ctl.deps, { all: true });
    assert.deepEqual([pass.confirmed, pass.stillPending], [2, 0]);
    await assertEndState(fleet, ctl.deps);
  });
});
