// Reconcile with real agents and a real SQLite file: each file or directory below a root is one state; state
// hostfiles never knew is unknown and kept, its own leftovers are orphans; state in use is never touched; a recorded
// state gone from disk is missing, one changed is modified; `apply` and a retry delete the orphans (and, asked, the
// unknown) exactly as listed; a write landing on an orphan's path cancels its deletion.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  dirState,
  fileState,
  addTpm,
  addVm,
  reconcileHost,
  retryPendingDeletions,
  syncFleet,
  writeFile,
  ORPHAN_VM_UUID,
  RECONCILE_HOST,
} from '@hostfiles/controller';
import { stateDigest } from '@hostfiles/shared';
import { plant, roots, withFleet, type Fleet } from './support/controller.js';
import { holdLock } from './support/locks.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

test('unknown state is kept, orphans deleted, missing and modified states found; busy state never touched', async () => {
  await withFleet(2, async (fleet) => {
    const [r0, r1] = [roots(fleet, 0), roots(fleet, 1)];
    const host0 = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
    const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    await addTpm(fleet.deps, 'vm1', 'kms-1');
    const tpmDir = join(r0.TpmState, vm.uuid);
    const varsPath = join(r0.NvRam, 'vm1_VARS.fd');
    const tpm = randomBytes(1000);
    const state = dirState([{ path: 'tpm2/tpm2-00.permall', content: tpm }]);
    await writeFile(fleet.deps, { vm: 'vm1', type: 'TpmState', path: tpmDir, state });
    await writeFile(fleet.deps, { vm: 'vm1', type: 'NvRam', path: varsPath, state: fileState(randomBytes(500)) });
    // The same layout on host1, where the VM also has its state: a reconcile of host0 never touches it.
    const otherDir = join(r1.TpmState, vm.uuid);
    await writeFile(fleet.deps, { vm: 'vm1', host: 'host1', type: 'TpmState', path: otherDir, state });

    // libvirt's: a vTPM hostfiles never knew, and an NVRAM file. Unknown, kept unless asked.
    const libvirtDir = join(r0.TpmState, '6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b');
    const libvirtTpm = plant(join(libvirtDir, 'tpm2', 'tpm2-00.permall'), randomBytes(700));
    plant(join(libvirtDir, 'tpm2', '.lock'), Buffer.alloc(0));
    const libvirtVars = join(r0.NvRam, 'other_VARS.fd');
    plant(libvirtVars, randomBytes(300));
    // hostfiles' own leftover: a path it wrote (owned), in no row and no pending deletion.
    const leftover = join(r0.TpmState, 'leftover');
    plant(join(leftover, 'tpm2', 'tpm2-00.permall'), Buffer.from('ours once'));
    await fleet.store.addOwnedPaths([{ hostUuid: host0, path: leftover, type: 'TpmState', vmUuid: vm.uuid }]);
    // A running vTPM hostfiles does not know: listed as in use, never scheduled, its lock never listed.
    const runningDir = join(r0.TpmState, 'running');
    plant(join(runningDir, 'tpm2', 'tpm2-00.permall'), Buffer.from('live'));
    const runningLock = join(runningDir, 'tpm2', '.lock');
    plant(runningLock, Buffer.alloc(0));
    const lock = await holdLock(runningLock);
    // A file already in the outbox is accounted for: neither orphan nor rescheduled.
    const waiting = join(r0.NvRam, 'waiting_VARS.fd');
    plant(waiting, Buffer.from('waiting'));
    const [waitingRow] = await fleet.store.addPendingDeletions([
      {
        hostUuid: host0,
        type: 'NvRam',
        path: waiting,
        vmUuid: vm.uuid,
        tpmUuid: null,
        nextAttemptAt: 0,
        lastError: 'x',
      },
    ]);
    unlinkSync(varsPath);
    plant(join(tpmDir, 'tpm2', 'tpm2-00.volatilestate'), Buffer.from('the VM ran since'));
    try {
      const report = await reconcileHost(fleet.deps, 'host0');
      assert.equal(report.hostName, 'host0');
      assert.deepEqual(report.roots, r0);
      assert.equal(report.listed, 6, "vm1's state, libvirt's two, the leftover, the running one, the waiting one");
      assert.deepEqual(
        report.unknown.map((o) => `${o.type} ${o.kind} ${o.path}`).sort(),
        [`TpmState dir ${libvirtDir}`, `NvRam file ${libvirtVars}`].sort(),
      );
      assert.equal(
        report.unknown.find((u) => u.path === libvirtDir)?.sha256,
        stateDigest([{ path: 'tpm2/tpm2-00.permall', sha256: sha256(libvirtTpm) }]),
        'a directory is one state, its digest over its files but the lock',
      );
      assert.deepEqual(
        report.orphans.map((o) => o.path),
        [leftover],
      );
      assert.deepEqual(
        report.busy.map((o) => [o.path, o.busy]),
        [[runningDir, true]],
      );
      assert.ok(
        [...report.orphans, ...report.unknown, ...report.busy].every((u) => !u.path.endsWith('.lock')),
        'no lock file is ever a state',
      );
      assert.deepEqual(
        report.missing.map((m) => [m.vmUuid, m.type, m.path, m.size]),
        [[vm.uuid, 'NvRam', varsPath, 500]],
      );
      assert.deepEqual(
        report.modified.map((m) => m.path),
        [tpmDir],
      );
      assert.equal(report.pending, 1);
      assert.deepEqual(report.scheduled, []);
      assert.deepEqual(
        (await fleet.store.listPendingDeletions()).map((p) => p.id),
        [waitingRow?.id],
        'without apply, nothing is scheduled',
      );
      const operation = await fleet.store.getOperation(report.operationId);
      assert.deepEqual([operation?.kind, operation?.state], [RECONCILE_HOST, 'done']);

      const applied = await reconcileHost(fleet.deps, 'host0', { apply: true });
      assert.deepEqual(applied.scheduled, [leftover], "only hostfiles' own leftover");
      const orphanRow = (await fleet.store.listPendingDeletions()).find((p) => p.path === leftover);
      assert.deepEqual(
        [orphanRow?.vmUuid, orphanRow?.tpmUuid, orphanRow?.expectSha256],
        [vm.uuid, null, applied.orphans[0]?.sha256],
        'conditional on the digest seen, serialized with the VM it was written for',
      );
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.attempted, pass.confirmed, pass.stillPending], [2, 2, 0]);
      assert.equal(existsSync(leftover), false);
      assert.equal(existsSync(libvirtDir), true, 'unknown state is kept');
      assert.equal(existsSync(libvirtVars), true);

      const all = await reconcileHost(fleet.deps, 'host0', { apply: true, includeUnknown: true });
      assert.deepEqual(
        [...all.scheduled].sort(),
        [libvirtDir, libvirtVars].sort(),
        'asked: the unknown too, never the running one',
      );
      assert.equal(
        (await fleet.store.listPendingDeletions()).find((p) => p.path === libvirtDir)?.vmUuid,
        ORPHAN_VM_UUID,
      );
      // libvirt's NVRAM changes before the retry: the deletion was of what reconcile saw, so it is dropped.
      writeFileSync(libvirtVars, 'changed since');
      const second = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([second.confirmed, second.dropped, second.stillPending], [1, 1, 0]);
      assert.equal(existsSync(libvirtDir), false, 'the whole directory, its lock file included');
      assert.equal(readFileSync(libvirtVars, 'utf8'), 'changed since');
      assert.equal(readFileSync(join(runningDir, 'tpm2', 'tpm2-00.permall'), 'utf8'), 'live');
      assert.ok(existsSync(runningLock), "a running swtpm's lock is never touched");
      assert.equal(Buffer.compare(readFileSync(join(tpmDir, 'tpm2', 'tpm2-00.permall')), tpm), 0);
      assert.equal(Buffer.compare(readFileSync(join(otherDir, 'tpm2', 'tpm2-00.permall')), tpm), 0);
    } finally {
      await lock.release();
    }
  });
});

test("a write landing on an orphan's path cancels its deletion: the retry never deletes the new state", async () => {
  await withFleet(1, async (fleet) => {
    const r0 = roots(fleet, 0);
    const host0 = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
    const vm = await addVm(fleet.deps, { name: 'late', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    // As if hostfiles wrote it and lost the row.
    const path = join(r0.NvRam, 'late_VARS.fd');
    plant(path, Buffer.from('half provisioned'));
    await fleet.store.addOwnedPaths([{ hostUuid: host0, path, type: 'NvRam', vmUuid: vm.uuid }]);
    const report = await reconcileHost(fleet.deps, 'host0', { apply: true });
    assert.deepEqual(report.scheduled, [path]);

    await writeFile(fleet.deps, { vm: 'late', type: 'NvRam', path, state: fileState(Buffer.from('provisioned')) });
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.equal((await retryPendingDeletions(fleet.deps, { all: true })).attempted, 0);
    assert.equal(readFileSync(path, 'utf8'), 'provisioned');
    assert.deepEqual((await reconcileHost(fleet.deps, 'host0')).orphans, []);
  });
});

test('a host that cannot be listed fails the reconcile, journaled as failed; an unknown host is refused', async () => {
  await withFleet(1, async (fleet) => {
    await assert.rejects(reconcileHost(fleet.deps, 'nosuchhost'), /no host nosuchhost/);
    await fleet.stop(0);
    await assert.rejects(reconcileHost(fleet.deps, 'host0', { apply: true }), { name: 'AgentCallError' });
    assert.equal((await fleet.store.getHostByName('host0'))?.state, 'Disconnected');
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.deepEqual(await fleet.store.listUnfinishedOperations(), [], 'the operation was finished, failed');
  });
});

test("a tree the agent's crash recovery set aside is reported apart and never scheduled", async () => {
  await withFleet(1, async (fleet) => {
    const r0 = roots(fleet, 0);
    const aside = join(
      r0.TpmState,
      '.hostfiles-quarantine.old.6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b.1764000000000.ab12',
    );
    plant(join(aside, 'tpm2', 'tpm2-00.permall'), Buffer.from('maybe the only copy'));
    const report = await reconcileHost(fleet.deps, 'host0', { apply: true, includeUnknown: true });
    assert.deepEqual(
      report.quarantined.map((u) => u.path),
      [aside],
    );
    assert.deepEqual([report.unknown, report.scheduled], [[], []]);
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.ok(existsSync(aside));
  });
});

/**
 * `count` VMs on host0, each with a recorded NVRAM file (`vars(i)`); then the first is gone from disk and the second
 * changed there: what a reconcile must report, and nothing else, however much of the root its listing shows.
 */
async function nvramsOneGoneOneChanged(fleet: Fleet, count: number): Promise<(i: number) => string> {
  const vars = (i: number): string => join(roots(fleet, 0).NvRam, `vm${i}_VARS.fd`);
  for (let i = 0; i < count; i++) {
    await addVm(fleet.deps, { name: `vm${i}`, host: 'host0', bootMode: 'UEFI', secureBoot: false });
    await writeFile(fleet.deps, { vm: `vm${i}`, type: 'NvRam', path: vars(i), state: fileState(randomBytes(100)) });
  }
  unlinkSync(vars(0));
  writeFileSync(vars(1), 'the VM ran since');
  return vars;
}

/** A reconcile found the first gone and the second changed, and nothing else missing or modified. */
function assertOneGoneOneChanged(
  report: { readonly missing: readonly { path: string }[]; readonly modified: readonly { path: string }[] },
  vars: (i: number) => string,
): void {
  assert.deepEqual(
    report.missing.map((m) => m.path),
    [vars(0)],
    'only the one gone from disk: the others the listing left out were found by stat',
  );
  assert.deepEqual(
    report.modified.map((m) => m.path),
    [vars(1)],
  );
}

test("an NvRam root of more names than the agent lists (its QEMU user's junk): the listing says it is cut short, and the recorded states it left out are stat'ed, not missing", async () => {
  await withFleet(
    1,
    async (fleet) => {
      const r0 = roots(fleet, 0);
      const vars = await nvramsOneGoneOneChanged(fleet, 16);
      // 10,000 empty files: twice what one listing reads from a root, so about half the VMs' files are among the
      // names it never reads (all 16 read: one chance in 65,536).
      for (let i = 0; i < 10_000; i++) closeSync(openSync(join(r0.NvRam, `junk-${i}`), 'w'));

      const report = await reconcileHost(fleet.deps, 'host0');
      assert.equal(report.truncated, true);
      assert.equal(report.listed, 5000, 'the names one listing reads from a root');
      assertOneGoneOneChanged(report, vars);

      const synced = await syncFleet(fleet.deps);
      const [host] = synced.hosts;
      assert.equal(host?.truncated, true);
      assert.equal(host.recorded, 16);
      assert.deepEqual(
        synced.missing.map((m) => m.path),
        [vars(0)],
      );
      assert.deepEqual(
        synced.read.map((r) => r.path),
        [vars(1)],
        'the changed one read; the 14 others unchanged, listed or not',
      );
      assert.equal(host.unchanged, 14);
    },
    { timeoutMs: 60_000 },
  );
});

test("an NvRam root its QEMU user filled with big files, more than an attempt's time can hash: the listing answers in time, cut short, and the recorded states it left out are stat'ed", async () => {
  const GIB = 1024 ** 3;
  await withFleet(
    1,
    async (fleet) => {
      const r0 = roots(fleet, 0);
      const vars = await nvramsOneGoneOneChanged(fleet, 4);
      // Ten sparse 1 GiB files, named to come before the VMs' in the listing's order: seconds each to hash, where
      // an attempt has 3 s (nothing recorded is big). Without the time given, every attempt timed out.
      for (let i = 0; i < 10; i++) {
        const path = join(r0.NvRam, `junk-${i}`);
        closeSync(openSync(path, 'w'));
        truncateSync(path, GIB);
      }

      const report = await reconcileHost(fleet.deps, 'host0');
      assert.equal(report.truncated, true);
      assert.ok(report.listed < 10, `${report.listed} units listed in time, not the 14`);
      assertOneGoneOneChanged(report, vars);
      const synced = await syncFleet(fleet.deps);
      assert.equal(synced.hosts[0]?.error, undefined);
      assert.equal(synced.hosts[0]?.truncated, true);
      assert.deepEqual(
        synced.missing.map((m) => m.path),
        [vars(0)],
      );
      assert.equal(synced.hosts[0].unchanged, 2);
    },
    { timeoutMs: 3000 },
  );
});

test("a host whose recorded states take longer to hash than the fixed timeout (64 MiB AAVMF stores, many VMs) is listed and stat'ed in time: each attempt is given the time its bytes take", async () => {
  const MIB = 1024 * 1024;
  await withFleet(
    1,
    async (fleet) => {
      const r0 = roots(fleet, 0);
      const host0 = (await fleet.store.getHostByName('host0'))?.uuid ?? '';
      const vm = await addVm(fleet.deps, { name: 'big', host: 'host0', bootMode: 'UEFI', secureBoot: false });
      // 512 MiB of zeros, recorded as they are: hashing them takes the agent far longer than the 100 ms timeout.
      const path = join(r0.NvRam, 'big_VARS.fd');
      closeSync(openSync(path, 'w'));
      truncateSync(path, 512 * MIB);
      const zeros = createHash('sha256');
      for (let i = 0; i < 512; i++) zeros.update(Buffer.alloc(MIB));
      const sha256 = zeros.digest('hex');
      const row = { uuid: randomUUID(), vmUuid: vm.uuid, hostUuid: host0, type: 'NvRam' as const, path };
      await fleet.store.upsertFile({ ...row, kind: 'file', sha256, size: 512 * MIB, lastSyncAt: Date.now() });

      const report = await reconcileHost(fleet.deps, 'host0');
      assert.deepEqual([report.listed, report.missing, report.modified], [1, [], []]);
      const synced = await syncFleet(fleet.deps);
      assert.equal(synced.hosts[0]?.error, undefined);
      assert.equal(synced.hosts[0]?.listed, 1);
    },
    { timeoutMs: 100 },
  );
});
