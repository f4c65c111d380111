// `hostfiles demo`: three real agents on loopback, VMs with TPMs and NVRAM, a host down during the removal,
// the outbox drained by the retry worker when it returns, and the final state checked against the disks.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import {
  dirState,
  fileState,
  addHost,
  addTpm,
  addVm,
  createRetryWorker,
  createVmQueue,
  removeTpms,
  writeFile,
  type FlowDeps,
} from '../flows/index.js';
import { startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import { createSqliteStore, type Store } from '../store/index.js';

interface DemoVm {
  readonly name: string;
  readonly home: number;
  readonly previous?: number;
  readonly uefi: boolean;
  readonly secureBoot: boolean;
}

const VMS: readonly DemoVm[] = [
  { name: 'web-1', home: 0, uefi: true, secureBoot: false },
  { name: 'db-1', home: 1, uefi: true, secureBoot: true },
  { name: 'legacy-1', home: 2, uefi: false, secureBoot: false },
  { name: 'web-2', home: 1, previous: 2, uefi: true, secureBoot: false },
  { name: 'vault-1', home: 2, uefi: true, secureBoot: true },
  { name: 'batch-1', home: 0, previous: 1, uefi: true, secureBoot: false },
];
const DOWN = 2;

export interface DemoResult {
  readonly ok: boolean;
  /** set when a signal stopped the demo before its end (SIGINT, SIGTERM): nothing of it is left running or on disk */
  readonly interrupted?: string;
}

/** Thrown inside the demo's steps once it was told to stop: they go no further. */
class Stopped extends Error {}

/**
 * `stop`: aborted (SIGINT, SIGTERM) the demo stops where it is, and what it started goes all the same: its agents are
 * stopped and its directory (their keys, the database) removed before it answers `interrupted`.
 */
export async function runDemo(print: (line: string) => void, stop?: AbortSignal): Promise<DemoResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-demo-'));
  const key = generateSigningKey();
  const agents: LocalAgent[] = [];
  const client = createAgentClient({ key, timeoutMs: 2000, retries: 1, now: Date.now, backoffMs: 100 });
  let store: Store | undefined;
  let worker: ReturnType<typeof createRetryWorker> | undefined;
  const alive = (): void => {
    if (stop?.aborted === true) throw new Stopped();
  };
  const start = async (agent: LocalAgent | Promise<LocalAgent>): Promise<LocalAgent> => {
    const started = await agent;
    if (!agents.includes(started)) agents.push(started);
    alive();
    return started;
  };
  const steps = async (): Promise<DemoResult> => {
    print(`demo directory ${dir}; controller key ${key.keyId}`);
    for (const name of ['host-a', 'host-b', 'host-c']) await start(startLocalAgent(dir, name, key.publicKey));
    store = await createSqliteStore(join(dir, 'hostfiles.db'));
    const deps: FlowDeps = {
      store,
      agents: client,
      queue: createVmQueue(),
      now: Date.now,
      random: Math.random,
      concurrency: 8,
      retryBaseMs: 200,
      retryMaxMs: 2000,
    };
    for (const agent of agents) {
      alive();
      const host = await addHost(deps, { name: agent.name, url: agent.url, expectKey: agent.publicKey });
      print(`host ${host.name} added at ${host.url}, agent key ${host.keyId} and its TLS certificate pinned`);
    }
    const uuids = await provision(deps, agents, print, alive);

    const down = agents[DOWN] ?? agents[0];
    if (down === undefined) throw new Error('no agents');
    await down.stop();
    alive();
    print(`\n${down.name} is DOWN. Removing the TPMs of all ${VMS.length} VMs in one call…`);
    const report = await removeTpms(
      deps,
      VMS.map((vm) => vm.name),
    );
    print(`${report.commands} commands sent, one per host:`);
    for (const host of report.hosts) {
      print(`  ${host.hostName}: ${host.error === undefined ? 'answered' : `NOT REACHED (${host.error})`}`);
      for (const file of host.files) print(`    ${file.status.padEnd(11)} ${file.type.padEnd(8)} ${file.path}`);
    }
    for (const vm of report.vms) print(`  ${vm.vmName.padEnd(9)} NVRAM ${vm.nvram}; key binding ${vm.binding}`);
    const pending = await store.listPendingDeletions();
    print(`\npending deletions (the outbox): ${pending.length}`);
    for (const row of pending) print(`  ${row.type.padEnd(8)} ${row.path}  (${row.lastError ?? ''})`);

    alive();
    print(`\n${down.name} comes back; the retry worker drains the outbox…`);
    await start(down.start().then(() => down));
    worker = createRetryWorker(deps, {
      healthIntervalMs: 200,
      onPass: (pass) => {
        print(
          `  retry pass: ${pass.confirmed} confirmed, ${pass.stillPending} still pending, bindings detached: ${pass.detached.length}`,
        );
      },
    });
    worker.start();
    await waitUntil(async () => (await deps.store.listPendingDeletions()).length === 0, 30_000, alive);
    await worker.stop();
    return { ok: await verify(deps.store, agents, uuids, print) };
  };
  const running = steps();
  // The steps' own end once the demo was stopped (a call cut short, Stopped) is not its outcome: `interrupted` is.
  running.catch(() => undefined);
  const interrupted = new Promise<DemoResult>((resolve) => {
    stop?.addEventListener(
      'abort',
      () => {
        resolve({ ok: false, interrupted: String(stop.reason) });
      },
      { once: true },
    );
  });
  try {
    return await Promise.race([running, interrupted]);
  } finally {
    await client.close();
    // Stopped, the steps end at their next look at `alive` or at their next call to an agent (the client is closed):
    // none starts an agent, writes to the database or the directory after this.
    if (stop?.aborted === true) await running.then(noop, noop);
    await worker?.stop();
    await store?.close();
    await Promise.all(agents.map((agent) => agent.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

const noop = (): void => undefined;

async function provision(
  deps: FlowDeps,
  agents: readonly LocalAgent[],
  print: (line: string) => void,
  alive: () => void,
): Promise<Map<string, string>> {
  const uuids = new Map<string, string>();
  print('');
  for (const spec of VMS) {
    alive();
    const home = agents[spec.home];
    if (home === undefined) throw new Error('bad demo host');
    const vm = await addVm(deps, {
      name: spec.name,
      host: home.name,
      bootMode: spec.uefi ? 'UEFI' : 'Legacy',
      secureBoot: spec.secureBoot,
    });
    uuids.set(spec.name, vm.uuid);
    await addTpm(deps, spec.name, 'demo-kms');
    const places = spec.previous === undefined ? [spec.home] : [spec.previous, spec.home];
    for (const index of places) {
      const agent = agents[index];
      if (agent === undefined) continue;
      // libvirt's layout: <TpmState root>/<domain uuid>/tpm2/tpm2-00.permall, written whole as one directory.
      await writeFile(deps, {
        vm: spec.name,
        host: agent.name,
        type: 'TpmState',
        path: join(agent.roots.TpmState, vm.uuid),
        state: dirState([{ path: 'tpm2/tpm2-00.permall', content: Buffer.from(`swtpm state of ${spec.name}`) }]),
      });
    }
    if (spec.uefi) {
      const path = join(home.roots.NvRam, `${spec.name}_VARS.fd`);
      await writeFile(deps, { vm: spec.name, type: 'NvRam', path, state: fileState(Buffer.alloc(128 * 1024, 0xff)) });
    }
    const where = places.map((i) => agents[i]?.name).join(' and ');
    print(
      `VM ${spec.name.padEnd(9)} ${spec.uefi ? 'UEFI' : 'Legacy'}${spec.secureBoot ? ' + secure boot' : ''}: TPM state on ${where}${spec.uefi ? `, NVRAM on ${home.name}` : ''}`,
    );
  }
  return uuids;
}

/** The final state, read from the disks themselves: no TPM state anywhere, NVRAM exactly where secure boot needs it. */
async function verify(
  store: Store,
  agents: readonly LocalAgent[],
  uuids: Map<string, string>,
  print: (line: string) => void,
): Promise<boolean> {
  print('\nfinal state, checked against the disks:');
  let ok = true;
  for (const spec of VMS) {
    const uuid = uuids.get(spec.name) ?? '';
    const tpmLeft = agents.filter((a) => existsSync(join(a.roots.TpmState, uuid))).map((a) => a.name);
    const nvramOn = agents.filter((a) => existsSync(join(a.roots.NvRam, `${spec.name}_VARS.fd`))).map((a) => a.name);
    const wantNvram = spec.uefi && spec.secureBoot ? [agents[spec.home]?.name ?? ''] : [];
    const good = tpmLeft.length === 0 && nvramOn.join() === wantNvram.join() && (await store.getTpmByVm(uuid)) === null;
    ok &&= good;
    print(
      `  ${good ? 'OK  ' : 'FAIL'} ${spec.name.padEnd(9)} TPM state on disk: ${tpmLeft.join(', ') || 'none'}; NVRAM on disk: ${nvramOn.join(', ') || 'none'} (expected ${wantNvram.join(', ') || 'none'})`,
    );
  }
  const stray = agents.flatMap((a) => readdirSync(a.roots.TpmState).map((name) => `${a.name}:${name}`));
  const bindings = await store.listKeyBindings();
  const pending = await store.listPendingDeletions();
  print(
    `  TPM-state directories left on any host: ${stray.length}; key bindings left: ${bindings.length}; pending deletions: ${pending.length}`,
  );
  ok &&= stray.length === 0 && bindings.length === 0 && pending.length === 0;
  print(ok ? '\ndemo passed: no TPM state left, NVRAM kept exactly where secure boot needs it.' : '\ndemo FAILED');
  return ok;
}

async function waitUntil(done: () => Promise<boolean>, timeoutMs: number, alive: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    alive();
    if (Date.now() > deadline) throw new Error('the retry worker did not drain the outbox in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
