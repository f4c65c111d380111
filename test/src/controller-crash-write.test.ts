// A controller killed by SIGKILL at each step of a file write that moves a VM's NVRAM to a new path: the kill is
// located by the dead controller's trace, the disk and the database; after restart, resume and a retry pass, the host
// holds exactly what the database records (the guard removes bytes that landed unrecorded). A write that landed
// unrecorded and is repeated after restart is recorded, not refused.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addVm,
  fileState,
  reconcileHost,
  resumeOperations,
  retryPendingDeletions,
  syncVm,
  writeFile,
  WRITE_FILE,
  type FlowDeps,
} from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { crashAt, WRITE, WRITE_CRASH_POINTS, type WriteCrashPoint } from './support/crash-controller.js';
import { assertEndState } from './support/end-state.js';

const OLD = Buffer.from('vars old');
const NEW = Buffer.from('vars new');

interface Scene {
  readonly vmUuid: string;
  readonly hostUuid: string;
  /** the VM's recorded NVRAM */
  readonly from: string;
  /** where the killed write puts it */
  readonly to: string;
}

async function placeScene(fleet: Fleet): Promise<Scene> {
  const vm = await addVm(fleet.deps, { name: 'w', host: 'host0', bootMode: 'UEFI', secureBoot: true });
  const from = join(roots(fleet, 0).NvRam, 'w_VARS.fd');
  await writeFile(fleet.deps, { vm: 'w', type: 'NvRam', path: from, state: fileState(OLD) });
  const hostUuid = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
  return { vmUuid: vm.uuid, hostUuid, from, to: join(roots(fleet, 0).NvRam, 'w-moved_VARS.fd') };
}

// The write is journaled in the transactions it commits anyway: started with the guards, finished with the record.
const GUARDS = 'commit startOperation,addOwnedPaths,addPendingDeletions';

/** Where the kill landed: the dead controller's trace, the host's disk, the rows it left. */
async function assertKilledAt(point: WriteCrashPoint, deps: FlowDeps, s: Scene, trace: readonly string[]) {
  const expected = {
    guarded: [GUARDS],
    landed: [GUARDS, 'files.apply host0'],
    'mid-record': [GUARDS, 'files.apply host0'],
    recorded: [GUARDS, 'files.apply host0', 'commit upsertFile,addPendingDeletions,recordGeneration,finishOperation'],
  }[point];
  assert.deepEqual(trace, [...expected, `kill ${point}`]);
  assert.equal(readFileSync(s.from, 'utf8'), OLD.toString(), 'the old path untouched');
  if (point === 'guarded') assert.equal(existsSync(s.to), false, 'nothing sent');
  else assert.equal(readFileSync(s.to, 'utf8'), NEW.toString(), 'the write landed');
  const rows = (await deps.store.listFilesByVm(s.vmUuid)).map((r) => [r.path, r.sha256]);
  const pending = (await deps.store.listPendingDeletions()).map((p) => [p.path, p.expectSha256]);
  const owned = (await deps.store.listOwnedPaths(s.hostUuid)).map((o) => o.path).sort();
  assert.deepEqual(owned, [s.from, s.to].sort(), 'the guard took charge of the new path');
  if (point === 'recorded') {
    assert.deepEqual(rows, [[s.to, fileState(NEW).sha256]], 'the row re-pointed');
    assert.deepEqual(pending, [[s.from, null]], 'the old path pending deletion, the guard cancelled');
  } else {
    assert.deepEqual(rows, [[s.from, fileState(OLD).sha256]], 'nothing recorded');
    assert.deepEqual(pending, [[s.to, fileState(NEW).sha256]], 'the guard of exactly the bytes sent');
  }
}

for (const point of WRITE_CRASH_POINTS) {
  test(`SIGKILL ${point} of a file write, then restart: resume and a retry pass leave the host as recorded`, async () => {
    await withFleet(1, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const plan = {
        flow: WRITE,
        point,
        vm: 'w',
        host: 'host0',
        type: 'NvRam',
        path: s.to,
        content: NEW.toString('base64'),
      } as const;
      const crashed = await crashAt(fleet, ctl.deps, plan);
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, s, crashed.trace);

      // The write cannot be repeated (its content is not journaled): resume ends it failed, saying what settles it —
      // its guard (or, once recorded, the old path's deletion, and the operation finished with the record).
      const running = (await ctl.deps.store.listOperations({ kind: WRITE_FILE, state: 'running', limit: 10 })).map(
        (o) => o.id,
      );
      assert.equal(running.length, point === 'recorded' ? 0 : 1, 'the write journaled until it is recorded');
      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual([resume.resumed, resume.failed, resume.unknown, resume.errors], [running, running, [], []]);
      for (const id of running) {
        const ended = await ctl.deps.store.getOperation(id);
        assert.equal(ended?.state, 'failed');
        assert.match(JSON.stringify(ended.report), /its guard deletes the bytes if they landed/);
      }
      const [last] = await ctl.deps.store.listOperations({ kind: WRITE_FILE, limit: 1 });
      assert.equal(last?.state, point === 'recorded' ? 'done' : 'failed');
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.deepEqual([pass.attempted, pass.confirmed, pass.stillPending], [1, 1, 0]);
      const outcome = pass.hosts.flatMap((h) => h.files.map((f) => [f.path, f.status]));
      if (point === 'recorded') assert.deepEqual(outcome, [[s.from, 'deleted']]);
      else assert.deepEqual(outcome, [[s.to, point === 'guarded' ? 'absent' : 'deleted']]);

      const kept = point === 'recorded' ? s.to : s.from;
      assert.deepEqual(
        (await ctl.deps.store.listFilesByVm(s.vmUuid)).map((r) => r.path),
        [kept],
      );
      assert.equal(readFileSync(kept, 'utf8'), (point === 'recorded' ? NEW : OLD).toString());
      await assertEndState(fleet, ctl.deps);
    });
  });
}

/** A plan that kills the write of NEW to `path` (host0's NVRAM of VM w) right after the agent applied it. */
const landedAt = (path: string) =>
  ({
    flow: WRITE,
    point: 'landed',
    vm: 'w',
    host: 'host0',
    type: 'NvRam',
    path,
    content: NEW.toString('base64'),
  }) as const;

test('a write that landed unrecorded, repeated after restart, is recorded: its guard cancelled, the old path deleted', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const s = await placeScene(fleet);
    const plan = landedAt(s.to);
    ctl.deps = (await crashAt(fleet, ctl.deps, plan)).deps;

    // The bytes already there are exactly the ones written: `expect: absent` is met, nothing is refused.
    const written = await writeFile(ctl.deps, { vm: 'w', type: 'NvRam', path: s.to, state: fileState(NEW) });
    assert.deepEqual([written.status, written.replaced], ['written', s.from]);
    assert.deepEqual(
      (await ctl.deps.store.listPendingDeletions()).map((p) => [p.path, p.expectSha256]),
      [[s.from, null]],
      'the guard cancelled by the row, the old path pending',
    );
    const pass = await retryPendingDeletions(ctl.deps, { all: true });
    assert.deepEqual([pass.confirmed, pass.stillPending], [1, 0]);
    assert.equal(readFileSync(s.to, 'utf8'), NEW.toString());
    // The killed write's operation ends failed at the next resume: the repeat recorded what it sent.
    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual([resume.resumed.length, resume.failed.length], [1, 1]);
    const ended = await ctl.deps.store.getOperation(resume.failed[0] ?? '');
    assert.match(JSON.stringify(ended?.report), /the same state was recorded there since/);
    await assertEndState(fleet, ctl.deps);
  });
});

test('a write over the VM’s own path killed after it landed: the row keeps the old digest, reconcile reports it modified, a sync records it', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const s = await placeScene(fleet);
    const plan = landedAt(s.from);
    const crashed = await crashAt(fleet, ctl.deps, plan);
    ctl.deps = crashed.deps;
    // The VM's own path takes no guard: the journal's start is the one write before the command went out.
    assert.deepEqual(crashed.trace, ['start file.write write', 'files.apply host0', 'kill landed']);
    assert.equal(readFileSync(s.from, 'utf8'), NEW.toString());
    assert.deepEqual(
      (await ctl.deps.store.listFilesByVm(s.vmUuid)).map((r) => [r.path, r.sha256]),
      [[s.from, fileState(OLD).sha256]],
      'not recorded: the row holds the old digest',
    );
    assert.deepEqual(await ctl.deps.store.listPendingDeletions(), []);

    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual([resume.resumed.length, resume.failed.length, resume.errors], [1, 1, []]);
    const ended = await ctl.deps.store.getOperation(resume.failed[0] ?? '');
    assert.deepEqual([ended?.kind, ended?.state], [WRITE_FILE, 'failed']);
    assert.match(JSON.stringify(ended?.report), /reconcile reports it modified and a sync records it/);
    assert.equal((await retryPendingDeletions(ctl.deps, { all: true })).attempted, 0);
    // Nothing untracked: the path is the VM's, holding other bytes than recorded, as after a run of the VM.
    const seen = await reconcileHost(ctl.deps, 'host0');
    assert.deepEqual(
      [seen.modified.map((m) => [m.path, m.onDisk]), seen.orphans, seen.unknown, seen.missing],
      [[[s.from, fileState(NEW).sha256]], [], [], []],
    );
    const synced = await syncVm(ctl.deps, 'w');
    assert.deepEqual(
      synced.backups.map((b) => [b.path, b.sha256]),
      [[s.from, fileState(NEW).sha256]],
    );
    await assertEndState(fleet, ctl.deps);
  });
});
