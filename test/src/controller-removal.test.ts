// The removal of TPMs (DESIGN.md) with real agents and a real SQLite file: hosts up, a host down, the outbox
// drained when it returns, NVRAM rules, key bindings, at most one command per host (of ≤ 1,000 ops each), a stale
// deletion cancelled.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addHost,
  addTpm,
  addVm,
  fileState,
  removeTpms,
  retryPendingDeletions,
  writeFile,
  type Vm,
} from '@hostfiles/controller';
import { MAX_OPS } from '@hostfiles/shared';
import { plant, roots, withFleet, type Fleet } from './support/controller.js';
import { lossyProxy } from './support/lossy-proxy.js';

interface Placed {
  readonly vm: Vm;
  readonly tpmPaths: string[];
  readonly nvramPath: string | undefined;
}

/** A VM with a TPM on host `home`, its TPM state also left on `also` (where it lived before), NVRAM if UEFI. */
async function placeVm(
  fleet: Fleet,
  name: string,
  home: number,
  options: { uefi: boolean; secureBoot: boolean; also?: number },
): Promise<Placed> {
  const vm = await addVm(fleet.deps, {
    name,
    host: `host${home}`,
    bootMode: options.uefi ? 'UEFI' : 'Legacy',
    secureBoot: options.secureBoot,
  });
  await addTpm(fleet.deps, name, 'kms-1');
  const tpmPaths: string[] = [];
  for (const h of options.also === undefined ? [home] : [options.also, home]) {
    const path = join(fleet.agents[h]?.setup.roots.TpmState ?? '', vm.uuid, 'tpm2-00.permall');
    await writeFile(fleet.deps, {
      vm: name,
      host: `host${h}`,
      type: 'TpmState',
      path,
      state: fileState(Buffer.from(`tpm ${name} on ${h}`)),
    });
    tpmPaths.push(path);
  }
  let nvramPath: string | undefined;
  if (options.uefi) {
    nvramPath = join(fleet.agents[home]?.setup.roots.NvRam ?? '', `${vm.uuid}_VARS.fd`);
    await writeFile(fleet.deps, {
      vm: name,
      type: 'NvRam',
      path: nvramPath,
      state: fileState(Buffer.from(`vars ${name}`)),
    });
  }
  return { vm, tpmPaths, nvramPath };
}

test('all hosts up: every TPM file gone, NVRAM kept only under secure boot, bindings detached, one command per host', async () => {
  await withFleet(3, async (fleet) => {
    const plain = await placeVm(fleet, 'plain', 0, { uefi: true, secureBoot: false, also: 1 });
    const secure = await placeVm(fleet, 'secure', 1, { uefi: true, secureBoot: true });
    const legacy = await placeVm(fleet, 'legacy', 2, { uefi: false, secureBoot: false, also: 0 });
    const report = await removeTpms(fleet.deps, ['plain', 'secure', 'legacy']);

    assert.equal(report.commands, 3, 'one command per host');
    assert.deepEqual(report.pending, []);
    for (const placed of [plain, secure, legacy])
      for (const path of placed.tpmPaths) assert.equal(existsSync(path), false, path);
    assert.equal(existsSync(plain.nvramPath ?? ''), false, 'UEFI without secure boot: NVRAM no longer needed');
    assert.equal(readFileSync(secure.nvramPath ?? '', 'utf8'), 'vars secure', 'secure boot: NVRAM untouched');
    assert.deepEqual(
      report.vms.map((v) => [v.vmName, v.nvram, v.binding]),
      [
        ['plain', 'deleted', 'detached'],
        ['secure', 'kept: secure boot', 'detached'],
        ['legacy', 'none: legacy boot', 'detached'],
      ],
    );
    for (const placed of [plain, secure, legacy]) {
      assert.equal(await fleet.store.getTpmByVm(placed.vm.uuid), null);
      assert.deepEqual(
        (await fleet.store.listFilesByVm(placed.vm.uuid)).map((f) => f.type),
        placed === secure ? ['NvRam'] : [],
      );
    }
    assert.deepEqual(await fleet.store.listKeyBindings(), []);
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    const operation = await fleet.store.getOperation(report.operationId);
    assert.equal(operation?.state, 'done');
  });
});

test('a host down: its files wait in the outbox, the binding stays detaching, and drain when it returns', async () => {
  await withFleet(2, async (fleet) => {
    const vm = await placeVm(fleet, 'moved', 0, { uefi: true, secureBoot: false, also: 1 });
    await fleet.stop(1);
    const report = await removeTpms(fleet.deps, ['moved']);
    const [onDown, onUp] = [vm.tpmPaths[0] ?? '', vm.tpmPaths[1] ?? ''];
    assert.equal(existsSync(onUp), false);
    assert.equal(existsSync(onDown), true, 'the file on the down host is still there');
    assert.deepEqual(
      report.pending.map((p) => p.path),
      [onDown],
    );
    assert.match(report.pending[0]?.reason ?? '', /^unreachable/);
    assert.deepEqual(
      report.vms.map((v) => v.binding),
      ['detaching'],
    );
    assert.equal((await fleet.store.getHostByName('host1'))?.state, 'Disconnected');
    // Rows are purged all the same: the outbox is what remembers the file.
    assert.equal(await fleet.store.getTpmByVm(vm.vm.uuid), null);
    assert.equal((await fleet.store.listPendingDeletions())[0]?.tpmUuid, report.vms[0]?.tpmUuid);

    const whileDown = await retryPendingDeletions(fleet.deps);
    assert.deepEqual([whileDown.confirmed, whileDown.stillPending], [0, 1]);
    assert.equal((await fleet.store.listPendingDeletions())[0]?.attempts, 1);

    await fleet.restart(1);
    const drained = await retryPendingDeletions(fleet.deps);
    assert.deepEqual([drained.confirmed, drained.stillPending], [1, 0]);
    assert.deepEqual(drained.detached, [report.vms[0]?.tpmUuid]);
    assert.equal(existsSync(onDown), false);
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.deepEqual(await fleet.store.listKeyBindings(), []);
  });
});

test('a new write to a path with a pending deletion cancels it: the retry never deletes new state', async () => {
  await withFleet(1, async (fleet) => {
    const vm = await placeVm(fleet, 'again', 0, { uefi: false, secureBoot: false });
    const path = vm.tpmPaths[0] ?? '';
    await fleet.stop(0);
    const report = await removeTpms(fleet.deps, ['again']);
    assert.equal(report.pending.length, 1);
    await fleet.restart(0);
    await addTpm(fleet.deps, 'again', 'kms-2');
    await writeFile(fleet.deps, { vm: 'again', type: 'TpmState', path, state: fileState(Buffer.from('new state')) });
    assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'the write cancelled the deletion');
    const pass = await retryPendingDeletions(fleet.deps, { all: true });
    assert.equal(pass.attempted, 0);
    assert.equal(readFileSync(path, 'utf8'), 'new state');
    // The old TPM's state is gone (overwritten) and nothing of it is pending: its binding is detached.
    const [removed] = report.vms;
    assert.equal(removed?.binding, 'detaching');
    assert.equal(await fleet.store.getKeyBinding(removed.tpmUuid), null);
  });
});

test('a VM without a TPM, or an unknown VM, is refused before anything is touched', async () => {
  await withFleet(1, async (fleet) => {
    const vm = await placeVm(fleet, 'has', 0, { uefi: false, secureBoot: false });
    await addVm(fleet.deps, { name: 'bare', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await assert.rejects(removeTpms(fleet.deps, ['has', 'bare']), /VM bare has no TPM/);
    await assert.rejects(removeTpms(fleet.deps, ['nope']), /no VM nope/);
    assert.equal(existsSync(vm.tpmPaths[0] ?? ''), true);
    assert.notEqual(await fleet.store.getTpmByVm(vm.vm.uuid), null);
  });
});

/** Past the 1,000 ops one command may carry, by one. */
const MANY = MAX_OPS + 1;
/** A stat or delete of 1,000 states on a loaded machine can take seconds: no attempt may time out here. */
const PATIENT = { timeoutMs: 60_000 };

/** Host0 added again as `counted`, behind a proxy that tells each command it passed (the agent's own view). */
async function countedHost(fleet: Fleet): Promise<{ uuid: string; proxy: Awaited<ReturnType<typeof lossyProxy>> }> {
  const agent = fleet.agents[0];
  const host0 = await fleet.store.getHostByName('host0');
  assert.ok(agent !== undefined && host0 !== null);
  const proxy = await lossyProxy(agent.url);
  await fleet.store.removeHost(host0.uuid);
  const host = await addHost(fleet.deps, { name: 'counted', url: proxy.url, expectKey: agent.publicKey });
  return { uuid: host.uuid, proxy };
}

/** `count` Legacy VMs with a TPM whose state is on agent 0's disk and recorded on `hostUuid`: one transaction. */
async function manyVms(fleet: Fleet, hostUuid: string, count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `many-${i}`);
  await fleet.store.transaction(async (tx) => {
    for (const name of names) {
      const uuid = randomUUID();
      await tx.addVm({ uuid, name, hostUuid, bootMode: 'Legacy', secureBoot: false });
      await tx.addTpm({ uuid: randomUUID(), vmUuid: uuid, keyProvider: 'kms-1' });
      const path = join(roots(fleet, 0).TpmState, uuid);
      plant(join(path, 'tpm2', 'tpm2-00.permall'), Buffer.from(name));
      const row = { uuid: randomUUID(), vmUuid: uuid, hostUuid, type: 'TpmState' as const, path, kind: 'dir' as const };
      await tx.upsertFile({ ...row, sha256: '0'.repeat(64), size: name.length, lastSyncAt: 0 });
    }
  });
  return names;
}

test('1,001 states on one host: the busy probe and the deletes each take two commands, of 1,000 and 1', async () => {
  await withFleet(
    1,
    async (fleet) => {
      const { proxy } = await countedHost(fleet);
      try {
        const names = await manyVms(fleet, (await fleet.store.getHostByName('counted'))?.uuid ?? '', MANY);
        const report = await removeTpms(fleet.deps, names);
        assert.deepEqual(
          proxy.commands(),
          [
            { kind: 'files.busy', items: MAX_OPS },
            { kind: 'files.busy', items: 1 },
            { kind: 'files.apply', items: MAX_OPS },
            { kind: 'files.apply', items: 1 },
          ],
          'what the agent was sent',
        );
        assert.equal(report.commands, 2);
        assert.equal(report.hosts[0]?.files.filter((f) => f.status === 'deleted').length, MANY);
        assert.deepEqual(readdirSync(roots(fleet, 0).TpmState), [], 'every state gone from the disk');
        assert.deepEqual(report.pending, []);
        assert.deepEqual(await fleet.store.listKeyBindings(), []);
      } finally {
        await proxy.close();
      }
    },
    PATIENT,
  );
});

test('1,001 deletions pending on one host: the retry pass sends them in two commands, of 1,000 and 1', async () => {
  await withFleet(
    1,
    async (fleet) => {
      const { uuid, proxy } = await countedHost(fleet);
      try {
        const paths = Array.from({ length: MANY }, (_, i) => join(roots(fleet, 0).NvRam, `vm-${i}_VARS.fd`));
        for (const path of paths) plant(path, Buffer.from('vars'));
        const vmUuid = randomUUID(); // a VM long gone: outbox rows outlive their VMs
        await fleet.store.addPendingDeletions(
          paths.map((path) => ({
            hostUuid: uuid,
            type: 'NvRam',
            path,
            vmUuid,
            tpmUuid: null,
            nextAttemptAt: 0,
            lastError: null,
          })),
        );
        const pass = await retryPendingDeletions(fleet.deps);
        assert.deepEqual(proxy.commands(), [
          { kind: 'files.apply', items: MAX_OPS },
          { kind: 'files.apply', items: 1 },
        ]);
        assert.deepEqual(
          [pass.attempted, pass.confirmed, pass.stillPending, pass.hosts[0]?.commands],
          [MANY, MANY, 0, 2],
        );
        assert.deepEqual(readdirSync(roots(fleet, 0).NvRam), []);
        assert.deepEqual(await fleet.store.listPendingDeletions(), []);
      } finally {
        await proxy.close();
      }
    },
    PATIENT,
  );
});
