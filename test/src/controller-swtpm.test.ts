// The whole mission on a real vTPM: swtpm_setup makes libvirt's state as the swtpm user; hostfiles adopts it, backs
// it up, restores it onto the host the VM moved to, and swtpm started there is the same TPM (same EK, same NV data,
// read with tpm2-tools). While swtpm runs, nothing of its state is written or deleted and every refusal says why;
// once it stops, the pending removal completes and no directory is left on any host.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  adoptVm,
  dirState,
  isFlowError,
  moveVm,
  reconcileHost,
  removeTpms,
  restoreVm,
  retryPendingDeletions,
  writeFile,
} from '@hostfiles/controller';
import { withFleet } from './support/controller.js';
import { skipWithout } from './support/real-tools.js';
import {
  idsOf,
  nvRead,
  nvWrite,
  NV_INDEX,
  readEkPublic,
  startSwtpm,
  swtpmUnavailable,
  SWTPM_FLEET,
  SWTPM_USER,
  vtpmOnHost0,
} from './support/swtpm.js';

/** Every entry below `dir` with its bytes (or kind): "untouched" means byte for byte, the lock included. */
function snapshot(dir: string, prefix = ''): Record<string, string> {
  const seen: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) Object.assign(seen, snapshot(path, `${prefix}${name}/`));
    else seen[`${prefix}${name}`] = `${stats.ino}:${readFileSync(path).toString('hex')}`;
  }
  return seen;
}

test('a real vTPM adopted, backed up, moved and restored is the same TPM; a running one is never touched', async (t) => {
  if (skipWithout(t, swtpmUnavailable())) return;
  await withFleet(
    2,
    async (fleet) => {
      const { uuid, state0, r0, r1 } = await vtpmOnHost0(fleet);
      const nvData = randomBytes(32);
      const first = await startSwtpm(join(state0, 'tpm2'));
      let ek: string;
      try {
        ek = await readEkPublic(first.tcti);
        await nvWrite(first.tcti, NV_INDEX, nvData);
        // Adopting a running VM writes nothing: it records what is there, and the backup reads it.
        const adopted = await adoptVm(fleet.deps, 'vtpm', { backup: true });
        const [tpmState] = adopted.states;
        assert.ok(tpmState?.status === 'adopted');
        assert.deepEqual([tpmState.kind, tpmState.path, tpmState.busy], ['dir', state0, true]);
        assert.deepEqual(adopted.backup?.notUpdated, []);
      } finally {
        await first.stop();
      }

      // libvirt moved the VM to host1 without its storage: record it, restore its TPM there.
      await moveVm(fleet.deps, 'vtpm', 'host1');
      const restored = await restoreVm(fleet.deps, 'vtpm');
      const state1 = join(r1.TpmState, uuid);
      assert.deepEqual(
        restored.files.map((f) => [f.type, f.path, f.status]),
        [['TpmState', state1, 'written']],
      );
      const tss = idsOf(SWTPM_USER);
      assert.deepEqual([statSync(state1).mode & 0o777, statSync(state1).uid], [0o711, 0], "libvirt's <uuid>/");
      const tpm2 = statSync(join(state1, 'tpm2'));
      assert.deepEqual([tpm2.mode & 0o777, tpm2.uid, tpm2.gid], [0o700, tss.uid, tss.gid]);
      const permall = statSync(join(state1, 'tpm2', 'tpm2-00.permall'));
      assert.deepEqual([permall.mode & 0o777, permall.uid], [0o600, tss.uid]);

      const second = await startSwtpm(join(state1, 'tpm2'));
      try {
        assert.equal(await readEkPublic(second.tcti), ek, 'the same endorsement key');
        assert.equal(Buffer.compare(await nvRead(second.tcti, NV_INDEX, nvData.length), nvData), 0, 'the same NV data');

        // It runs on host1 now. Nothing of its state may be written or deleted, and each refusal says why.
        const before = snapshot(state1);
        assert.ok(Object.keys(before).includes('tpm2/.lock'), 'swtpm holds its lock file');
        await assert.rejects(
          writeFile(fleet.deps, {
            vm: 'vtpm',
            type: 'TpmState',
            path: state1,
            state: dirState([{ path: 'tpm2/tpm2-00.permall', content: Buffer.from('not a TPM') }]),
          }),
          (error) => isFlowError(error) && error.code === 'busy' && /running swtpm/.test(error.message),
        );
        await assert.rejects(
          removeTpms(fleet.deps, ['vtpm']),
          (error) => isFlowError(error) && error.code === 'busy' && /Stop the VM first/.test(error.message),
        );
        const reconciled = await reconcileHost(fleet.deps, 'host1', { apply: true, includeUnknown: true });
        assert.deepEqual(reconciled.scheduled, []);
        const forced = await removeTpms(fleet.deps, ['vtpm'], undefined, { force: true });
        assert.deepEqual(
          forced.pending.map((p) => [p.path, p.reason.split(':')[0]]),
          [[state1, 'busy']],
          "host0's copy is gone, host1's waits for swtpm",
        );
        assert.equal(forced.vms[0]?.binding, 'detaching');
        assert.equal(existsSync(state0), false);
        assert.deepEqual((await retryPendingDeletions(fleet.deps, { all: true })).stillPending, 1);
        assert.deepEqual(snapshot(state1), before, 'state and lock untouched, byte for byte');
      } finally {
        await second.stop();
      }
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.stillPending, pass.detached.length], [1, 0, 1]);
      assert.equal(existsSync(state1), false, 'no directory remains, lock included');
      assert.deepEqual(readdirSync(r0.TpmState), []);
      assert.deepEqual(readdirSync(r1.TpmState), []);
      assert.deepEqual(await fleet.store.listKeyBindings(), []);
    },
    SWTPM_FLEET,
  );
});
