// A restore over a removed TPM's pending deletion, on real vTPMs: the write cancels that deletion and settles the old
// TPM's key binding in the same transaction — detached when that was the last of its state anywhere, still
// detaching while a copy on a host that is down waits — and swtpm started on the path runs the restored TPM.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addTpm, addVm, adoptVm, moveVm, removeTpms, restoreVm, retryPendingDeletions } from '@hostfiles/controller';
import { withFleet, type Fleet } from './support/controller.js';
import { skipWithout } from './support/real-tools.js';
import { createTpmState, readEkPublic, startSwtpm, swtpmUnavailable, SWTPM_USER } from './support/swtpm.js';

const HOSTS = 3;
const ownership = { TpmState: { owner: SWTPM_USER, group: SWTPM_USER } };

/** libvirt's `<TpmState>/<uuid>` on host i; the way down is made traversable for swtpm's user, as libvirt's is. */
function tpmDir(fleet: Fleet, i: number, uuid: string): string {
  const setup = fleet.agents[i]?.setup;
  assert.ok(setup);
  for (const dir of [setup.dir, setup.roots.TpmState]) chmodSync(dir, 0o711);
  return join(setup.roots.TpmState, uuid);
}

/** The RSA EK of the TPM whose state is `<dir>/tpm2`: which TPM a state is, read by swtpm and tpm2-tools. */
async function ekOf(dir: string): Promise<string> {
  const swtpm = await startSwtpm(join(dir, 'tpm2'));
  try {
    return await readEkPublic(swtpm.tcti);
  } finally {
    await swtpm.stop();
  }
}

async function tpmUuidOf(fleet: Fleet, vmUuid: string): Promise<string> {
  const tpm = await fleet.store.getTpmByVm(vmUuid);
  assert.ok(tpm !== null);
  return tpm.uuid;
}

interface Removed {
  readonly uuid: string;
  /** the removed TPM, its binding left detaching */
  readonly oldTpm: string;
  readonly oldEk: string;
}

/**
 * VM `vtpm` (Legacy: TPM state only) gets a real TPM on host0, adopted there and, with `copyOnHost2`, restored onto
 * host2 as well; its TPM is then removed while those hosts are down, so each copy's deletion stays pending.
 */
async function removeWhileDown(fleet: Fleet, copyOnHost2: boolean): Promise<Removed> {
  const uuid = randomUUID();
  await addVm(fleet.deps, { name: 'vtpm', host: 'host0', bootMode: 'Legacy', secureBoot: false, uuid });
  await addTpm(fleet.deps, 'vtpm', 'kms-1');
  const oldTpm = await tpmUuidOf(fleet, uuid);
  const dir0 = tpmDir(fleet, 0, uuid);
  await createTpmState(join(dir0, 'tpm2'));
  const oldEk = await ekOf(dir0);
  await adoptVm(fleet.deps, 'vtpm', { backup: copyOnHost2 });
  const down = [0];
  if (copyOnHost2) {
    tpmDir(fleet, 2, uuid);
    const copied = await restoreVm(fleet.deps, 'vtpm', { host: 'host2' });
    assert.deepEqual(
      copied.files.map((f) => f.status),
      ['written'],
    );
    // The copy's write cancelled its own guard, a row of this very TPM: a TPM still in use stays bound.
    assert.equal((await fleet.store.getKeyBinding(oldTpm))?.state, 'attached');
    down.push(2);
  }
  for (const i of down) await fleet.stop(i);
  const removal = await removeTpms(fleet.deps, ['vtpm']);
  assert.equal(removal.vms[0]?.binding, 'detaching');
  assert.equal(removal.pending.length, down.length, 'every copy waits for its host');
  assert.equal((await fleet.store.getKeyBinding(oldTpm))?.state, 'detaching');
  return { uuid, oldTpm, oldEk };
}

/**
 * The VM, moved to host1, gets a new TPM there (libvirt's new state, adopted and backed up); host0 comes back, the VM
 * moves back to it and is restored at libvirt's path, the very one the old TPM's deletion is pending at.
 */
async function restoreOverPending(fleet: Fleet, removed: Removed): Promise<{ newTpm: string; newEk: string }> {
  await moveVm(fleet.deps, 'vtpm', 'host1');
  await addTpm(fleet.deps, 'vtpm', 'kms-2');
  const newTpm = await tpmUuidOf(fleet, removed.uuid);
  const dir1 = tpmDir(fleet, 1, removed.uuid);
  await createTpmState(join(dir1, 'tpm2'));
  const newEk = await ekOf(dir1);
  assert.notEqual(newEk, removed.oldEk, 'two TPMs, two endorsement keys');
  await adoptVm(fleet.deps, 'vtpm', { backup: true });

  await fleet.restart(0);
  await moveVm(fleet.deps, 'vtpm', 'host0');
  const restored = await restoreVm(fleet.deps, 'vtpm');
  assert.deepEqual(
    restored.files.map((f) => [f.type, f.path, f.status]),
    [['TpmState', tpmDir(fleet, 0, removed.uuid), 'written']],
  );
  return { newTpm, newEk };
}

/** Every pending deletion as [host name, path, TPM]. */
async function pendingRows(fleet: Fleet): Promise<[string, string, string | null][]> {
  const names = new Map((await fleet.store.listHosts()).map((h) => [h.uuid, h.name]));
  return (await fleet.store.listPendingDeletions()).map((p) => [
    names.get(p.hostUuid) ?? p.hostUuid,
    p.path,
    p.tpmUuid,
  ]);
}

/** Every key binding's state by TPM (a Map: compared whatever the order of the TPMs' uuids). */
async function bindings(fleet: Fleet): Promise<Map<string, string>> {
  return new Map((await fleet.store.listKeyBindings()).map((b) => [b.tpmUuid, b.state]));
}

test('a restore over the last pending copy of a removed real TPM detaches its binding; the new TPM runs there', async (t) => {
  if (skipWithout(t, swtpmUnavailable())) return;
  await withFleet(
    HOSTS,
    async (fleet) => {
      const removed = await removeWhileDown(fleet, false);
      const { newTpm, newEk } = await restoreOverPending(fleet, removed);
      const dir0 = tpmDir(fleet, 0, removed.uuid);

      assert.equal(await fleet.store.getKeyBinding(removed.oldTpm), null, 'the old binding detached by the restore');
      assert.deepEqual(await bindings(fleet), new Map([[newTpm, 'attached']]));
      assert.deepEqual(await pendingRows(fleet), [], 'the deletion cancelled, no guard left behind');
      assert.equal(await ekOf(dir0), newEk, 'swtpm on host0 runs the restored TPM, not the removed one');

      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.attempted, pass.detached], [0, []]);
      assert.equal(await ekOf(dir0), newEk);
    },
    { agentConfig: { ownership } },
  );
});

test('a restore over one of two pending copies of a removed real TPM keeps it detaching until the other goes', async (t) => {
  if (skipWithout(t, swtpmUnavailable())) return;
  await withFleet(
    HOSTS,
    async (fleet) => {
      const removed = await removeWhileDown(fleet, true);
      const { newTpm, newEk } = await restoreOverPending(fleet, removed);
      const [dir0, dir2] = [tpmDir(fleet, 0, removed.uuid), tpmDir(fleet, 2, removed.uuid)];

      // host2 is still down: its copy of the old TPM remains, so its key must stay bound.
      assert.deepEqual(
        await bindings(fleet),
        new Map([
          [newTpm, 'attached'],
          [removed.oldTpm, 'detaching'],
        ]),
      );
      assert.deepEqual(await pendingRows(fleet), [['host2', dir2, removed.oldTpm]], "only host2's copy is pending");
      assert.equal(await ekOf(dir0), newEk, 'swtpm on host0 runs the restored TPM, not the removed one');
      assert.equal(await ekOf(dir2), removed.oldEk, "host2's copy is the old TPM, not yet deleted");

      await fleet.restart(2);
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.stillPending, pass.detached], [1, 0, [removed.oldTpm]]);
      assert.equal(existsSync(dir2), false);
      assert.deepEqual(await bindings(fleet), new Map([[newTpm, 'attached']]));
      assert.deepEqual(await pendingRows(fleet), []);
      assert.equal(await ekOf(dir0), newEk, 'the retry left the restored TPM alone');
    },
    { agentConfig: { ownership } },
  );
});
