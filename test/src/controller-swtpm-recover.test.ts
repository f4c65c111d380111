// A real vTPM recovered after its host was lost: swtpm_setup makes libvirt's state on host0, a sync captures it,
// host0's agent is killed, `vm recover` puts the newest generation on host1, and swtpm started there answers with
// the same endorsement key and NV data. host0 back: its stale copy is deleted, nothing of it is captured.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { adoptVm, recoverVm, retryPendingDeletions, syncVm } from '@hostfiles/controller';
import { withFleet } from './support/controller.js';
import { skipWithout } from './support/real-tools.js';
import {
  nvRead,
  nvWrite,
  NV_INDEX,
  readEkPublic,
  startSwtpm,
  swtpmUnavailable,
  SWTPM_FLEET,
  vtpmOnHost0,
} from './support/swtpm.js';

test('a real vTPM recovered onto another host after its host was lost answers with the same EK', async (t) => {
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
        await adoptVm(fleet.deps, 'vtpm', { backup: true });
        // The VM runs: its TPM's NV data changes after the adoption, and a sync captures it (generation 2).
        await nvWrite(first.tcti, NV_INDEX, nvData);
      } finally {
        await first.stop();
      }
      const synced = await syncVm(fleet.deps, 'vtpm');
      assert.deepEqual(
        synced.backups.map((b) => [b.type, b.generation, b.created]),
        [['TpmState', 2, true]],
      );

      // host0 is lost (its machine refuses connections: the operator gives it up); the VM is recovered onto host1.
      await fleet.agents[0]?.stop('SIGKILL');
      const report = await recoverVm(fleet.deps, 'vtpm', 'host1', { hostLost: true });
      const state1 = join(r1.TpmState, uuid);
      assert.deepEqual(
        report.files.map((f) => [f.type, f.path, f.status]),
        [['TpmState', state1, 'written']],
      );
      assert.deepEqual(report.generations, [{ type: 'TpmState', generation: 2 }]);
      const second = await startSwtpm(join(state1, 'tpm2'));
      try {
        assert.equal(await readEkPublic(second.tcti), ek, 'the same endorsement key');
        assert.equal(Buffer.compare(await nvRead(second.tcti, NV_INDEX, nvData.length), nvData), 0, 'the same NV data');
      } finally {
        await second.stop();
      }

      // host0 back with its stale copy: deleted by the retry, never read by a sync.
      await fleet.restart(0);
      assert.ok(existsSync(state0));
      assert.deepEqual(
        (await syncVm(fleet.deps, 'vtpm')).files.map((f) => [f.hostName, f.status]),
        [['host1', 'read']],
      );
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.confirmed, pass.stillPending], [1, 0]);
      assert.deepEqual(readdirSync(r0.TpmState), [], "host0's stale copy is gone");
      // swtpm on host1 changed its state as it ran: that sync captured it from host1, beside host0's generations.
      const [host0, host1] = [report.from?.hostUuid, report.to.hostUuid];
      assert.deepEqual(
        (await fleet.store.listGenerations(report.vmUuid)).map((g) => [g.generation, g.source, g.hostUuid]),
        [
          [3, 'sync', host1],
          [2, 'sync', host0],
          [1, 'adopt', host0],
        ],
      );
    },
    SWTPM_FLEET,
  );
});
