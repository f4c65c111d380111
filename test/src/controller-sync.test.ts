// Sync and restore with real agents and a real SQLite file: the exact bytes on disk go into the backups, and come
// back byte-identical after the files are destroyed, also onto another host after the VM moved; the CLI commands.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import {
  fileState,
  addHost,
  addTpm,
  addVm,
  restoreVm,
  resumeRestore,
  resumeFleetSync,
  readOnHost,
  resumeSync,
  retryPendingDeletions,
  syncFleet,
  syncVm,
  writeFile,
  RESTORE_VM,
  SYNC_FLEET,
  SYNC_VM,
  type AgentClient,
  type Host,
  type Operation,
  type Vm,
  type VmHostFile,
  type OperationKind,
} from '@hostfiles/controller';
import type { AgentHandle } from './support/agent-process.js';
import { initWorkspace, oneVmOnOneHost } from './support/cli.js';
import { backupBytes, startFleet, type Fleet } from './support/controller.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
/** Rows in a fixed order, whatever the order of the random host uuids the store sorts by. */
const sorted = (rows: readonly (readonly string[])[]): string[] => rows.map((row) => row.join(' ')).sort();

interface Placed {
  readonly vm: Vm;
  readonly tpmPath: string;
  readonly nvramPath: string;
}

async function withFleet(hosts: number, fn: (fleet: Fleet, hosts: Host[]) => Promise<void>): Promise<void> {
  const fleet = await startFleet(hosts);
  try {
    const added: Host[] = [];
    for (const [i, agent] of fleet.agents.entries())
      added.push(await addHost(fleet.deps, { name: `host${i}`, url: agent.url, expectKey: agent.publicKey }));
    await fn(fleet, added);
  } finally {
    await fleet.close();
  }
}

/** A UEFI VM with a TPM on host `home`, its TpmState and NvRam files written there through the agent. */
async function placeVm(fleet: Fleet, name: string, home: number): Promise<Placed> {
  const vm = await addVm(fleet.deps, { name, host: `host${home}`, bootMode: 'UEFI', secureBoot: true });
  await addTpm(fleet.deps, name, 'kms-1');
  const roots = fleet.agents[home]?.setup.roots;
  assert.ok(roots);
  const tpmPath = join(roots.TpmState, vm.uuid, 'tpm2', 'tpm2-00.permall');
  const nvramPath = join(roots.NvRam, `${vm.uuid}_VARS.fd`);
  await writeFile(fleet.deps, { vm: name, type: 'TpmState', path: tpmPath, state: fileState(randomBytes(3000)) });
  await writeFile(fleet.deps, { vm: name, type: 'NvRam', path: nvramPath, state: fileState(randomBytes(128 * 1024)) });
  return { vm, tpmPath, nvramPath };
}

test('sync puts the exact bytes on disk into the backups, taken from the current host, and updates the rows', async () => {
  await withFleet(2, async (fleet) => {
    const { vm, tpmPath, nvramPath } = await placeVm(fleet, 'vm1', 0);
    // A stale copy where the VM lived before, written after the current one: the current host's still wins.
    const staleTpm = join(fleet.agents[1]?.setup.roots.TpmState ?? '', vm.uuid, 'tpm2', 'tpm2-00.permall');
    await writeFile(fleet.deps, {
      vm: 'vm1',
      host: 'host1',
      type: 'TpmState',
      path: staleTpm,
      state: fileState(randomBytes(10)),
    });
    // swtpm changes its state behind the controller's back: sync must read what is on disk now.
    const liveTpm = randomBytes(4096);
    writeFileSync(tpmPath, liveTpm);
    const liveVars = readFileSync(nvramPath);

    const report = await syncVm(fleet.deps, 'vm1');
    assert.equal(report.commands, 2, 'one read per host');
    assert.deepEqual(
      sorted(report.files.map((f) => [f.hostName, f.type, f.path, f.status])),
      sorted([
        ['host0', 'NvRam', nvramPath, 'read'],
        ['host0', 'TpmState', tpmPath, 'read'],
        ['host1', 'TpmState', staleTpm, 'read'],
      ]),
    );
    assert.deepEqual(report.notUpdated, []);
    const backups = await fleet.store.listBackupsByVm(vm.uuid);
    assert.deepEqual(
      await Promise.all(
        backups.map(async (b) => [
          b.type,
          Buffer.compare(await backupBytes(fleet.store, b), b.type === 'TpmState' ? liveTpm : liveVars),
          b.sha256,
        ]),
      ),
      [
        ['NvRam', 0, sha256(liveVars)],
        ['TpmState', 0, sha256(liveTpm)],
      ],
    );
    assert.deepEqual(
      sorted(report.backups.map((b) => [b.type, b.hostName, b.path, String(b.size)])),
      sorted([
        ['NvRam', 'host0', nvramPath, String(liveVars.length)],
        ['TpmState', 'host0', tpmPath, String(liveTpm.length)],
      ]),
    );
    const row = (await fleet.store.listFilesByVm(vm.uuid, 'TpmState')).find((f) => f.path === tpmPath);
    assert.deepEqual([row?.sha256, row?.size], [sha256(liveTpm), liveTpm.length], 'the row follows the disk');
    const operation = await fleet.store.getOperation(report.operationId);
    assert.deepEqual([operation?.kind, operation?.state], [SYNC_VM, 'done']);
  });
});

test('a file missing on disk is reported, not backed up: its earlier backup is kept', async () => {
  await withFleet(1, async (fleet) => {
    const { vm, tpmPath, nvramPath } = await placeVm(fleet, 'vm1', 0);
    await syncVm(fleet.deps, 'vm1');
    const before = await fleet.store.listBackupsByVm(vm.uuid, 'NvRam');
    unlinkSync(nvramPath);
    writeFileSync(tpmPath, 'new tpm state');

    const report = await syncVm(fleet.deps, 'vm1');
    const nvram = report.files.find((f) => f.type === 'NvRam');
    assert.equal(nvram?.status, 'missing');
    assert.match(nvram.reason, /^not_found/);
    assert.deepEqual(
      report.notUpdated.map((f) => f.type),
      ['NvRam'],
    );
    assert.deepEqual(
      report.backups.map((b) => b.type),
      ['TpmState'],
    );
    assert.deepEqual(await fleet.store.listBackupsByVm(vm.uuid, 'NvRam'), before, 'the NvRam backup is untouched');
    const tpm = await fleet.store.listBackupsByVm(vm.uuid, 'TpmState');
    assert.ok(tpm[0] !== undefined);
    assert.equal((await backupBytes(fleet.store, tpm[0])).toString(), 'new tpm state');
  });
});

test('restore writes the backups back byte-identical after the files were destroyed', async () => {
  await withFleet(1, async (fleet) => {
    const { vm, tpmPath, nvramPath } = await placeVm(fleet, 'vm1', 0);
    await syncVm(fleet.deps, 'vm1');
    const backups = await fleet.store.listBackupsByVm(vm.uuid);
    rmSync(join(tpmPath, '..', '..'), { recursive: true });
    unlinkSync(nvramPath);

    const report = await restoreVm(fleet.deps, 'vm1');
    assert.equal(report.hostName, 'host0');
    assert.deepEqual(
      report.files.map((f) => [f.type, f.path, f.status]),
      [
        ['NvRam', nvramPath, 'written'],
        ['TpmState', tpmPath, 'written'],
      ],
    );
    for (const backup of backups) {
      const onDisk = readFileSync(backup.type === 'TpmState' ? tpmPath : nvramPath);
      assert.equal(sha256(onDisk), backup.sha256, backup.type);
      assert.equal(Buffer.compare(onDisk, await backupBytes(fleet.store, backup)), 0);
    }
    const operation = await fleet.store.getOperation(report.operationId);
    assert.deepEqual([operation?.kind, operation?.state], [RESTORE_VM, 'done']);
  });
});

test('restore onto the host a VM moved to: recorded there, a pending deletion at the path cancelled', async () => {
  await withFleet(2, async (fleet, [, host1]) => {
    assert.ok(host1);
    const { vm } = await placeVm(fleet, 'vm1', 0);
    await syncVm(fleet.deps, 'vm1');
    const backups = await fleet.store.listBackupsByVm(vm.uuid);
    await fleet.store.setVmHost(vm.uuid, host1.uuid);
    const roots = fleet.agents[1]?.setup.roots;
    assert.ok(roots);
    const tpmPath = join(roots.TpmState, vm.uuid, 'tpm2', 'tpm2-00.permall');
    const nvramPath = join(roots.NvRam, `${vm.uuid}_VARS.fd`);
    // A stale deletion at the very path (an earlier VM's file there, say): the restore's write must cancel it.
    await fleet.store.addPendingDeletions([
      {
        hostUuid: host1.uuid,
        type: 'NvRam',
        path: nvramPath,
        vmUuid: vm.uuid,
        tpmUuid: null,
        nextAttemptAt: 0,
        lastError: 'test',
      },
    ]);

    // The test agents' roots differ per host, so the paths are given; by default the VM's paths are reused.
    const report = await restoreVm(fleet.deps, 'vm1', { paths: { TpmState: tpmPath, NvRam: nvramPath } });
    assert.equal(report.hostName, 'host1', "the VM's current host by default");
    assert.deepEqual(
      report.files.map((f) => f.status),
      ['written', 'written'],
    );
    for (const backup of backups) {
      const onDisk = readFileSync(backup.type === 'TpmState' ? tpmPath : nvramPath);
      assert.equal(sha256(onDisk), backup.sha256, backup.type);
    }
    assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'the write cancelled the deletion');
    assert.equal((await retryPendingDeletions(fleet.deps, { all: true })).attempted, 0);
    assert.ok(existsSync(nvramPath));
    const onHost1 = (await fleet.store.listFilesByVm(vm.uuid)).filter((f) => f.hostUuid === host1.uuid);
    assert.deepEqual(
      onHost1.map((f) => [f.type, f.path, f.sha256]),
      backups.map((b) => [b.type, b.type === 'TpmState' ? tpmPath : nvramPath, b.sha256]),
    );

    // Once recorded there, the paths are known: a later restore onto host1 needs none.
    unlinkSync(tpmPath);
    const again = await restoreVm(fleet.deps, 'vm1');
    assert.deepEqual(
      again.files.map((f) => [f.path, f.status]),
      [
        [nvramPath, 'written'],
        [tpmPath, 'written'],
      ],
    );
    assert.equal(sha256(readFileSync(tpmPath)), backups.find((b) => b.type === 'TpmState')?.sha256);
  });
});

test('restore refusals: no backup, a path outside the host root, a path that is not the recorded one', async () => {
  await withFleet(2, async (fleet, [host0, host1]) => {
    assert.ok(host0 && host1);
    // A VM nothing was captured of (a write onto its host is a capture: see controller-generations).
    await addVm(fleet.deps, { name: 'vm0', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    await assert.rejects(restoreVm(fleet.deps, 'vm0'), /VM vm0 has no backup: sync it first/);
    const { vm, nvramPath } = await placeVm(fleet, 'vm1', 0);
    await syncVm(fleet.deps, 'vm1');
    await assert.rejects(
      restoreVm(fleet.deps, 'vm1', { paths: { NvRam: join(nvramPath, '..', 'other_VARS.fd') } }),
      /restore it there/,
    );
    await assert.rejects(restoreVm(fleet.deps, 'vm1', { paths: { NvRam: 'relative/path' } }), /not an absolute/);
    await assert.rejects(restoreVm(fleet.deps, 'nope'), /no VM nope/);

    // host1 has its own roots: host0's paths are outside them, and the agent refuses the whole command.
    const report = await restoreVm(fleet.deps, 'vm1', { host: 'host1' });
    assert.match(report.error ?? '', /^refused: outside_root/);
    assert.deepEqual(
      report.files.map((f) => f.status),
      ['failed', 'failed'],
    );
    assert.equal((await fleet.store.getOperation(report.operationId))?.state, 'failed');
    assert.deepEqual(
      (await fleet.store.listFilesByVm(vm.uuid)).map((f) => f.hostUuid),
      [host0.uuid, host0.uuid],
      'nothing recorded on host1',
    );
  });
});

test('a sync, fleet sync or restore the controller was killed in is repeated by its resumer under the same operation', async () => {
  await withFleet(1, async (fleet, [host0]) => {
    assert.ok(host0);
    const { vm, tpmPath } = await placeVm(fleet, 'vm1', 0);
    const start = async (id: string, kind: OperationKind, input: unknown): Promise<Operation> =>
      fleet.store.startOperation({ id, kind, subject: vm.uuid, step: 'read', input });
    const sync = await start(randomUUID(), SYNC_VM, { vm: vm.uuid });
    assert.equal(await resumeSync(fleet.deps, sync), 'done');
    assert.equal((await fleet.store.getOperation(sync.id))?.state, 'done');
    assert.equal((await fleet.store.listBackupsByVm(vm.uuid)).length, 2);

    const before = readFileSync(tpmPath);
    unlinkSync(tpmPath);
    const restore = await start(randomUUID(), RESTORE_VM, {
      vm: vm.uuid,
      host: host0.uuid,
      paths: { TpmState: tpmPath },
    });
    assert.equal(await resumeRestore(fleet.deps, restore), 'done');
    assert.equal(Buffer.compare(readFileSync(tpmPath), before), 0);
    const done = await fleet.store.getOperation(restore.id);
    assert.deepEqual(
      [done?.state, (done?.report as { operationId?: string } | null)?.operationId],
      ['done', restore.id],
    );

    const orphaned = await start(randomUUID(), SYNC_VM, { vm: randomUUID() });
    assert.equal(await resumeSync(fleet.deps, orphaned), 'failed');
    assert.deepEqual((await fleet.store.getOperation(orphaned.id))?.report, { error: 'the VM no longer exists' });

    // A fleet sync: repeated on the hosts it named, under its own id; one whose hosts are all gone ends failed.
    writeFileSync(tpmPath, 'changed since');
    const fleetSync = await start(randomUUID(), SYNC_FLEET, { hosts: [host0.uuid] });
    assert.equal(await resumeFleetSync(fleet.deps, fleetSync), 'done');
    const finished = await fleet.store.getOperation(fleetSync.id);
    assert.equal(finished?.state, 'done');
    assert.equal((finished.report as { totals: { read: number } }).totals.read, 1);
    const tpm = await fleet.store.listBackupsByVm(vm.uuid, 'TpmState');
    assert.ok(tpm[0]);
    assert.equal((await backupBytes(fleet.store, tpm[0])).toString(), 'changed since');
    const gone = await start(randomUUID(), SYNC_FLEET, { hosts: [randomUUID()] });
    assert.equal(await resumeFleetSync(fleet.deps, gone), 'failed');
  });
});

test('a resumed restore writes the generations it journaled, not a newer one captured since', async () => {
  await withFleet(1, async (fleet, [host0]) => {
    assert.ok(host0);
    const { vm, nvramPath } = await placeVm(fleet, 'vm1', 0);
    const first = readFileSync(nvramPath); // generation 1: the write
    writeFileSync(nvramPath, 'newer');
    await syncVm(fleet.deps, 'vm1'); // generation 2
    const journaled = (generation: number): Promise<Operation> =>
      fleet.store.startOperation({
        id: randomUUID(),
        kind: RESTORE_VM,
        subject: vm.uuid,
        step: 'write',
        input: {
          vm: vm.uuid,
          host: host0.uuid,
          paths: { NvRam: nvramPath },
          force: true,
          generations: [{ type: 'NvRam', generation }],
        },
      });
    assert.equal(await resumeRestore(fleet.deps, await journaled(1)), 'done');
    assert.equal(Buffer.compare(readFileSync(nvramPath), first), 0, 'generation 1, as journaled');
    // One pruned since cannot be written, ever: failed, not retried at every start.
    const gone = await journaled(99);
    assert.equal(await resumeRestore(fleet.deps, gone), 'failed');
    assert.match(JSON.stringify((await fleet.store.getOperation(gone.id))?.report), /generation 99 is gone/);
  });
});

/** The `files.read` commands an agent applied since its log line `from`. */
const readsSince = (agent: AgentHandle | undefined, from: number): number =>
  (agent?.lines ?? []).slice(from).filter((text) => {
    const line = JSON.parse(text) as { event?: string; kind?: string };
    return line.event === 'request' && line.kind === 'files.read';
  }).length;

test('fleet sync reads only the states that changed, one listing a host, and records them as sync does', async () => {
  await withFleet(3, async (fleet) => {
    const placed: Placed[] = [];
    for (let i = 0; i < 6; i++) placed.push(await placeVm(fleet, `vm${i}`, i % 3));
    const size = (p: Placed): number => readFileSync(p.tpmPath).length + readFileSync(p.nvramPath).length;

    // A write onto the VM's host is a capture: every state's newest generation is what is on disk. Two VMs lose
    // their history (as if adopted without --backup): only their states are read, their backups being behind.
    const [vm0, vm1, vm2] = placed;
    assert.ok(vm0 && vm1 && vm2);
    for (const p of [vm0, vm1]) await fleet.store.deleteGenerations(p.vm.uuid);
    const first = await syncFleet(fleet.deps);
    assert.equal(first.totals.recorded, 12);
    assert.deepEqual(
      first.read.map((f) => [f.vmUuid, f.type, f.status, f.why]).sort(),
      [vm0, vm1]
        .flatMap((p) => [
          [p.vm.uuid, 'NvRam', 'read', 'backup_behind'],
          [p.vm.uuid, 'TpmState', 'read', 'backup_behind'],
        ])
        .sort(),
    );
    assert.equal(first.totals.bytesRead, size(vm0) + size(vm1));
    assert.equal(first.backups, 4, 'a generation of each');
    assert.equal((await fleet.store.listGenerations(vm0.vm.uuid, 'NvRam'))[0]?.source, 'sync');

    // Nothing changed: every host listed (and its deep TPM files stat'ed), nothing read.
    const marks = fleet.agents.map((a) => a.lines.length);
    const idle = await syncFleet(fleet.deps);
    assert.deepEqual([idle.totals.read, idle.totals.bytesRead, idle.totals.unchanged, idle.backups], [0, 0, 12, 0]);
    assert.deepEqual(
      fleet.agents.map((a, i) => readsSince(a, marks[i] ?? 0)),
      [0, 0, 0],
    );

    // swtpm and the firmware change two states behind the controller's back, on two hosts.
    const liveVars = randomBytes(64 * 1024);
    writeFileSync(vm0.nvramPath, liveVars);
    const liveTpm = randomBytes(5000);
    writeFileSync(vm2.tpmPath, liveTpm);
    const before = fleet.agents.map((a) => a.lines.length);
    const changed = await syncFleet(fleet.deps);
    assert.deepEqual(
      changed.read.map((f) => [f.vmUuid, f.type, f.status, f.why]).sort(),
      [
        [vm0.vm.uuid, 'NvRam', 'read', 'changed'],
        [vm2.vm.uuid, 'TpmState', 'read', 'changed'],
      ].sort(),
    );
    assert.equal(changed.totals.bytesRead, liveVars.length + liveTpm.length, 'the bytes read are the changed states');
    assert.equal(changed.totals.unchanged, 10);
    assert.deepEqual(
      fleet.agents.map((a, i) => readsSince(a, before[i] ?? 0)),
      [1, 0, 1],
      'one read on each host with a change, none elsewhere',
    );
    const nvram = await fleet.store.listBackupsByVm(vm0.vm.uuid, 'NvRam');
    assert.ok(nvram[0]);
    assert.equal(Buffer.compare(await backupBytes(fleet.store, nvram[0]), liveVars), 0, 'the backup holds the disk');
    const tpmRow = (await fleet.store.listFilesByVm(vm2.vm.uuid, 'TpmState'))[0];
    assert.deepEqual([tpmRow?.sha256, tpmRow?.size], [sha256(liveTpm), liveTpm.length], 'the row follows the disk');
    const operation = await fleet.store.getOperation(changed.operationId);
    assert.deepEqual([operation?.kind, operation?.state], [SYNC_FLEET, 'done']);

    // A VM that moved: the copy on the host it left is read when it changes (its row follows the disk) but never
    // captured: its generations stay as they were.
    const [host2] = (await fleet.store.listHosts()).filter((h) => h.name === 'host2');
    assert.ok(host2);
    await fleet.store.setVmHost(vm1.vm.uuid, host2.uuid);
    const generations = await fleet.store.listGenerations(vm1.vm.uuid);
    writeFileSync(vm1.nvramPath, randomBytes(1000));
    const left = await syncFleet(fleet.deps);
    assert.deepEqual(
      left.read.map((f) => [f.vmUuid, f.type, f.status, f.why]),
      [[vm1.vm.uuid, 'NvRam', 'read', 'changed']],
    );
    assert.deepEqual([left.backups, left.fenced], [0, []]);
    assert.deepEqual(await fleet.store.listGenerations(vm1.vm.uuid), generations, 'nothing captured from host1');
    const leftRow = (await fleet.store.listFilesByVm(vm1.vm.uuid, 'NvRam'))[0];
    assert.equal(leftRow?.sha256, sha256(readFileSync(vm1.nvramPath)));

    // A host down: reported, its states untouched; the others synced. A state gone: missing, not read.
    unlinkSync(vm2.nvramPath);
    await fleet.stop(1);
    const partial = await syncFleet(fleet.deps);
    const down = partial.hosts.find((h) => h.hostName === 'host1');
    assert.match(down?.error ?? '', /^unreachable/);
    assert.deepEqual(
      partial.missing.map((m) => [m.vmUuid, m.type]),
      [[vm2.vm.uuid, 'NvRam']],
    );
    assert.equal(partial.totals.read, 0);
    assert.equal(partial.totals.failedHosts, 1);

    // One host only, however often and however it is named.
    const host0 = (await fleet.store.listHosts()).find((h) => h.name === 'host0');
    assert.ok(host0);
    const only = await syncFleet(fleet.deps, { hosts: ['host0', host0.uuid, 'host0'] });
    assert.deepEqual(
      only.hosts.map((h) => h.hostName),
      ['host0'],
    );
  });
});

test('CLI: sync, restore and reconcile --apply, as an operator runs them', async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-cli-sync-');
  const { dir, cli, ok } = workspace;
  const { agent, tpmPath, varsPath } = await oneVmOnOneHost(t, workspace);
  const from = join(dir, 'state');
  writeFileSync(from, randomBytes(2048));
  await ok('file', 'write', 'a', '--type', 'TpmState', '--path', tpmPath, '--from', from);
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', varsPath, '--from', from);

  // sync: the backups hold the bytes; a file gone from disk fails the sync of its type (exit 1, report printed)
  const sync = JSON.parse(await ok('sync', 'a', '--json')) as { backups: { type: string; sha256: string }[] };
  assert.deepEqual(
    sync.backups.map((b) => [b.type, b.sha256]),
    [
      ['NvRam', sha256(readFileSync(from))],
      ['TpmState', sha256(readFileSync(from))],
    ],
  );
  assert.match(await ok('sync', 'a'), /backup TpmState: 2048 bytes from h0/);
  unlinkSync(tpmPath);
  const failedSync = await cli('sync', 'a');
  assert.equal(failedSync.status, 1);
  assert.match(failedSync.stdout, /h0\s+missing\s+TpmState/);
  assert.match(failedSync.stderr, /^hostfiles: VM a: the TpmState backup was not updated/);

  // restore: byte-identical; a path other than the recorded one is refused
  const restore = JSON.parse(await ok('restore', 'a', '--json')) as { files: { type: string; status: string }[] };
  assert.deepEqual(
    restore.files.map((f) => [f.type, f.status]),
    [
      ['NvRam', 'written'],
      ['TpmState', 'written'],
    ],
  );
  assert.equal(Buffer.compare(readFileSync(tpmPath), readFileSync(from)), 0, 'byte-identical');
  const refused = await cli('restore', 'a', '--tpm-path', join(agent.setup.roots.TpmState, 'b'));
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /^hostfiles: VM a's TpmState state on host h0 is /);

  // reconcile: a file the controller never heard of is unknown: kept by --apply, deleted by --include-unknown only
  const stray = join(agent.setup.roots.NvRam, 'stray_VARS.fd');
  writeFileSync(stray, 'stray');
  const found = await ok('reconcile', 'h0');
  assert.match(found, new RegExp(`${stray}\\s+NvRam\\s+file\\s+5 `));
  assert.match(found, /3 states on disk, 0 orphans, 1 unknown, 0 in use, 0 missing/);
  const kept = JSON.parse(await ok('reconcile', 'h0', '--apply', '--json')) as { scheduled: string[] };
  assert.deepEqual(kept.scheduled, [], "not hostfiles' own: --apply alone leaves it");
  const usage = await cli('reconcile', 'h0', '--include-unknown');
  assert.equal(usage.status, 2, '--include-unknown goes with --apply');
  const applied = JSON.parse(await ok('reconcile', 'h0', '--apply', '--include-unknown', '--json')) as {
    scheduled: string[];
  };
  assert.deepEqual(applied.scheduled, [stray]);
  await ok('retry');
  assert.equal(existsSync(stray), false);
  assert.ok(existsSync(varsPath) && existsSync(tpmPath), 'recorded files untouched');
  assert.match(await ok('reconcile', 'h0'), /no orphans\n\nno unknown state/);
  const unknown = await cli('reconcile', 'nosuchhost');
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /^hostfiles: no host nosuchhost/);

  // sync --all: what changed since is read, nothing else; sync needs a VM or --all or --host, not both
  writeFileSync(varsPath, 'firmware wrote this');
  const fleetSync = JSON.parse(await ok('sync', '--all', '--json')) as {
    read: { type: string; why: string }[];
    totals: { unchanged: number; bytesRead: number };
  };
  assert.deepEqual(
    fleetSync.read.map((f) => [f.type, f.why]),
    [['NvRam', 'changed']],
  );
  assert.deepEqual([fleetSync.totals.unchanged, fleetSync.totals.bytesRead], [1, 'firmware wrote this'.length]);
  assert.match(
    await ok('sync', '--host', 'h0'),
    /nothing changed: no state read\n\nfleet sync: 1 host, 2 recorded states, 2 unchanged, 0 read/,
  );
  const refusals: [string[], RegExp][] = [
    [['sync'], /sync needs a VM, or --all, or --host HOST\n/],
    [['sync', 'a', '--all'], /sync needs a VM, or --all, or --host HOST, not both/],
    [['sync', '--all', '--host', 'h0'], /--all and --host go alone/],
  ];
  for (const [args, message] of refusals) {
    const run = await cli(...args);
    assert.equal(run.status, 2, args.join(' '));
    assert.match(run.stderr, message, args.join(' '));
  }
});

test("one read answer's states inflate to their recorded sizes twice and one state's bound, together: past that they fail alone, uninflated", async () => {
  await withFleet(0, async (fleet) => {
    const host = await fleet.store.addHost({
      uuid: randomUUID(),
      name: 'h',
      url: 'http://127.0.0.1:9',
      publicKey: Buffer.alloc(32, 1).toString('base64'),
      keyId: '0'.repeat(16),
      certificate: null,
      state: 'Connected',
      lastSeenAt: 0,
    });
    // Twenty recorded NVRAMs of 100 bytes; a hostile agent answers each with 64 MiB of zeros, gzipped to ~64 KiB.
    const rows: VmHostFile[] = Array.from({ length: 20 }, (_, i) => ({
      uuid: randomUUID(),
      vmUuid: randomUUID(),
      hostUuid: host.uuid,
      type: 'NvRam',
      path: `/r/nvram/vm${i}_VARS.fd`,
      kind: 'file',
      sha256: '0'.repeat(64),
      size: 100,
      lastSyncAt: 0,
    }));
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const bomb = {
      content: gzipSync(zeros).toString('base64'),
      encoding: 'gzip' as const,
      sha256: createHash('sha256').update(zeros).digest('hex'),
      size: zeros.length,
    };
    const agents = {
      send: (_target: unknown, kind: string) =>
        Promise.resolve({
          requestId: randomUUID(),
          hostUuid: host.uuid,
          kind,
          results: rows.map((row) => ({
            op: 'read',
            type: row.type,
            path: row.path,
            status: 'read',
            kind: 'file',
            ...bomb,
          })),
        }),
    } as unknown as AgentClient;
    const reads = await readOnHost({ ...fleet.deps, agents }, host, rows);
    // 256 MiB and 2 × 2,000 bytes: four of them, in their order.
    assert.deepEqual(
      reads.map((r) => r.outcome.status),
      [...Array.from({ length: 4 }, () => 'read'), ...Array.from({ length: 16 }, () => 'failed')],
    );
    assert.match(
      (reads[4]?.outcome as { reason?: string }).reason ?? '',
      /the agent's answer claims 67108864 bytes, more than is left to inflate/,
    );
  });
});
