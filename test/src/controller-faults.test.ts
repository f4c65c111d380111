// Faulty hosts with real agents beside them and a real SQLite file: one host answers every request with an error,
// one accepts the connection and never answers. A removal (and a sync) still completes, bounded by the agent
// client's timeout: the healthy hosts' files are handled, the faulty hosts' files wait in the outbox with why.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  fileState,
  addHost,
  isAgentCallError,
  addTpm,
  addVm,
  removeTpms,
  retryPendingDeletions,
  syncVm,
  writeFile,
  type AgentClient,
  type FileType,
  type FlowDeps,
  type Host,
  type Vm,
} from '@hostfiles/controller';
import { generateSigningKey } from '@hostfiles/shared';
import { backupBytes, startFleet, type Fleet } from './support/controller.js';

/** The agent client's timeout per attempt in these tests; the real agents answer in a few ms. */
const TIMEOUT_MS = 500;

interface FakeHost {
  readonly host: Host;
  /** requests received */
  readonly requests: () => number;
  close(): Promise<void>;
}

/**
 * A node:http server on 127.0.0.1 port 0 registered as a host, with a pinned key of its own that it never signs
 * with: `error` answers 500 with an agent's error body, `silent` reads the request and never answers.
 */
async function fakeHost(fleet: Fleet, name: string, behaviour: 'error' | 'silent'): Promise<FakeHost> {
  let requests = 0;
  const held: ServerResponse[] = [];
  const server = createServer((request, response) => {
    requests++;
    request.resume();
    if (behaviour === 'silent') {
      held.push(response);
      return;
    }
    response.writeHead(500, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: { code: 'internal', message: 'disk on fire' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const key = generateSigningKey();
  const host = await fleet.store.addHost({
    uuid: randomUUID(),
    name,
    url: `http://127.0.0.1:${port}`,
    publicKey: key.publicKey,
    keyId: key.keyId,
    certificate: null,
    state: 'Connected',
    lastSeenAt: Date.now(),
  });
  return {
    host,
    requests: () => requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error === undefined) resolve();
          else reject(error);
        });
      });
    },
  };
}

interface Faulty {
  readonly fleet: Fleet;
  readonly broken: FakeHost;
  readonly silent: FakeHost;
}

async function withFaultyFleet(fn: (faulty: Faulty) => Promise<void>): Promise<void> {
  const fleet = await startFleet(2, { timeoutMs: TIMEOUT_MS, retries: 0 });
  const fakes: FakeHost[] = [];
  try {
    for (const [i, agent] of fleet.agents.entries()) {
      await addHost(fleet.deps, { name: `host${i}`, url: agent.url, expectKey: agent.publicKey });
    }
    fakes.push(await fakeHost(fleet, 'broken', 'error'), await fakeHost(fleet, 'silent', 'silent'));
    const [broken, silent] = fakes as [FakeHost, FakeHost];
    await fn({ fleet, broken, silent });
  } finally {
    for (const fake of fakes) await fake.close();
    await fleet.close();
  }
}

/** One agent call of a flow: to which host, and when it started and ended in the order of all calls' events. */
interface Call {
  readonly host: string;
  readonly started: number;
  ended?: number;
  timedOut?: boolean;
}

/**
 * The deps with an agent client that records its calls: whether hosts are reached at once is then read from the order
 * of the calls' starts and ends, not from the wall clock (which a busy machine stretches).
 */
function recordingCalls(deps: FlowDeps): { deps: FlowDeps; calls: Call[] } {
  const calls: Call[] = [];
  let events = 0;
  const agents: AgentClient = {
    info: (endpoint) => deps.agents.info(endpoint),
    certificate: (url) => deps.agents.certificate(url),
    close: () => deps.agents.close(),
    send: async (target, kind, body, options) => {
      const call: Call = { host: target.uuid, started: events++ };
      calls.push(call);
      try {
        return await deps.agents.send(target, kind, body, options);
      } catch (error) {
        call.timedOut = isAgentCallError(error) && error.failure === 'timeout';
        throw error;
      } finally {
        call.ended = events++;
      }
    },
  };
  return { deps: { ...deps, agents }, calls };
}

/** The silent host cost one timeout and held up no host's first call: every host was reached before it timed out. */
function assertReachedAtOnce(calls: readonly Call[], silent: FakeHost): void {
  const toSilent = calls.filter((c) => c.host === silent.host.uuid);
  assert.equal(toSilent.length, 1, 'the silent host is called once');
  const timedOut = calls.filter((c) => c.timedOut === true);
  assert.deepEqual(timedOut, toSilent, 'one timeout in the whole flow: the silent host’s');
  const silentEnd = toSilent[0]?.ended ?? -1;
  for (const host of new Set(calls.map((c) => c.host))) {
    const first = calls.find((c) => c.host === host);
    assert.ok(first !== undefined && first.started < silentEnd, `host ${host} reached before the silent one timed out`);
  }
}

/** A row of the VM's file on a fake host, as if written there when the VM lived on it. */
async function recordOn(fleet: Fleet, vm: Vm, host: Host, type: FileType): Promise<string> {
  const path = `/var/lib/libvirt/${type === 'TpmState' ? 'swtpm' : 'qemu/nvram'}/${vm.uuid}/${type}-on-${host.name}`;
  await fleet.store.upsertFile({
    uuid: randomUUID(),
    vmUuid: vm.uuid,
    hostUuid: host.uuid,
    type,
    path,
    kind: 'file',
    sha256: '0'.repeat(64),
    size: 0,
    lastSyncAt: 0,
  });
  return path;
}

/** Writes the VM's file of `type` onto a real host through its agent; answers the path. */
async function writeOn(fleet: Fleet, vm: Vm, i: number, type: FileType): Promise<string> {
  const roots = fleet.agents[i]?.setup.roots;
  assert.ok(roots);
  const path = join(roots[type], vm.uuid, type);
  await writeFile(fleet.deps, {
    vm: vm.name,
    host: `host${i}`,
    type,
    path,
    state: fileState(Buffer.from(`${type} on ${i}`)),
  });
  return path;
}

test(
  'TPM removal with a host answering errors and one never answering: the others done, theirs pending, promptly',
  {
    timeout: 30_000,
  },
  async () => {
    await withFaultyFleet(async ({ fleet, broken, silent }) => {
      const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'Legacy', secureBoot: false });
      const { tpm } = await addTpm(fleet.deps, 'vm1', 'kms-1');
      const healthy = [await writeOn(fleet, vm, 0, 'TpmState'), await writeOn(fleet, vm, 1, 'TpmState')];
      const onBroken = await recordOn(fleet, vm, broken.host, 'TpmState');
      const onSilent = await recordOn(fleet, vm, silent.host, 'TpmState');

      const recorded = recordingCalls(fleet.deps);
      const report = await removeTpms(recorded.deps, ['vm1']);

      // Hosts are reached at once: the silent one costs one client timeout, not an unbounded wait.
      assertReachedAtOnce(recorded.calls, silent);
      // One request each: the busy probe, whose failure leaves their files pending without a second wait.
      assert.deepEqual([broken.requests(), silent.requests()], [1, 1], 'each faulty host got its one command');
      assert.equal(report.commands, 2, 'deletion commands: the two healthy hosts');
      for (const path of healthy) assert.equal(existsSync(path), false, `${path} deleted`);
      const reasons = new Map(report.pending.map((p) => [p.path, p.reason]));
      assert.deepEqual([...reasons.keys()].sort(), [onBroken, onSilent].sort());
      assert.match(reasons.get(onBroken) ?? '', /^refused: internal: disk on fire/);
      assert.match(reasons.get(onSilent) ?? '', /^timeout: /);
      assert.match(report.hosts.find((h) => h.hostName === 'silent')?.error ?? '', /^timeout/);

      const rows = await fleet.store.listPendingDeletions();
      assert.deepEqual(
        rows.map((r) => [r.hostUuid, r.path, r.tpmUuid, r.lastError]).sort(),
        [
          [broken.host.uuid, onBroken, tpm.uuid, reasons.get(onBroken)],
          [silent.host.uuid, onSilent, tpm.uuid, reasons.get(onSilent)],
        ].sort(),
      );
      assert.deepEqual(
        report.vms.map((v) => v.binding),
        ['detaching'],
      );
      assert.equal((await fleet.store.getKeyBinding(tpm.uuid))?.state, 'detaching');
      assert.deepEqual(await fleet.store.listFilesByVm(vm.uuid), [], 'rows purged: the outbox remembers the files');
      // A host that does not answer is marked down (its return triggers a drain); one that answers an error is up.
      assert.equal((await fleet.store.getHost(silent.host.uuid))?.state, 'Disconnected');
      assert.equal((await fleet.store.getHost(broken.host.uuid))?.state, 'Connected');

      // The retry pass is bounded the same way and keeps both rows, with one more attempt each.
      const pass = await retryPendingDeletions(fleet.deps, { all: true });
      assert.deepEqual([pass.attempted, pass.confirmed, pass.stillPending], [2, 0, 2]);
      assert.deepEqual([broken.requests(), silent.requests()], [2, 2]);
      assert.deepEqual(
        (await fleet.store.listPendingDeletions()).map((r) => r.attempts),
        [1, 1],
      );
      assert.equal((await fleet.store.getKeyBinding(tpm.uuid))?.state, 'detaching');
    });
  },
);

test(
  'sync with a host answering errors and one never answering: the healthy files are backed up, promptly',
  {
    timeout: 30_000,
  },
  async () => {
    await withFaultyFleet(async ({ fleet, broken, silent }) => {
      const vm = await addVm(fleet.deps, { name: 'vm1', host: 'host0', bootMode: 'UEFI', secureBoot: true });
      const tpmPath = await writeOn(fleet, vm, 0, 'TpmState');
      const varsPath = await writeOn(fleet, vm, 0, 'NvRam');
      await recordOn(fleet, vm, broken.host, 'TpmState');
      await recordOn(fleet, vm, silent.host, 'NvRam');

      const recorded = recordingCalls(fleet.deps);
      const report = await syncVm(recorded.deps, 'vm1');

      assertReachedAtOnce(recorded.calls, silent);
      assert.equal(report.commands, 3);
      const outcome = (hostName: string): string[] =>
        report.files
          .filter((f) => f.hostName === hostName)
          .map((f) => (f.status === 'read' ? `${f.path} read` : `${f.status} ${f.reason}`));
      assert.deepEqual(outcome('host0').sort(), [`${tpmPath} read`, `${varsPath} read`].sort());
      assert.match(outcome('broken').join(), /^failed refused: internal: disk on fire/);
      assert.match(outcome('silent').join(), /^failed timeout: /);
      assert.deepEqual(report.notUpdated, [], "the backups come from the VM's current host, which answered");
      assert.deepEqual(
        report.backups.map((b) => [b.type, b.hostName]),
        [
          ['NvRam', 'host0'],
          ['TpmState', 'host0'],
        ],
      );
      const backups = await fleet.store.listBackupsByVm(vm.uuid);
      assert.deepEqual(
        (await Promise.all(backups.map((b) => backupBytes(fleet.store, b)))).map((bytes) => bytes.toString()),
        ['NvRam on 0', 'TpmState on 0'],
      );
    });
  },
);
