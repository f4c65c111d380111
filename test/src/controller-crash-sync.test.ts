// A controller killed by SIGKILL at each step of a sync of a VM whose state changed on two hosts since its last sync:
// the kill is located by the dead controller's trace, the operation's journal row and the rows and backups it left;
// after restart, resumeSync finishes the same operation, once, and the rows and backups are the bytes on disk.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
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
  SYNC_VM,
  type FileType,
  type FlowDeps,
  type SyncReport,
} from '@hostfiles/controller';
import { backupBytes, plant, roots, withFleet, type Fleet } from './support/controller.js';
import { crashAt, SYNC_CRASH_POINTS, type SyncCrashPoint } from './support/crash-controller.js';
import { assertEndState } from './support/end-state.js';

interface Scene {
  readonly vmUuid: string;
  /** the VM's files: TPM state and NVRAM on its host (host0), NVRAM also on host1 where it lived before */
  readonly files: readonly { readonly host: number; readonly type: FileType; readonly path: string }[];
}

/** The VM, synced once, then run: every one of its files changed on disk behind the controller's back. */
async function placeScene(fleet: Fleet): Promise<Scene> {
  const vm = await addVm(fleet.deps, { name: 's', host: 'host0', bootMode: 'UEFI', secureBoot: true });
  await addTpm(fleet.deps, 's', 'kms-1');
  const files = [
    { host: 0, type: 'TpmState', path: join(roots(fleet, 0).TpmState, vm.uuid, 'tpm2-00.permall') },
    { host: 0, type: 'NvRam', path: join(roots(fleet, 0).NvRam, 's_VARS.fd') },
    { host: 1, type: 'NvRam', path: join(roots(fleet, 1).NvRam, 's_VARS.fd') },
  ] as const;
  for (const f of files) {
    const state = fileState(Buffer.from(`${f.type} on host${f.host}`));
    await writeFile(fleet.deps, { vm: 's', host: `host${f.host}`, type: f.type, path: f.path, state });
  }
  await syncVm(fleet.deps, 's');
  for (const f of files) plant(f.path, Buffer.from(`${f.type} on host${f.host}, after a run`));
  return { vmUuid: vm.uuid, files };
}

const ran = (f: Scene['files'][number]): string => `${f.type} on host${f.host}, after a run`;

/** The digests the rows hold, and the backups' bytes, per type. */
async function recorded(deps: FlowDeps, s: Scene): Promise<{ rows: string[]; backups: string[] }> {
  const rows = await deps.store.listFilesByVm(s.vmUuid);
  const byPath = new Map(rows.map((r) => [r.path, r.sha256]));
  const backups = await deps.store.listBackupsByVm(s.vmUuid);
  return {
    rows: s.files.map((f) => byPath.get(f.path) ?? 'no row'),
    backups: await Promise.all(
      (['TpmState', 'NvRam'] as const).map(async (type) => {
        const backup = backups.find((b) => b.type === type);
        return backup === undefined ? 'none' : (await backupBytes(deps.store, backup)).toString();
      }),
    ),
  };
}

const beforeRun = (s: Scene) => ({
  rows: s.files.map((f) => fileState(Buffer.from(`${f.type} on host${f.host}`)).sha256),
  backups: ['TpmState on host0', 'NvRam on host0'],
});
const afterRun = (s: Scene) => ({
  rows: s.files.map((f) => fileState(Buffer.from(ran(f))).sha256),
  backups: [ran({ host: 0, type: 'TpmState', path: '' }), ran({ host: 0, type: 'NvRam', path: '' })],
});

/** Where the kill landed: the dead controller's trace, the journal row, the rows and backups it left. */
async function assertKilledAt(point: SyncCrashPoint, deps: FlowDeps, s: Scene, id: string, trace: readonly string[]) {
  const start = 'start vm.sync read';
  const reads = trace.filter((line) => line.startsWith('files.read'));
  assert.deepEqual(trace, [
    start,
    ...reads,
    ...(point === 'recorded' ? ['commit upsertFile,recordGeneration,finishOperation'] : []),
    `kill ${point}`,
  ]);
  const hostsRead = { started: 0, 'mid-read': 1, read: 2, 'mid-record': 2, recorded: 2 }[point];
  assert.equal(reads.length, hostsRead, `hosts read before the kill: ${reads.join(', ')}`);
  if (hostsRead === 2) assert.deepEqual([...reads].sort(), ['files.read host0', 'files.read host1']);
  const operation = await deps.store.getOperation(id);
  if (point === 'recorded') {
    assert.equal(operation?.state, 'done');
    assert.deepEqual(await recorded(deps, s), afterRun(s), 'rows and backups committed with the operation');
  } else {
    assert.deepEqual([operation?.state, operation?.step], ['running', 'read']);
    assert.deepEqual(await recorded(deps, s), beforeRun(s), 'nothing recorded');
  }
}

for (const point of SYNC_CRASH_POINTS) {
  test(`SIGKILL ${point} of a sync, then restart: resume finishes it once, rows and backups are the disk's`, async () => {
    await withFleet(2, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const operationId = randomUUID();
      const crashed = await crashAt(fleet, ctl.deps, { flow: SYNC_VM, point, vm: s.vmUuid, operationId });
      ctl.deps = crashed.deps;
      await assertKilledAt(point, ctl.deps, s, operationId, crashed.trace);

      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual(resume.errors, []);
      assert.deepEqual([resume.resumed, resume.failed], [point === 'recorded' ? [] : [operationId], []]);
      assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'nothing left to resume');
      const operation = await ctl.deps.store.getOperation(operationId);
      assert.equal(operation?.state, 'done');
      const report = operation.report as SyncReport;
      assert.deepEqual(
        [report.operationId, report.notUpdated, report.files.map((f) => f.status)],
        [operationId, [], ['read', 'read', 'read']],
      );
      assert.deepEqual(report.backups.map((b) => [b.type, b.hostName]).sort(), [
        ['NvRam', 'host0'],
        ['TpmState', 'host0'],
      ]);
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.equal(pass.attempted, 0, 'a sync leaves nothing to delete');

      assert.deepEqual(await recorded(ctl.deps, s), afterRun(s));
      await assertEndState(fleet, ctl.deps);
    });
  });
}
