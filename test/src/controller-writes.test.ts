// Writes checked before they land, with real agents and a real SQLite file: another VM's path is refused before
// anything is sent; a VM's new path puts its old one in the outbox in the same transaction; state hostfiles does not
// know is not written over unless forced; a write whose answer is lost leaves a guard that deletes exactly its bytes;
// a state in use (its lock held) is never written or deleted.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  addHost,
  addTpm,
  addVm,
  dirState,
  fileState,
  isFlowError,
  reconcileHost,
  removeTpms,
  retryPendingDeletions,
  writeFile,
} from '@hostfiles/controller';
import { sha256Of } from '@hostfiles/shared';
import { withFleet, type Fleet, roots } from './support/controller.js';
import { holdLock } from './support/locks.js';
import { lossyProxy } from './support/lossy-proxy.js';

/** The paths the agent logged an applied op for. */
const opsOn = (fleet: Fleet, i: number, path: string): number =>
  (fleet.agents[i]?.lines ?? []).filter((line) => {
    const event = JSON.parse(line) as { event?: string; path?: string };
    return event.event === 'op' && event.path === path;
  }).length;

const tpmState = (text: string) => dirState([{ path: 'tpm2/tpm2-00.permall', content: Buffer.from(text) }]);

test("a write at another VM's path is refused before anything is sent: that VM's state is untouched", async () => {
  await withFleet(1, async (fleet) => {
    const r = roots(fleet, 0);
    const a = await addVm(fleet.deps, { name: 'a', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await addVm(fleet.deps, { name: 'b', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    const aState = join(r.TpmState, a.uuid);
    await writeFile(fleet.deps, { vm: 'a', type: 'TpmState', path: aState, state: tpmState('state of a') });
    const before = opsOn(fleet, 0, aState);
    for (const path of [aState, join(aState, 'tpm2'), join(aState, 'tpm2', 'tpm2-00.permall')]) {
      await assert.rejects(
        writeFile(fleet.deps, { vm: 'b', type: 'TpmState', path, state: tpmState('state of b') }),
        (error) =>
          isFlowError(error) && error.code === 'conflict' && /refused before anything was sent/.test(error.message),
        path,
      );
    }
    // The same through a path that contains a's: writing b's state around it would replace it.
    await assert.rejects(
      writeFile(fleet.deps, { vm: 'b', type: 'TpmState', path: r.TpmState, state: tpmState('x') }),
      (error) => isFlowError(error),
    );
    assert.equal(opsOn(fleet, 0, aState), before, 'no op reached the agent');
    assert.equal(readFileSync(join(aState, 'tpm2', 'tpm2-00.permall'), 'utf8'), 'state of a');
    assert.deepEqual(
      (await fleet.store.listFilesByHost((await fleet.store.getHostByName('host0'))?.uuid ?? '')).map((f) => f.vmUuid),
      [a.uuid],
    );
  });
});

test("a VM's state written at a new path puts the old one in the outbox with the record: nothing is left behind", async () => {
  await withFleet(1, async (fleet) => {
    const r = roots(fleet, 0);
    const vm = await addVm(fleet.deps, { name: 'vm', host: 'host0', bootMode: 'Legacy', secureBoot: false });
    const { tpm } = await addTpm(fleet.deps, 'vm', 'kms');
    const first = join(r.TpmState, 'old-layout');
    const second = join(r.TpmState, vm.uuid);
    await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path: first, state: tpmState('one') });
    const moved = await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path: second, state: tpmState('two') });
    assert.equal(moved.replaced, first);
    assert.deepEqual(
      (await fleet.store.listFilesByVm(vm.uuid)).map((f) => [f.path, f.kind, f.sha256]),
      [[second, 'dir', tpmState('two').sha256]],
    );
    assert.deepEqual(
      (await fleet.store.listPendingDeletions()).map((p) => [p.path, p.vmUuid, p.tpmUuid]),
      [[first, vm.uuid, tpm.uuid]],
      'the old path is in the outbox, not forgotten, as state of the TPM',
    );
    assert.equal((await fleet.store.getKeyBinding(tpm.uuid))?.state, 'attached', 'a live TPM keeps its binding');
    // A second file inside the VM's own state directory is refused: the state is written whole.
    await assert.rejects(
      writeFile(fleet.deps, {
        vm: 'vm',
        type: 'TpmState',
        path: join(second, 'tpm2', 'tpm2-00.volatilestate'),
        state: fileState(Buffer.from('v')),
      }),
      /inside VM vm's TpmState state/,
    );
    const report = await removeTpms(fleet.deps, ['vm']);
    assert.deepEqual(report.pending, []);
    assert.equal(report.vms[0]?.binding, 'detaching', 'its earlier path is still pending: the binding waits for it');
    assert.equal((await retryPendingDeletions(fleet.deps, { all: true })).confirmed, 1);
    assert.equal(existsSync(first), false);
    assert.equal(existsSync(second), false);
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.deepEqual(await fleet.store.listKeyBindings(), []);
  });
});

test('state hostfiles does not know is not written over unless forced', async () => {
  await withFleet(1, async (fleet) => {
    const r = roots(fleet, 0);
    const vm = await addVm(fleet.deps, { name: 'vm', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    const libvirts = join(r.TpmState, vm.uuid, 'tpm2', 'tpm2-00.permall');
    mkdirSync(dirname(libvirts), { recursive: true });
    writeFileSync(libvirts, 'made by swtpm_setup');
    const path = join(r.TpmState, vm.uuid);
    await assert.rejects(
      writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path, state: tpmState('ours') }),
      (error) => isFlowError(error) && error.code === 'conflict' && /adopt it/.test(error.message),
    );
    assert.equal(readFileSync(libvirts, 'utf8'), 'made by swtpm_setup');
    assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'the refused write left no guard');
    assert.deepEqual(await fleet.store.listFilesByVm(vm.uuid), []);
    const seen = await reconcileHost(fleet.deps, 'host0', { apply: true });
    assert.deepEqual(
      [seen.unknown.map((u) => u.path), seen.orphans, seen.scheduled],
      [[path], [], []],
      "still libvirt's, never hostfiles' leftover",
    );
    const forced = await writeFile(fleet.deps, {
      vm: 'vm',
      type: 'TpmState',
      path,
      state: tpmState('ours'),
      force: true,
    });
    assert.equal(forced.status, 'written');
    assert.equal(readFileSync(libvirts, 'utf8'), 'ours');
  });
});

test('a write whose answer is lost leaves a guard: it deletes exactly those bytes, and nothing else', async () => {
  await withFleet(1, async (fleet) => {
    const agent = fleet.agents[0];
    assert.ok(agent);
    const proxy = await lossyProxy(agent.url);
    try {
      await fleet.store.removeHost((await fleet.store.getHostByName('host0'))?.uuid ?? '');
      await addHost(fleet.deps, { name: 'lossy', url: proxy.url, expectKey: agent.publicKey });
      const r = roots(fleet, 0);
      const names = ['a', 'b', 'c'] as const;
      const vars = Object.fromEntries(names.map((vm) => [vm, join(r.NvRam, `${vm}_VARS.fd`)])) as Record<
        (typeof names)[number],
        string
      >;
      const content = (vm: string): Buffer => Buffer.from(`vars of ${vm}`);
      proxy.lose(true);
      for (const vm of names) {
        await addVm(fleet.deps, { name: vm, host: 'lossy', bootMode: 'UEFI', secureBoot: false });
        await assert.rejects(
          writeFile(fleet.deps, { vm, type: 'NvRam', path: vars[vm], state: fileState(content(vm)) }),
          (error) => isFlowError(error) && error.code === 'unavailable' && /outcome is unknown/.test(error.message),
        );
        assert.equal(readFileSync(vars[vm], 'utf8'), `vars of ${vm}`, 'the agent did write it');
      }
      proxy.lose(false);
      assert.deepEqual(
        (await fleet.store.listPendingDeletions()).map((p) => [p.path, p.expectSha256]),
        names.map((vm) => [vars[vm], sha256Of(content(vm))]),
        'none is in a row, each is guarded',
      );
      // c: the operator writes it again. Its bytes are already there, exactly: the repeat lands and records it.
      const again = await writeFile(fleet.deps, {
        vm: 'c',
        type: 'NvRam',
        path: vars.c,
        state: fileState(content('c')),
      });
      assert.equal(again.status, 'written');
      // b's path now holds other state (someone else wrote there since): its guard leaves it alone.
      writeFileSync(vars.b, 'not ours');
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.dropped, pass.stillPending], [1, 1, 0]);
      assert.equal(existsSync(vars.a), false, "a's untracked bytes are gone");
      assert.equal(readFileSync(vars.b, 'utf8'), 'not ours');
      assert.equal(readFileSync(vars.c, 'utf8'), 'vars of c', 'c is recorded and kept');
      assert.deepEqual(
        (await fleet.store.listFilesByHost((await fleet.store.getHostByName('lossy'))?.uuid ?? '')).map((f) => f.path),
        [vars.c],
      );
      assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    } finally {
      await proxy.close();
    }
  });
});

test('a state in use is never written or deleted: busy; a removal is refused up front unless forced', async () => {
  await withFleet(1, async (fleet) => {
    const r = roots(fleet, 0);
    const vm = await addVm(fleet.deps, { name: 'vm', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await addTpm(fleet.deps, 'vm', 'kms');
    const tpmDir = join(r.TpmState, vm.uuid);
    const vars = join(r.NvRam, 'vm_VARS.fd');
    await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path: tpmDir, state: tpmState('running') });
    await writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path: vars, state: fileState(Buffer.from('vars')) });
    // A running swtpm holds <uuid>/tpm2/.lock; a running QEMU holds its NVRAM file.
    const lockFile = join(tpmDir, 'tpm2', '.lock');
    writeFileSync(lockFile, '');
    const locks = [await holdLock(lockFile), await holdLock(vars)];
    try {
      await assert.rejects(
        writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path: tpmDir, state: tpmState('overwritten') }),
        (error) => isFlowError(error) && error.code === 'busy',
      );
      await assert.rejects(
        writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path: vars, state: fileState(Buffer.from('x')) }),
        (error) => isFlowError(error) && error.code === 'busy',
      );
      await assert.rejects(removeTpms(fleet.deps, ['vm']), (error) => isFlowError(error) && error.code === 'busy');
      assert.ok(await fleet.store.getTpmByVm(vm.uuid), 'refused up front: the TPM is still there');
      assert.deepEqual(await fleet.store.listUnfinishedOperations(), []);

      const forced = await removeTpms(fleet.deps, ['vm'], undefined, { force: true });
      assert.deepEqual(
        forced.pending.map((p) => [p.path, p.reason.split(':')[0]]).sort(),
        [
          [tpmDir, 'busy'],
          [vars, 'busy'],
        ].sort(),
      );
      assert.equal(forced.vms[0]?.binding, 'detaching');
      assert.equal(readFileSync(join(tpmDir, 'tpm2', 'tpm2-00.permall'), 'utf8'), 'running', 'untouched');
      assert.ok(existsSync(lockFile), 'the lock file of a running swtpm stays');
      assert.equal(readFileSync(vars, 'utf8'), 'vars');
      const stillBusy = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([stillBusy.confirmed, stillBusy.stillPending], [0, 2]);
    } finally {
      for (const lock of locks) await lock.release();
    }
    const pass = await retryPendingDeletions(fleet.deps, { all: true });
    assert.deepEqual([pass.confirmed, pass.stillPending], [2, 0]);
    assert.equal(existsSync(tpmDir), false, 'the directory went whole, its lock file included');
    assert.equal(existsSync(vars), false);
    assert.deepEqual(await fleet.store.listKeyBindings(), []);
  });
});
