// The guards and the key binding, against a real agent and a scripted one: a conditional deletion never lifts the
// "nothing there" check; an io_error is an unknown outcome, never "nothing landed"; a guard of a TPM's state holds
// its key binding back through a removal; adopt never undoes another's deletion.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  addHost,
  addTpm,
  addVm,
  adoptVm,
  dirState,
  fileState,
  GUARD_DELAY_MS,
  isFlowError,
  reconcileHost,
  removeTpms,
  retryPendingDeletions,
  writeFile,
  type State,
} from '@hostfiles/controller';
import { sha256Of } from '@hostfiles/shared';
import { withFleet, type Fleet, roots } from './support/controller.js';
import { holdLock } from './support/locks.js';
import { capturingProxy, lossyProxy } from './support/lossy-proxy.js';
import { scriptedAgent } from './support/scripted-agent.js';

const hostUuid = async (fleet: Fleet, name: string): Promise<string> =>
  (await fleet.store.getHostByName(name))?.uuid ?? '';

test('a conditional deletion pending at a path does not lift the check that nothing unknown is there', async () => {
  await withFleet(1, async (fleet) => {
    const path = join(roots(fleet, 0).NvRam, 'vm_VARS.fd');
    await addVm(fleet.deps, { name: 'vm', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    // A guard left by a write whose answer was lost, while libvirt's NVRAM is what is there (the write was refused).
    writeFileSync(path, "libvirt's NVRAM");
    const h0 = await hostUuid(fleet, 'host0');
    await fleet.store.addPendingDeletions([
      {
        hostUuid: h0,
        type: 'NvRam',
        path,
        vmUuid: 'x',
        tpmUuid: null,
        nextAttemptAt: 0,
        lastError: 'guard',
        expectSha256: sha256Of(Buffer.from('from backup')),
      },
    ]);
    await assert.rejects(
      writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path, state: fileState(Buffer.from('from backup')) }),
      (error) => isFlowError(error) && error.code === 'conflict' && /does not know/.test(error.message),
    );
    assert.equal(readFileSync(path, 'utf8'), "libvirt's NVRAM");
  });
});

test('an op that answers io_error may have changed the disk: unknown, its guard and owned path kept', async () => {
  await withFleet(0, async (fleet) => {
    const scripted = await scriptedAgent();
    try {
      await addHost(fleet.deps, { name: 'scripted', url: scripted.url, expectKey: scripted.publicKey });
      await addVm(fleet.deps, { name: 'vm', host: 'scripted', bootMode: 'UEFI', secureBoot: false });
      const state = fileState(Buffer.from('vars'));
      scripted.answer(() => ({ status: 'failed', error: { code: 'io_error', message: 'EIO (fsync)' } }));
      await assert.rejects(
        writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path: '/r/nvram/a_VARS.fd', state }),
        (error) => isFlowError(error) && error.code === 'unavailable',
      );
      assert.deepEqual(
        (await fleet.store.listPendingDeletions()).map((p) => [p.path, p.expectSha256]),
        [['/r/nvram/a_VARS.fd', state.sha256]],
      );
      assert.deepEqual(
        (await fleet.store.listOwnedPaths(scripted.hostUuid)).map((o) => o.path),
        ['/r/nvram/a_VARS.fd'],
      );
      // A refusal made before anything changed is "nothing landed": no guard, the path not taken.
      scripted.answer(() => ({ status: 'failed', error: { code: 'exists', message: 'the target exists' } }));
      await assert.rejects(
        writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path: '/r/nvram/b_VARS.fd', state }),
        (error) => isFlowError(error) && error.code === 'conflict',
      );
      assert.equal((await fleet.store.listPendingDeletions({ path: '/r/nvram/b_VARS.fd' })).length, 0);
      assert.ok(!(await fleet.store.listOwnedPaths(scripted.hostUuid)).some((o) => o.path === '/r/nvram/b_VARS.fd'));
    } finally {
      await scripted.close();
    }
  });
});

test("a guard of a TPM's state holds its key binding back through a removal, until it ran", async () => {
  await withFleet(1, async (fleet) => {
    const agent = fleet.agents[0];
    assert.ok(agent);
    const proxy = await lossyProxy(agent.url);
    try {
      await fleet.store.removeHost(await hostUuid(fleet, 'host0'));
      await addHost(fleet.deps, { name: 'lossy', url: proxy.url, expectKey: agent.publicKey });
      const vm = await addVm(fleet.deps, { name: 'vm', host: 'lossy', bootMode: 'Legacy', secureBoot: false });
      const { tpm } = await addTpm(fleet.deps, 'vm', 'kms');
      const dir = join(roots(fleet, 0).TpmState, vm.uuid);
      proxy.lose(true);
      const state = dirState([{ path: 'tpm2/tpm2-00.permall', content: Buffer.from('restored') }]);
      await assert.rejects(writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path: dir, state }));
      proxy.lose(false);
      assert.ok(existsSync(dir), 'the state landed, unrecorded');
      assert.deepEqual(
        (await fleet.store.listPendingDeletions()).map((p) => p.tpmUuid),
        [tpm.uuid],
        'the guard is state of the TPM',
      );
      const removal = await removeTpms(fleet.deps, ['vm']);
      assert.equal(removal.vms[0]?.binding, 'detaching', 'never detached while its state may be on a host');
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.detached], [1, [tpm.uuid]]);
      assert.equal(existsSync(dir), false);
      assert.deepEqual(await fleet.store.listKeyBindings(), []);
    } finally {
      await proxy.close();
    }
  });
});

test("adopt never undoes a deletion that was decided: a removed TPM's state stays pending", async () => {
  await withFleet(1, async (fleet) => {
    const r = roots(fleet, 0);
    const vm = await addVm(fleet.deps, { name: 'vm', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await addTpm(fleet.deps, 'vm', 'kms');
    const dir = join(r.TpmState, vm.uuid);
    const state = dirState([{ path: 'tpm2/tpm2-00.permall', content: Buffer.from('running') }]);
    await writeFile(fleet.deps, { vm: 'vm', type: 'TpmState', path: dir, state });
    const lockFile = join(dir, 'tpm2', '.lock');
    mkdirSync(dirname(lockFile), { recursive: true });
    writeFileSync(lockFile, '');
    const lock = await holdLock(lockFile);
    try {
      const forced = await removeTpms(fleet.deps, ['vm'], undefined, { force: true });
      assert.equal(forced.pending.length, 1, 'busy: pending');
      await assert.rejects(
        adoptVm(fleet.deps, 'vm', { paths: { TpmState: dir } }),
        (error) => isFlowError(error) && error.code === 'conflict' && /removed TPM/.test(error.message),
      );
      assert.equal((await fleet.store.listPendingDeletions()).length, 1, 'still pending');
      assert.deepEqual(await fleet.store.listFilesByVm(vm.uuid), []);
    } finally {
      await lock.release();
    }
  });
});

/**
 * host0 reached only through `url` (a proxy in front of its agent), added again as `name`, with VM `vm` (UEFI) on it:
 * the path of its NVRAM there, and a state to write.
 */
async function vmBehind(fleet: Fleet, url: string, name: string): Promise<{ path: string; state: State }> {
  const agent = fleet.agents[0];
  assert.ok(agent);
  await fleet.store.removeHost(await hostUuid(fleet, 'host0'));
  await addHost(fleet.deps, { name, url, expectKey: agent.publicKey });
  await addVm(fleet.deps, { name: 'vm', host: name, bootMode: 'UEFI', secureBoot: false });
  return { path: join(roots(fleet, 0).NvRam, 'vm_VARS.fd'), state: fileState(Buffer.from('vars')) };
}

test('a write whose every attempt was dropped, its bytes delivered later: never an untracked file', async () => {
  await withFleet(1, async (fleet) => {
    const agent = fleet.agents[0];
    assert.ok(agent);
    const proxy = await capturingProxy(agent.url);
    try {
      const { path, state } = await vmBehind(fleet, proxy.url, 'far');
      await assert.rejects(
        writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path, state }),
        (error) => isFlowError(error) && error.code === 'unavailable',
      );
      assert.ok(proxy.captured() > 0, 'every attempt was captured on the way');
      assert.equal(existsSync(path), false);
      // Remembered before anything lands: a guard with the very bytes sent, due only once no agent can accept them.
      const [guard] = await fleet.store.listPendingDeletions();
      assert.deepEqual([guard?.path, guard?.expectSha256], [path, state.sha256]);
      assert.ok((guard?.nextAttemptAt ?? 0) >= Date.now() + GUARD_DELAY_MS - 60_000);
      // The captured command arrives while it is still valid: the agent applies it.
      assert.ok((await proxy.deliver()).includes(200));
      assert.equal(readFileSync(path, 'utf8'), 'vars', 'the delayed bytes landed');
      // Not untracked meanwhile: reconcile names the path as hostfiles' own, pending its guard, never as unknown.
      const report = await reconcileHost(fleet.deps, 'far');
      assert.deepEqual(
        [report.pending, report.unknown.length, report.orphans.length],
        [1, 0, 0],
        'the landed state is pending its guard, never unknown',
      );
      proxy.heal();
      // Nothing runs before it is due; once due, the guard removes exactly those bytes: known absent.
      assert.equal((await retryPendingDeletions(fleet.deps)).attempted, 0);
      const later = { ...fleet.deps, now: () => Date.now() + GUARD_DELAY_MS + 1000 };
      const pass = await retryPendingDeletions(later);
      assert.equal(pass.confirmed, 1);
      assert.equal(existsSync(path), false);
      assert.deepEqual(await fleet.store.listPendingDeletions(), []);
      assert.deepEqual(await fleet.store.listOwnedPaths(await hostUuid(fleet, 'far')), []);
    } finally {
      await proxy.close();
    }
  });
});

test('a refusal over plain HTTP is not believed: a write a man in the middle let through and answered 400 keeps its guard', async () => {
  await withFleet(1, async (fleet) => {
    const agent = fleet.agents[0];
    assert.ok(agent);
    const proxy = await lossyProxy(agent.url);
    try {
      const { path, state } = await vmBehind(fleet, proxy.url, 'plain');
      proxy.forgeRefusals(true);
      await assert.rejects(writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path, state }));
      proxy.forgeRefusals(false);
      assert.equal(readFileSync(path, 'utf8'), 'vars', 'the write landed, its answer replaced on the way');
      const [guard] = await fleet.store.listPendingDeletions();
      assert.deepEqual([guard?.path, guard?.expectSha256], [path, state.sha256], 'unknown: the guard is kept');
      const [operation] = await fleet.store.listOperations({ kind: 'file.write', limit: 1 });
      assert.match(JSON.stringify(operation?.report ?? {}), /not believed over a path without a pinned certificate/);
      const report = await reconcileHost(fleet.deps, 'plain');
      assert.deepEqual(
        [report.pending, report.unknown.length],
        [1, 0],
        'the landed state is pending its guard, never unknown (untracked)',
      );
      const later = { ...fleet.deps, now: () => Date.now() + GUARD_DELAY_MS + 1000 };
      assert.equal((await retryPendingDeletions(later)).confirmed, 1);
      assert.equal(existsSync(path), false, 'the guard removed exactly those bytes');
    } finally {
      await proxy.close();
    }
  });
});

test('a refusal that answers a retry says nothing of the attempt before it: unknown, its guard and owned path kept', async () => {
  await withFleet(
    0,
    async (fleet) => {
      // The first attempt fails in a way that may have applied it (an internal error); its retry, the same bytes, is
      // refused (here: expired, as a retry that reaches the agent past the command's lifetime is).
      const agent = await scriptedAgent({
        applyRefusals: [
          { status: 500, code: 'internal' },
          { status: 401, code: 'expired' },
        ],
      });
      try {
        await addHost(fleet.deps, { name: 'h', url: agent.url, expectKey: agent.publicKey });
        await addVm(fleet.deps, { name: 'vm', host: 'h', bootMode: 'UEFI', secureBoot: false });
        const path = '/r/nvram/vm_VARS.fd';
        const state = fileState(Buffer.from('vars'));
        await assert.rejects(writeFile(fleet.deps, { vm: 'vm', type: 'NvRam', path, state }));
        assert.deepEqual(agent.received, ['files.apply', 'files.apply'], 'one retry, then the refusal');
        const [guard] = await fleet.store.listPendingDeletions();
        assert.deepEqual([guard?.path, guard?.expectSha256], [path, state.sha256], 'the guard is kept');
        assert.deepEqual(
          (await fleet.store.listOwnedPaths(agent.hostUuid)).map((owned) => owned.path),
          [path],
          "the path stays hostfiles' own",
        );
        const [operation] = await fleet.store.listOperations({ kind: 'file.write', limit: 1 });
        assert.match(JSON.stringify(operation?.report ?? {}), /unknown/);
      } finally {
        await agent.close();
      }
    },
    { retries: 1 },
  );
});

test('an agent older than files.busy (404 not_found) is probed with files.stat, and the removal goes on', async () => {
  await withFleet(0, async (fleet) => {
    const old = await scriptedAgent({ kinds: ['files.apply', 'files.stat'] });
    try {
      await addHost(fleet.deps, { name: 'old', url: old.url, expectKey: old.publicKey });
      const vm = await addVm(fleet.deps, { name: 'vm', host: 'old', bootMode: 'Legacy', secureBoot: false });
      await addTpm(fleet.deps, 'vm', 'kms');
      await fleet.store.upsertFile({
        uuid: randomUUID(),
        vmUuid: vm.uuid,
        hostUuid: old.hostUuid,
        type: 'TpmState',
        path: `/r/tpm/${vm.uuid}`,
        kind: 'dir',
        sha256: '0'.repeat(64),
        size: 1,
        lastSyncAt: 0,
      });
      old.answer(() => ({ status: 'deleted' }));
      const report = await removeTpms(fleet.deps, ['vm']);
      assert.deepEqual(report.pending, []);
      assert.deepEqual(old.received, ['files.busy', 'files.stat', 'files.apply']);
      assert.equal(await fleet.store.getTpmByVm(vm.uuid), null);
    } finally {
      await old.close();
    }
  });
});
