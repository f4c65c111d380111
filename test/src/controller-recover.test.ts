// Restore after host loss, with real agents: the VM's host is killed, `vm recover` puts its newest generations on
// another host and moves it there; the old host comes back with its stale copy, which is deleted through the outbox
// and never captured, while the newer state survives and the history holds the generations of both hosts.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addTpm,
  addVm,
  checkHost,
  dirState,
  fileState,
  isFlowError,
  recoverVm,
  reconcileHost,
  resumeRecover,
  RECOVER_VM,
  retryPendingDeletions,
  syncVm,
  writeFile,
} from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { assertRecovered } from './support/recover.js';

/** libvirt's layout on agent `i`: `<TpmState>/<uuid>/` (a directory) and `<NvRam>/<name>_VARS.fd`. */
const layout = (fleet: Fleet, i: number, uuid: string) => ({
  tpm: join(roots(fleet, i).TpmState, uuid),
  vars: join(roots(fleet, i).NvRam, 'vm1_VARS.fd'),
});

test('host lost, VM recovered elsewhere, old host back: its stale copy deleted, the newer state survives', async () => {
  await withFleet(2, async (fleet) => {
    const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    await addTpm(fleet.deps, 'vm1', 'kms-1');
    const old = layout(fleet, 0, vm.uuid);
    const permall = randomBytes(2048);
    const tpm = dirState([{ path: 'tpm2-00.permall', content: permall }]);
    await writeFile(fleet.deps, { vm: 'vm1', type: 'TpmState', path: old.tpm, state: tpm });
    await writeFile(fleet.deps, { vm: 'vm1', type: 'NvRam', path: old.vars, state: fileState(randomBytes(512)) });
    // The VM ran on host0: its NVRAM changed, a sync captured it (generation 2).
    const onHost0 = randomBytes(512);
    writeFileSync(old.vars, onHost0);
    assert.deepEqual(
      (await syncVm(fleet.deps, 'vm1')).backups.map((b) => [b.type, b.generation]),
      [
        ['NvRam', 2],
        ['TpmState', 1],
      ],
    );

    // host0 is lost: its agent killed, its disk as it was. Its machine still refuses connections, so it is up as far
    // as anyone can tell and the VM may still run there: not lost until the operator says so.
    await fleet.agents[0]?.stop('SIGKILL');
    await assert.rejects(
      recoverVm(fleet.deps, 'vm1', 'host1'),
      (error) =>
        isFlowError(error) &&
        /^host_in_use: VM vm1's host host0 refuses connections: the machine is up, only its agent is down \(the VM may still run there\): recover is for a lost host.*--host-lost/.test(
          error.message,
        ),
    );
    assert.equal((await fleet.store.getVm(vm.uuid))?.epoch, 0, 'refused: nothing moved');
    const report = await recoverVm(fleet.deps, 'vm1', 'host1', { hostLost: true });
    const now = layout(fleet, 1, vm.uuid);
    assert.deepEqual(
      report.files.map((f) => [f.type, f.path, f.status]),
      [
        ['NvRam', now.vars, 'written'],
        ['TpmState', now.tpm, 'written'],
      ],
    );
    assert.deepEqual(report.generations, [
      { type: 'NvRam', generation: 2 },
      { type: 'TpmState', generation: 1 },
    ]);
    assert.equal(report.epoch, 1);
    assert.deepEqual(report.scheduled.map((s) => s.path).sort(), [old.tpm, old.vars].sort());
    assert.equal(Buffer.compare(readFileSync(now.vars), onHost0), 0, 'the newest generation, byte-identical');
    assert.equal(Buffer.compare(readFileSync(join(now.tpm, 'tpm2-00.permall')), permall), 0);
    const moved = await fleet.store.getVm(vm.uuid);
    assert.deepEqual([moved?.hostUuid, moved?.epoch], [report.to.hostUuid, 1]);
    assert.deepEqual(
      (await fleet.store.listFilesByVm(vm.uuid)).map((f) => f.path).sort(),
      [now.tpm, now.vars].sort(),
      "host0's states forgotten",
    );
    const op = await fleet.store.getOperation(report.operationId);
    assert.deepEqual([op?.kind, op?.state], ['vm.recover', 'done']);
    // While host0 is down its deletions wait in the outbox.
    await retryPendingDeletions(fleet.deps, { all: true });
    assert.equal((await fleet.store.listPendingDeletions({ vmUuid: vm.uuid })).length, 2);

    // The VM runs on host1: a newer NVRAM, captured from there (generation 3).
    const onHost1 = randomBytes(512);
    writeFileSync(now.vars, onHost1);
    await syncVm(fleet.deps, 'vm1');

    // host0 comes back with its stale copy: never read, never captured, deleted by the retry.
    await fleet.restart(0);
    assert.ok(existsSync(old.vars) && existsSync(old.tpm), 'the stale copy is still on its disk');
    const sync = await syncVm(fleet.deps, 'vm1');
    assert.deepEqual(
      sync.files.map((f) => f.hostName),
      ['host1', 'host1'],
      'host0 is not read',
    );
    assert.deepEqual(sync.fenced, []);
    const retried = await retryPendingDeletions(fleet.deps, { all: true });
    assert.deepEqual([retried.confirmed, retried.stillPending], [2, 0], JSON.stringify(retried));
    assert.equal(existsSync(old.vars) || existsSync(old.tpm), false, 'the stale copy is deleted');
    assert.equal(Buffer.compare(readFileSync(now.vars), onHost1), 0, 'the newer state survives');
    const reconciled = await reconcileHost(fleet.deps, 'host0');
    assert.deepEqual([reconciled.orphans, reconciled.unknown], [[], []], 'nothing left behind on host0');

    // The history holds both hosts' generations: the old one's and the new one's.
    const history = (await fleet.store.listGenerations(vm.uuid, 'NvRam')).map((g) => [g.generation, g.hostUuid]);
    assert.deepEqual(history, [
      [3, report.to.hostUuid],
      [2, report.from?.hostUuid],
      [1, report.from?.hostUuid],
    ]);
    assert.equal(
      (await fleet.store.getKeyBinding((await fleet.store.getTpmByVm(vm.uuid))?.uuid ?? ''))?.state,
      'attached',
    );
  });
});

/**
 * A listener on 127.0.0.1:`port` that drops every new connection attempt unanswered, as a host gone from the network
 * behind a router that drops its packets does: a process that listens with a backlog of 1 and never accepts (its
 * event loop blocked), its queue filled by two connections of ours, so the kernel drops every SYN after them
 * (tcp_conn_request: accept queue full) and the connecting side hears nothing until its own timeout.
 */
async function silentListener(port: number): Promise<{ close(): void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer();
       s.listen({ port: ${String(port)}, host: '127.0.0.1', backlog: 1 }, () => {
         process.stdout.write('listening\\n');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const fillers: Socket[] = [];
  const close = (): void => {
    for (const socket of fillers) socket.destroy();
    child.kill('SIGKILL');
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => {
        resolve();
      });
      child.once('exit', (code) => {
        reject(new Error(`the silent listener exited ${String(code)}`));
      });
    });
    for (let i = 0; i < 2; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      fillers.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
    }
    // The kernel's own word that the queue is full: 2 waiting (Recv-Q) past a backlog of 1 (Send-Q).
    const ss = spawnSync('ss', ['-Hltn', `sport = :${String(port)}`], { encoding: 'utf8' });
    assert.match(ss.stdout, /^LISTEN\s+2\s+1\s/, `ss: ${ss.stdout}${ss.stderr}`);
  } catch (error) {
    close();
    throw error;
  }
  return { close };
}

test('a host whose address answers nothing at all (every SYN dropped): recover needs no --host-lost', async () => {
  await withFleet(2, async (fleet) => {
    const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    const old = layout(fleet, 0, vm.uuid);
    const content = randomBytes(512);
    await writeFile(fleet.deps, { vm: 'vm1', type: 'NvRam', path: old.vars, state: fileState(content) });
    await fleet.stop(0);
    const silent = await silentListener(fleet.agents[0]?.port ?? NaN);
    try {
      // What host0 does now: the agent call times out (3 s here), with no code from the kernel.
      const host0 = await fleet.store.getHostByName('host0');
      assert.ok(host0 !== null);
      const health = await checkHost(fleet.deps, host0);
      assert.deepEqual([health.state, health.timedOut, health.silent], ['Disconnected', true, true]);
      assert.match(health.reason ?? '', /^timeout: /);
      // So recover makes a bare connection after its own call times out, which gets nothing in its 3 s either.
      const report = await recoverVm(fleet.deps, 'vm1', 'host1');
      assertRecovered(report, layout(fleet, 1, vm.uuid).vars, old.vars, content);
    } finally {
      silent.close();
    }
  });
});

test('recover refusals: no generation, an unknown host; a host that cannot be written moves nothing', async () => {
  await withFleet(2, async (fleet) => {
    const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    await assert.rejects(recoverVm(fleet.deps, 'vm1', 'host1'), /VM vm1 has no generation to recover/);
    await assert.rejects(recoverVm(fleet.deps, 'vm1', 'nohost'), /no host nohost/);
    await writeFile(fleet.deps, {
      vm: 'vm1',
      type: 'NvRam',
      path: layout(fleet, 0, vm.uuid).vars,
      state: fileState(randomBytes(64)),
    });
    // Onto the host it lives on, where its state may be newer than any backup: refused, nothing written.
    const newer = randomBytes(64);
    writeFileSync(layout(fleet, 0, vm.uuid).vars, newer);
    await assert.rejects(
      recoverVm(fleet.deps, 'vm1', 'host0'),
      (error) =>
        isFlowError(error) &&
        error.code === 'conflict' &&
        /VM vm1 lives on host0 already: .*run restore/.test(error.message),
    );
    assert.equal(Buffer.compare(readFileSync(layout(fleet, 0, vm.uuid).vars), newer), 0, 'not written over');
    assert.equal((await fleet.store.getVm(vm.uuid))?.epoch, 0);
    // Onto another host while its own answers: it is not lost, and its newer state would be forgotten and deleted.
    await assert.rejects(
      recoverVm(fleet.deps, 'vm1', 'host1'),
      (error) =>
        isFlowError(error) &&
        error.code === 'conflict' &&
        /^host_in_use: VM vm1's host host0 answers: recover is for a lost host.*say so \(--host-lost\)$/.test(
          error.message,
        ),
    );
    assert.equal(Buffer.compare(readFileSync(layout(fleet, 0, vm.uuid).vars), newer), 0, 'left as it is');
    assert.equal(existsSync(layout(fleet, 1, vm.uuid).vars), false, 'nothing written on host1');
    assert.deepEqual(await fleet.store.listPendingDeletions(), [], 'nothing scheduled');
    assert.equal((await fleet.store.getVm(vm.uuid))?.epoch, 0);
    await fleet.stop(0);
    // Something at host0's address that closes every connection at once, or takes it and never answers (a hung
    // agent, on a machine that may still run the VM): someone is there, so not lost either.
    const refusedWith = async (onConnection: (socket: Socket, peer: Server) => void, reason: RegExp): Promise<void> => {
      const sockets = new Set<Socket>();
      const peer = createServer((socket) => {
        sockets.add(socket);
        onConnection(socket, peer);
      });
      await new Promise<void>((resolve) => peer.listen(fleet.agents[0]?.port, '127.0.0.1', resolve));
      try {
        await assert.rejects(
          recoverVm(fleet.deps, 'vm1', 'host1'),
          (error) => isFlowError(error) && reason.test(error.message),
        );
      } finally {
        for (const socket of sockets) socket.destroy();
        if (peer.listening) await new Promise((resolve) => peer.close(resolve));
      }
    };
    await refusedWith(
      (socket) => socket.destroy(),
      /^host_in_use: VM vm1's host host0 answers, but not as its agent \(/,
    );
    await refusedWith(
      () => undefined,
      /^host_in_use: VM vm1's host host0 accepts connections, but its agent did not answer in time \(timeout: /,
    );
    // A hung agent that goes away (killed, restarted) between the call that timed out and the bare connection made
    // after it: the refusal of that connection is the machine answering.
    await refusedWith((_socket, peer) => {
      peer.close();
    }, /^host_in_use: VM vm1's host host0 did not answer in time, then answered a bare connection with ECONNREFUSED: the machine is up: /);
    assert.equal(existsSync(layout(fleet, 1, vm.uuid).vars), false, 'nothing written on host1');
    // host0 given up (nothing listens there now; its machine refuses connections). The new host refuses the write
    // (a state it does not know at libvirt's path): nothing moves.
    writeFileSync(layout(fleet, 1, vm.uuid).vars, 'libvirt made this');
    const report = await recoverVm(fleet.deps, 'vm1', 'host1', { hostLost: true });
    assert.equal(report.epoch, null);
    assert.deepEqual(report.scheduled, []);
    assert.deepEqual(
      report.files.map((f) => f.status),
      ['failed'],
    );
    const still = await fleet.store.getVm(vm.uuid);
    assert.equal((await fleet.store.getHost(still?.hostUuid ?? ''))?.name, 'host0', 'not moved');
    assert.equal(still?.epoch, 0);
    assert.equal((await fleet.store.getOperation(report.operationId))?.state, 'failed');
    // And the host down: refused before anything is journaled (libvirt's layout is asked of it first).
    await fleet.stop(1);
    await assert.rejects(
      recoverVm(fleet.deps, 'vm1', 'host1', { hostLost: true }),
      new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${String(fleet.agents[1]?.port)}`),
    );
    assert.equal((await fleet.store.getVm(vm.uuid))?.epoch, 0);
  });
});

test('a recover the controller was killed in, resumed after the VM was recovered elsewhere, ends failed: nothing moves', async () => {
  await withFleet(3, async (fleet) => {
    const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
    const old = layout(fleet, 0, vm.uuid);
    await writeFile(fleet.deps, { vm: 'vm1', type: 'NvRam', path: old.vars, state: fileState(randomBytes(512)) });
    const [host0, host1] = await Promise.all(['host0', 'host1'].map((name) => fleet.store.getHostByName(name)));
    assert.ok(host0 && host1);
    await fleet.agents[0]?.stop('SIGKILL');
    // A recover onto host1, killed after it journaled (as `vm recover` journals it), before anything moved...
    // A recover of the VM's NVRAM generation `generation` as `vm recover` journals it, never run.
    const journaled = (from: string, epoch: number, generation: number) =>
      fleet.store.startOperation({
        id: randomUUID(),
        kind: RECOVER_VM,
        subject: vm.uuid,
        step: 'restore',
        input: { vm: vm.uuid, from, epoch, to: host1.uuid, generations: [{ type: 'NvRam', generation }], force: false },
      });
    const orphan = await journaled(host0.uuid, 0, 1);
    // ...then the operator recovered it onto host2 instead, where it runs and its state moved on.
    const elsewhere = await recoverVm(fleet.deps, 'vm1', 'host2', { hostLost: true });
    assert.equal(elsewhere.epoch, 1);
    const onHost2 = layout(fleet, 2, vm.uuid).vars;
    writeFileSync(onHost2, 'newer, on host2');
    await syncVm(fleet.deps, 'vm1');

    // The orphan, resumed: it must neither move the VM back nor forget host2's newer state.
    assert.equal(await resumeRecover(fleet.deps, orphan), 'failed');
    const ended = await fleet.store.getOperation(orphan.id);
    assert.equal(ended?.state, 'failed');
    assert.match(JSON.stringify(ended.report), /moved or was restored since the recover began/);
    const now = await fleet.store.getVm(vm.uuid);
    assert.deepEqual([now?.hostUuid, now?.epoch], [elsewhere.to.hostUuid, 1]);
    assert.deepEqual(
      (await fleet.store.listPendingDeletions({ vmUuid: vm.uuid })).map((p) => p.path),
      [old.vars],
      "only host0's stale copy is pending",
    );
    assert.equal(readFileSync(onHost2, 'utf8'), 'newer, on host2');
    assert.equal(existsSync(layout(fleet, 1, vm.uuid).vars), false, 'nothing written on host1');

    // One whose generation was pruned since (or whose host is gone) ends failed too, instead of running forever.
    const pruned = await journaled(elsewhere.to.hostUuid, 1, 99);
    assert.equal(await resumeRecover(fleet.deps, pruned), 'failed');
    assert.match(JSON.stringify((await fleet.store.getOperation(pruned.id))?.report), /generation 99 is gone/);
  });
});
