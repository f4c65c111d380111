// Flows run at once on one (host, path), with real agents and a real SQLite file: the end state must be one that some
// serial order of the same flows gives. Each test holds the first flow at a precise point (its command held on the
// way to the agent, or its answer held on the way back), starts the second, and lets the first go only once the
// second has either run to its end (the flows were not serialized) or been queued behind the first (they were).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addVm,
  destroyVm,
  fileState,
  reconcileHost,
  restoreVm,
  retryPendingDeletions,
  writeFile,
  ORPHAN_VM_UUID,
  type FlowDeps,
  type RetryReport,
  type Vm,
} from '@hostfiles/controller';
import { newFileBackup, plant, roots, withFleet, type Fleet } from './support/controller.js';
import { appliesOp, finishedOrQueued, gatedAgents, watchedQueue, type Gate } from './support/gates.js';

/** The fleet's flows, with the gated agent client and a watched queue of their own. */
function gatedDeps(
  fleet: Fleet,
  match: Parameters<typeof gatedAgents>[1],
  when: Parameters<typeof gatedAgents>[2],
): { deps: FlowDeps; gate: Gate; queued: (id: string) => Promise<void> } {
  const { agents, gate } = gatedAgents(fleet.deps.agents, match, when);
  const { queue, queued } = watchedQueue();
  return { deps: { ...fleet.deps, agents, queue }, gate, queued };
}

const hostUuid = async (fleet: Fleet, name: string): Promise<string> =>
  (await fleet.store.getHostByName(name))?.uuid ?? assert.fail(`no host ${name}`);

/** The firmware's template: every fresh NVRAM store holds these bytes, so two of them have one digest. */
const TEMPLATE = Buffer.from('OVMF_VARS template: every fresh store holds these bytes');

/**
 * libvirt made a VM's NVRAM from the template, then the VM went away: state hostfiles never knew, scheduled by
 * reconcile --apply --include-unknown under the nil VM uuid, conditional on the template's digest. A VM of that name
 * is then added, to be given the same template bytes at the same path.
 */
async function unknownTemplateScheduled(fleet: Fleet, name: string): Promise<{ path: string; vm: Vm }> {
  const path = join(roots(fleet, 0).NvRam, `${name}_VARS.fd`);
  plant(path, TEMPLATE);
  const reconciled = await reconcileHost(fleet.deps, 'host0', { apply: true, includeUnknown: true });
  assert.deepEqual(reconciled.scheduled, [path]);
  const [row] = await fleet.store.listPendingDeletions();
  assert.deepEqual([row?.vmUuid, row?.expectSha256], [ORPHAN_VM_UUID, fileState(TEMPLATE).sha256]);
  const vm = await addVm(fleet.deps, { name, host: 'host0', bootMode: 'UEFI', secureBoot: false });
  return { path, vm };
}

/**
 * The retry decides to delete (the row is pending) and its command is on its way when `place` starts writing the
 * same template bytes at that path: the only state a conditional deletion of them could still remove. Answers what
 * each ended with.
 */
async function placeWhileRetrying<T>(
  fleet: Fleet,
  vm: Vm,
  place: (deps: FlowDeps) => Promise<T>,
): Promise<{ pass: RetryReport; placed: T }> {
  const { deps, gate, queued } = gatedDeps(fleet, appliesOp('delete'), 'before');
  const retry = retryPendingDeletions(deps, { all: true });
  await gate.reached;
  const placing = place(deps);
  await finishedOrQueued(placing, queued(vm.uuid));
  gate.open();
  const [pass, placed] = await Promise.all([retry, placing]);
  return { pass, placed };
}

/**
 * The end state either serial order gives: the unknown state deleted, the VM's written at its path and recorded,
 * nothing pending.
 */
async function assertPlacedAndSettled(fleet: Fleet, vm: Vm, path: string, pass: RetryReport): Promise<void> {
  assert.deepEqual([pass.attempted, pass.confirmed, pass.stillPending], [1, 1, 0]);
  assert.equal(existsSync(path), true, 'the state just written is still on disk');
  assert.equal(Buffer.compare(readFileSync(path), TEMPLATE), 0);
  assert.deepEqual(
    (await fleet.store.listFilesByVm(vm.uuid)).map((f) => [f.hostUuid, f.path, f.sha256]),
    [[await hostUuid(fleet, 'host0'), path, fileState(TEMPLATE).sha256]],
  );
  assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'the deletion is settled, the write left no guard');
  const after = await reconcileHost(fleet.deps, 'host0');
  assert.deepEqual([after.missing, after.unknown, after.orphans, after.pending], [[], [], [], 0]);
}

test('a write and a retry on one path at once: the retry never deletes the state just written', async () => {
  await withFleet(1, async (fleet) => {
    const { path, vm } = await unknownTemplateScheduled(fleet, 'fresh');
    const { pass, placed } = await placeWhileRetrying(fleet, vm, (deps) =>
      writeFile(deps, { vm: 'fresh', type: 'NvRam', path, state: fileState(TEMPLATE) }),
    );
    assert.equal(placed.status, 'written');
    await assertPlacedAndSettled(fleet, vm, path, pass);
  });
});

test('a restore and a retry on one path at once: the retry never deletes the state just restored', async () => {
  await withFleet(1, async (fleet) => {
    const { path, vm } = await unknownTemplateScheduled(fleet, 'fresh');
    // Its backup is the template too (it never booted), restored to libvirt's path below the host's NVRAM root.
    await fleet.store.recordGeneration(newFileBackup(vm.uuid, 'NvRam', TEMPLATE));
    const { pass, placed } = await placeWhileRetrying(fleet, vm, (deps) => restoreVm(deps, 'fresh'));
    assert.deepEqual(
      placed.files.map((f) => [f.path, f.status]),
      [[path, 'written']],
    );
    await assertPlacedAndSettled(fleet, vm, path, pass);
  });
});

test('a destroy and a reconcile --apply on one path at once: the destroyed state is never scheduled as unknown', async () => {
  await withFleet(1, async (fleet) => {
    const path = join(roots(fleet, 0).NvRam, 'gone_VARS.fd');
    const vm = await addVm(fleet.deps, { name: 'gone', host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await writeFile(fleet.deps, { vm: 'gone', type: 'NvRam', path, state: fileState(TEMPLATE) });

    // The reconcile has listed the host (the VM's NVRAM is there) and not yet compared when the destroy starts.
    const { deps, gate, queued } = gatedDeps(fleet, (kind) => kind === 'files.list', 'after');
    const reconcile = reconcileHost(deps, 'host0', { apply: true, includeUnknown: true });
    await gate.reached;
    const destroy = destroyVm(deps, 'gone');
    await finishedOrQueued(destroy, queued(vm.uuid));
    gate.open();
    const [report, destroyed] = await Promise.all([reconcile, destroy]);

    // Serially: reconcile first finds the VM's recorded state (nothing to schedule), or finds nothing once destroyed.
    assert.deepEqual([report.unknown, report.orphans, report.scheduled], [[], [], []]);
    assert.deepEqual(destroyed.pending, []);
    assert.equal(existsSync(path), false);
    assert.equal(await fleet.store.getVm(vm.uuid), null);
    assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'nothing left in the outbox for a state long gone');
    // libvirt defines a VM of that name again from the same template: nothing hostfiles scheduled may delete it.
    plant(path, TEMPLATE);
    assert.equal((await retryPendingDeletions(fleet.deps, { all: true })).attempted, 0);
    assert.equal(Buffer.compare(readFileSync(path), TEMPLATE), 0);
  });
});
