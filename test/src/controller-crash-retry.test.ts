// A controller killed by SIGKILL at each step of a retry pass draining a removed TPM's state from two hosts: the kill
// is located by the dead controller's trace, the disk and the outbox; after restart, resume and another retry pass,
// every file is gone, the outbox empty, the key binding detached once.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addTpm,
  addVm,
  fileState,
  removeTpms,
  resumeOperations,
  retryPendingDeletions,
  writeFile,
  type FlowDeps,
} from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { crashAt, RETRY, RETRY_CRASH_POINTS, type RetryCrashPoint } from './support/crash-controller.js';
import { assertEndState } from './support/end-state.js';

interface Scene {
  readonly tpmUuid: string;
  /** the removed TPM's state on host0 and host1, both pending deletion */
  readonly paths: readonly [string, string];
}

/** A legacy VM whose TPM state is on both hosts; its TPM removed while both were down. */
async function placeScene(fleet: Fleet): Promise<Scene> {
  const vm = await addVm(fleet.deps, { name: 'r', host: 'host0', bootMode: 'Legacy', secureBoot: false });
  const { tpm } = await addTpm(fleet.deps, 'r', 'kms-1');
  const paths = [0, 1].map((i) => join(roots(fleet, i).TpmState, vm.uuid, 'tpm2-00.permall'));
  for (const [i, path] of paths.entries()) {
    const state = fileState(Buffer.from(`tpm on host${i}`));
    await writeFile(fleet.deps, { vm: 'r', host: `host${i}`, type: 'TpmState', path, state });
  }
  await fleet.stop(0);
  await fleet.stop(1);
  const removal = await removeTpms(fleet.deps, ['r']);
  assert.deepEqual(
    removal.vms.map((v) => v.binding),
    ['detaching'],
  );
  await fleet.restart(0);
  await fleet.restart(1);
  return { tpmUuid: tpm.uuid, paths: [paths[0] ?? '', paths[1] ?? ''] };
}

const SETTLE = 'commit deletePendingDeletions,removeOwnedPaths,deleteKeyBinding';

/** Where the kill landed: the dead controller's trace, the hosts' disks, the outbox and the binding it left. */
async function assertKilledAt(point: RetryCrashPoint, deps: FlowDeps, s: Scene, trace: readonly string[]) {
  const gone = s.paths.map((path) => !existsSync(path));
  const pending = (await deps.store.listPendingDeletions()).map((p) => p.path).sort();
  const binding = (await deps.store.getKeyBinding(s.tpmUuid))?.state ?? null;
  if (point === 'mid-dispatch') {
    // One host answered; which one is the one whose file is gone.
    const first = gone[0] === true ? 'host0' : 'host1';
    assert.deepEqual(trace, [`files.apply ${first}`, 'kill mid-dispatch']);
    assert.deepEqual(gone.filter(Boolean).length, 1, 'one host of two reached');
  } else {
    assert.deepEqual(trace.slice(0, 2).sort(), ['files.apply host0', 'files.apply host1']);
    assert.deepEqual(trace.slice(2), [...(point === 'settled' ? [SETTLE] : []), `kill ${point}`]);
    assert.deepEqual(gone, [true, true], 'both hosts reached');
  }
  if (point === 'settled') {
    assert.deepEqual(pending, [], 'the settle committed');
    assert.equal(binding, null, 'the binding detached with it');
  } else {
    assert.deepEqual(pending, [...s.paths].sort(), 'nothing settled: both rows still pending');
    assert.equal(binding, 'detaching');
  }
}

for (const point of RETRY_CRASH_POINTS) {
  test(`SIGKILL ${point} of a retry pass, then restart: resume and a retry pass finish the deletions`, async () => {
    await withFleet(2, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const crashed = await crashAt(fleet, ctl.deps, { flow: RETRY, point });
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, s, crashed.trace);

      // Rows still pending hold the binding back: resume leaves it for the retry pass.
      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual([resume.resumed, resume.errors, resume.detached], [[], [], []]);
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      const settled = point === 'settled';
      assert.deepEqual([pass.attempted, pass.confirmed, pass.stillPending], settled ? [0, 0, 0] : [2, 2, 0]);
      // A file the dead pass deleted answers absent now; the other (mid-dispatch) is deleted by this one.
      const statuses = pass.hosts.flatMap((h) => h.files.map((f) => f.status)).sort();
      const expected: Record<RetryCrashPoint, string[]> = {
        'mid-dispatch': ['absent', 'deleted'],
        dispatched: ['absent', 'absent'],
        'mid-settle': ['absent', 'absent'],
        settled: [],
      };
      assert.deepEqual(statuses, expected[point]);
      assert.deepEqual(pass.detached, settled ? [] : [s.tpmUuid]);

      for (const path of s.paths) assert.equal(existsSync(path), false, path);
      assert.equal(await ctl.deps.store.getKeyBinding(s.tpmUuid), null);
      await assertEndState(fleet, ctl.deps);
    });
  });
}
