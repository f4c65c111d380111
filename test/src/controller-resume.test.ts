// A controller killed with SIGKILL at each step of a TPM removal, then started again: resume and one retry pass
// leave no removed TPM's row or file, no secure-boot VM's NVRAM touched, every binding of a removed TPM detached.
// Also: what resume does with VMs changed while the removal was unfinished, bindings left 'detaching', unknown kinds.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fileState,
  addTpm,
  addVm,
  destroyVm,
  removeTpms,
  resumeOperations,
  retryPendingDeletions,
  writeFile,
  REMOVE_TPM,
  type FlowDeps,
  type Vm,
  type OperationKind,
} from '@hostfiles/controller';
import { withFleet, type Fleet } from './support/controller.js';
import { crashAndRestart, crashAt, CRASH_POINTS, type CrashPoint } from './support/crash-controller.js';

interface Placed {
  readonly vm: Vm;
  readonly tpmUuid: string;
  readonly tpmPaths: string[];
  readonly nvramPath: string | undefined;
}

/** The controller running now: the first one, then the one started again after a crash. */

/** A VM with a TPM on host `home`, its TPM state also on `also` (where it lived before), NVRAM if UEFI. */
async function placeVm(
  fleet: Fleet,
  name: string,
  home: number,
  options: { uefi: boolean; secureBoot: boolean; also?: number },
): Promise<Placed> {
  const deps = fleet.deps;
  const vm = await addVm(deps, {
    name,
    host: `host${home}`,
    bootMode: options.uefi ? 'UEFI' : 'Legacy',
    secureBoot: options.secureBoot,
  });
  const { tpm } = await addTpm(deps, name, 'kms-1');
  const tpmPaths: string[] = [];
  for (const h of options.also === undefined ? [home] : [options.also, home]) {
    const path = join(fleet.agents[h]?.setup.roots.TpmState ?? '', vm.uuid, 'tpm2-00.permall');
    await writeFile(deps, {
      vm: name,
      host: `host${h}`,
      type: 'TpmState',
      path,
      state: fileState(Buffer.from(`tpm ${name}`)),
    });
    tpmPaths.push(path);
  }
  let nvramPath: string | undefined;
  if (options.uefi) {
    nvramPath = join(fleet.agents[home]?.setup.roots.NvRam ?? '', `${vm.uuid}_VARS.fd`);
    await writeFile(deps, { vm: name, type: 'NvRam', path: nvramPath, state: fileState(Buffer.from(`vars ${name}`)) });
  }
  return { vm, tpmUuid: tpm.uuid, tpmPaths, nvramPath };
}

/** What proves a file untouched: same inode, same mtime, same bytes. */
function fingerprint(path: string | undefined): string {
  const stat = statSync(path ?? '');
  return `${stat.ino}:${stat.mtimeMs}:${readFileSync(path ?? '', 'utf8')}`;
}

interface Scene {
  /** UEFI without secure boot: its NVRAM goes with the TPM. TPM state on host1 and host0, NVRAM on host0. */
  readonly plain: Placed;
  /** UEFI with secure boot: its NVRAM stays. All on host1. */
  readonly secure: Placed;
  /** legacy boot: TPM state on host0 and host2. */
  readonly legacy: Placed;
  /** not part of the removal: secure boot, all on host2. */
  readonly bystander: Placed;
}

async function placeScene(fleet: Fleet): Promise<Scene> {
  return {
    plain: await placeVm(fleet, 'plain', 0, { uefi: true, secureBoot: false, also: 1 }),
    secure: await placeVm(fleet, 'secure', 1, { uefi: true, secureBoot: true }),
    legacy: await placeVm(fleet, 'legacy', 2, { uefi: false, secureBoot: false, also: 0 }),
    bystander: await placeVm(fleet, 'bystander', 2, { uefi: true, secureBoot: true }),
  };
}

/** The removal's files on host0 and host1 (up while the controller dies); host2 is down then. */
const onUpHosts = (s: Scene): string[] => [
  ...s.plain.tpmPaths,
  s.plain.nvramPath ?? '',
  ...s.secure.tpmPaths,
  s.legacy.tpmPaths[0] ?? '',
];

/** Where the kill landed, seen from the disk and the database the dead controller left. */
async function assertKilledAt(point: CrashPoint, deps: FlowDeps, s: Scene, operationId: string): Promise<void> {
  const operation = await deps.store.getOperation(operationId);
  const tpms = await Promise.all([s.plain, s.secure, s.legacy].map((p) => deps.store.getTpmByVm(p.vm.uuid)));
  const gone = onUpHosts(s).filter((path) => !existsSync(path)).length;
  const pending = (await deps.store.listPendingDeletions()).map((row) => row.path);
  assert.equal(existsSync(s.legacy.tpmPaths[1] ?? ''), true, 'host2 was down: its file is still there');
  if (point === 'after-purge') {
    assert.equal(operation?.state, 'done');
    assert.deepEqual(tpms, [null, null, null]);
    assert.equal(gone, onUpHosts(s).length);
    assert.deepEqual(pending, [s.legacy.tpmPaths[1]]);
    return;
  }
  assert.equal(operation?.state, 'running', 'the purge never committed');
  assert.equal(operation.step, point === 'after-collect' ? 'collect' : 'dispatch');
  assert.equal(tpms.filter((tpm) => tpm !== null).length, 3, 'no TPM row purged');
  assert.equal((await deps.store.listFilesByVm(s.plain.vm.uuid)).length, 3, 'no file row purged');
  assert.deepEqual(pending, [], 'nothing in the outbox yet');
  switch (point) {
    case 'after-collect':
      assert.equal(gone, 0, 'nothing sent');
      break;
    case 'mid-dispatch':
      assert.ok(gone > 0 && gone < onUpHosts(s).length, `one host of two answered (${gone} files gone)`);
      break;
    case 'before-purge':
    case 'mid-purge':
      assert.equal(gone, onUpHosts(s).length, 'every host up answered');
      break;
  }
}

/** The guarantees, after resume and a retry pass. */
async function assertGuarantees(deps: FlowDeps, s: Scene, untouched: ReadonlyMap<string, string>): Promise<void> {
  for (const placed of [s.plain, s.secure, s.legacy]) {
    assert.equal(await deps.store.getTpmByVm(placed.vm.uuid), null, `${placed.vm.name}: TPM row gone`);
    assert.deepEqual(await deps.store.listFilesByVm(placed.vm.uuid, 'TpmState'), []);
    for (const path of placed.tpmPaths) assert.equal(existsSync(path), false, path);
    assert.equal(await deps.store.getKeyBinding(placed.tpmUuid), null, `${placed.vm.name}: binding detached`);
  }
  assert.equal(existsSync(s.plain.nvramPath ?? ''), false, 'UEFI without secure boot: NVRAM deleted');
  assert.deepEqual(await deps.store.listFilesByVm(s.plain.vm.uuid), []);
  for (const [path, print] of untouched) assert.equal(fingerprint(path), print, `untouched: ${path}`);
  assert.deepEqual(
    (await deps.store.listFilesByVm(s.secure.vm.uuid)).map((f) => f.path),
    [s.secure.nvramPath],
  );
  assert.equal((await deps.store.getTpmByVm(s.bystander.vm.uuid))?.uuid, s.bystander.tpmUuid);
  assert.deepEqual(
    (await deps.store.listKeyBindings()).map((b) => [b.tpmUuid, b.state]),
    [[s.bystander.tpmUuid, 'attached']],
  );
  assert.deepEqual(await deps.store.listPendingDeletions(), []);
  assert.deepEqual(await deps.store.listUnfinishedOperations(), []);
}

/** How many of the two hosts up had answered the removal's deletions when the kill landed. */
const HOSTS_ANSWERED: Readonly<Record<CrashPoint, number>> = {
  'after-collect': 0,
  'mid-dispatch': 1,
  'before-purge': 2,
  'mid-purge': 2,
  'after-purge': 2,
};

for (const point of CRASH_POINTS) {
  test(`SIGKILL ${point} of a removal, then restart: resume and a retry pass keep every guarantee`, async () => {
    await withFleet(3, async (fleet, ctl) => {
      const s = await placeScene(fleet);
      const kept = [s.secure.nvramPath, s.bystander.nvramPath, ...s.bystander.tpmPaths];
      const untouched = new Map(kept.map((path) => [path ?? '', fingerprint(path)]));
      await fleet.stop(2);
      const operationId = randomUUID();
      const vms = ['plain', 'secure', 'legacy'];
      const crashed = await crashAt(fleet, ctl.deps, { point, flow: REMOVE_TPM, vms, operationId });
      ctl.deps = crashed.deps;
      // The dead controller's trace: which of the two hosts up answered its deletions before the kill.
      const answered = crashed.trace.filter((line) => /^files\.apply host[01]$/.test(line)).length;
      assert.equal(answered, HOSTS_ANSWERED[point], crashed.trace.join('; '));
      assert.equal(crashed.trace.at(-1), `kill ${point}`);
      await assertKilledAt(point, ctl.deps, s, operationId);

      // Restarted with host2 still down: the removal completes, host2's file waits in the outbox.
      const resume = await resumeOperations(ctl.deps);
      assert.deepEqual(resume.errors, []);
      assert.deepEqual(resume.resumed, point === 'after-purge' ? [] : [operationId]);
      assert.deepEqual(resume.failed, []);
      assert.equal((await ctl.deps.store.getOperation(operationId))?.state, 'done');
      assert.deepEqual(
        (await ctl.deps.store.listPendingDeletions()).map((row) => [row.path, row.tpmUuid]),
        [[s.legacy.tpmPaths[1], s.legacy.tpmUuid]],
      );
      assert.equal((await ctl.deps.store.getKeyBinding(s.legacy.tpmUuid))?.state, 'detaching');
      assert.deepEqual((await resumeOperations(ctl.deps)).resumed, [], 'nothing left to resume');

      await fleet.restart(2);
      const pass = await retryPendingDeletions(ctl.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.stillPending], [1, 0]);
      assert.deepEqual(pass.detached, [s.legacy.tpmUuid]);
      await assertGuarantees(ctl.deps, s, untouched);
    });
  });
}

test('a VM destroyed while its removal was unfinished: that removal ends failed, the others go on as a new one', async () => {
  await withFleet(2, async (fleet, ctl) => {
    const plain = await placeVm(fleet, 'plain', 0, { uefi: true, secureBoot: false, also: 1 });
    const legacy = await placeVm(fleet, 'legacy', 1, { uefi: false, secureBoot: false });
    const operationId = randomUUID();
    const plan = { point: 'mid-dispatch', flow: REMOVE_TPM, vms: ['plain', 'legacy'], operationId } as const;
    ctl.deps = await crashAndRestart(fleet, ctl.deps, plan);
    // Another flow runs before resume (e.g. on a second controller): it destroys one of the VMs.
    await destroyVm(ctl.deps, 'legacy');

    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual(resume.errors, []);
    assert.deepEqual([resume.resumed, resume.failed], [[operationId], [operationId]]);
    const failed = await ctl.deps.store.getOperation(operationId);
    assert.equal(failed?.state, 'failed');
    const report = failed.report as { skipped: unknown; continuedAs: string };
    assert.deepEqual(report.skipped, [{ vmUuid: legacy.vm.uuid, reason: 'the VM no longer exists' }]);
    const continued = await ctl.deps.store.getOperation(report.continuedAs);
    assert.equal(continued?.state, 'done');
    assert.deepEqual(
      (continued.report as { vms: { vmUuid: string }[] }).vms.map((v) => v.vmUuid),
      [plain.vm.uuid],
    );

    assert.equal(await ctl.deps.store.getTpmByVm(plain.vm.uuid), null);
    for (const path of [...plain.tpmPaths, ...legacy.tpmPaths, plain.nvramPath ?? ''])
      assert.equal(existsSync(path), false, path);
    assert.deepEqual(await ctl.deps.store.listFilesByVm(plain.vm.uuid), []);
    assert.deepEqual(await ctl.deps.store.listKeyBindings(), []);
    assert.deepEqual(await ctl.deps.store.listPendingDeletions(), []);
    assert.deepEqual(await ctl.deps.store.listUnfinishedOperations(), []);
  });
});

test('a removal whose VMs all changed meanwhile ends failed, and a TPM added since is never removed', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const gone = await placeVm(fleet, 'gone', 0, { uefi: false, secureBoot: false });
    const renewed = await placeVm(fleet, 'renewed', 0, { uefi: false, secureBoot: false });
    const operationId = randomUUID();
    const plan = { point: 'mid-dispatch', flow: REMOVE_TPM, vms: ['gone', 'renewed'], operationId } as const;
    ctl.deps = await crashAndRestart(fleet, ctl.deps, plan);
    await destroyVm(ctl.deps, 'gone');
    // The old TPM removed by another removal, then a new one added, with new state at the same path.
    await removeTpms(ctl.deps, ['renewed']);
    const { tpm } = await addTpm(ctl.deps, 'renewed', 'kms-2');
    const path = renewed.tpmPaths[0] ?? '';
    await writeFile(ctl.deps, { vm: 'renewed', type: 'TpmState', path, state: fileState(Buffer.from('new state')) });

    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual(resume.errors, []);
    assert.deepEqual(resume.failed, [operationId]);
    const failed = await ctl.deps.store.getOperation(operationId);
    assert.deepEqual(failed?.state, 'failed');
    assert.deepEqual(failed.report, {
      error: 'some VMs no longer have the TPM this removal meant',
      skipped: [
        { vmUuid: gone.vm.uuid, reason: 'the VM no longer exists' },
        { vmUuid: renewed.vm.uuid, reason: 'the VM has another TPM, added after this removal began' },
      ],
      continuedAs: null,
    });
    assert.equal((await ctl.deps.store.getTpmByVm(renewed.vm.uuid))?.uuid, tpm.uuid);
    assert.equal(readFileSync(path, 'utf8'), 'new state');
    assert.equal((await ctl.deps.store.getKeyBinding(tpm.uuid))?.state, 'attached');
    assert.equal(existsSync(gone.tpmPaths[0] ?? ''), false);
    assert.deepEqual(await ctl.deps.store.listUnfinishedOperations(), []);
  });
});

test('a binding left detaching with nothing pending is detached at resume; one still waiting stays', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const a = await placeVm(fleet, 'a', 0, { uefi: false, secureBoot: false });
    const b = await placeVm(fleet, 'b', 0, { uefi: false, secureBoot: false });
    await fleet.stop(0);
    const report = await removeTpms(ctl.deps, ['a', 'b']);
    assert.deepEqual(
      report.vms.map((v) => v.binding),
      ['detaching', 'detaching'],
    );
    // The first transaction of a write over a's old state (the upsert that cancels its deletion), and then the
    // controller died before the second settled a's binding.
    const [row] = await ctl.deps.store.listPendingDeletions({ tpmUuid: a.tpmUuid });
    assert.ok(row !== undefined);
    const { cancelled } = await ctl.deps.store.upsertFile({
      uuid: randomUUID(),
      vmUuid: a.vm.uuid,
      hostUuid: row.hostUuid,
      type: 'TpmState',
      path: row.path,
      kind: 'file',
      sha256: '0'.repeat(64),
      size: 0,
      lastSyncAt: Date.now(),
    });
    assert.deepEqual(
      cancelled.map((c) => c.id),
      [row.id],
    );

    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual(resume.detached, [a.tpmUuid]);
    assert.equal(await ctl.deps.store.getKeyBinding(a.tpmUuid), null);
    assert.equal((await ctl.deps.store.getKeyBinding(b.tpmUuid))?.state, 'detaching', 'b still has a file pending');

    await fleet.restart(0);
    const pass = await retryPendingDeletions(ctl.deps, { all: true });
    assert.deepEqual(pass.detached, [b.tpmUuid]);
    assert.equal(existsSync(b.tpmPaths[0] ?? ''), false);
    assert.deepEqual(await ctl.deps.store.listKeyBindings(), []);
  });
});

test('an operation of an unknown kind is left running; one whose input cannot be read ends failed', async () => {
  await withFleet(1, async (_fleet, ctl) => {
    const store = ctl.deps.store;
    await store.startOperation({
      id: 'later',
      kind: 'vm.migrate' as OperationKind,
      subject: 'x',
      step: 'copy',
      input: {},
    });
    await store.startOperation({ id: 'torn', kind: REMOVE_TPM, subject: 'x', step: 'collect', input: { vm: 1 } });
    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual(resume.unknown, ['later']);
    assert.deepEqual([resume.resumed, resume.failed, resume.errors], [['torn'], ['torn'], []]);
    assert.equal((await store.getOperation('later'))?.state, 'running');
    assert.equal((await store.getOperation('torn'))?.state, 'failed');
  });
});

test('a removal refused at collect (a VM without a TPM) is never carried out by resume', async () => {
  await withFleet(1, async (fleet, ctl) => {
    const has = await placeVm(fleet, 'has', 0, { uefi: false, secureBoot: false });
    await addVm(ctl.deps, { name: 'bare', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await assert.rejects(removeTpms(ctl.deps, ['has', 'bare']), /VM bare has no TPM/);
    // removeTpms collects before it journals: a refused removal leaves no operation for a resume to carry out.
    assert.deepEqual(await ctl.deps.store.listUnfinishedOperations(), []);
    const resume = await resumeOperations(ctl.deps);
    assert.deepEqual([resume.resumed, resume.failed, resume.errors], [[], [], []]);
    assert.equal((await ctl.deps.store.getTpmByVm(has.vm.uuid))?.uuid, has.tpmUuid);
    assert.equal(readFileSync(has.tpmPaths[0] ?? '', 'utf8'), 'tpm has');
    assert.equal((await ctl.deps.store.getKeyBinding(has.tpmUuid))?.state, 'attached');
    assert.deepEqual(await ctl.deps.store.listUnfinishedOperations(), []);
  });
});
