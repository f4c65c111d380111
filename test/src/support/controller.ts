// A controller's flows wired to a real SQLite file and real agents, as the CLI and API wire them.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  addHost,
  createAgentClient,
  createSqliteStore,
  createVmQueue,
  fileState,
  type BackupFile,
  type FileType,
  type FlowDeps,
  type NewBackupFile,
  type Store,
} from '@hostfiles/controller';
import { generateSigningKey, type SigningKey } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle, type AgentSetup } from './agent-process.js';

export interface Fleet {
  readonly dir: string;
  readonly key: SigningKey;
  readonly store: Store;
  readonly deps: FlowDeps;
  readonly agents: AgentHandle[];
  /** stops agent i (SIGTERM) */
  stop(i: number): Promise<void>;
  /** starts agent i again on the same port, roots and key */
  restart(i: number): Promise<void>;
  close(): Promise<void>;
}

export interface FleetOptions {
  readonly timeoutMs?: number;
  readonly retries?: number;
  /** more agent config (e.g. `ownership`), the same for every agent */
  readonly agentConfig?: Record<string, unknown>;
}

export async function startFleet(hosts: number, options: FleetOptions = {}): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-fleet-'));
  const key = generateSigningKey();
  const config = options.agentConfig;
  const setups: AgentSetup[] = Array.from({ length: hosts }, () =>
    setupAgent({ controllerKey: key, ...(config === undefined ? {} : { config }) }),
  );
  const agents = await Promise.all(setups.map((setup) => startAgent(setup)));
  const store = await createSqliteStore(join(dir, 'hostfiles.db'));
  const deps: FlowDeps = {
    store,
    agents: createAgentClient({
      key,
      timeoutMs: options.timeoutMs ?? 3000,
      retries: options.retries ?? 0,
      now: Date.now,
      backoffMs: 0,
    }),
    queue: createVmQueue(),
    now: Date.now,
    random: () => 0.5,
    concurrency: 8,
    retryBaseMs: 0,
    retryMaxMs: 0,
  };
  const fleet: Fleet = {
    dir,
    key,
    store,
    deps,
    agents,
    async stop(i) {
      await agents[i]?.stop();
    },
    async restart(i) {
      const old = agents[i];
      if (old === undefined) throw new RangeError(`no agent ${i}`);
      const setup = setupAgent({
        dir: old.setup.dir,
        controllerKey: key,
        config: {
          ...config,
          listen: { ...(config?.['listen'] as object | undefined), host: '127.0.0.1', port: old.port },
          hostUuid: old.setup.hostUuid,
        },
      });
      agents[i] = await startAgent(setup);
    },
    async close() {
      await deps.agents.close();
      await Promise.all(agents.map((agent) => agent.stop()));
      await store.close();
      for (const agent of agents) removeSetup(agent.setup);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fleet;
}

/** The controller running now: the first one, then the one started again after a crash (see crash-controller). */
export interface Controller {
  deps: FlowDeps;
}

/** A fleet of `hosts` agents added as host0, host1, …; everything stopped and removed afterwards. */
export async function withFleet(
  hosts: number,
  fn: (fleet: Fleet, ctl: Controller) => Promise<void>,
  options: FleetOptions = {},
): Promise<void> {
  const fleet = await startFleet(hosts, options);
  const ctl: Controller = { deps: fleet.deps };
  try {
    for (const [i, agent] of fleet.agents.entries()) {
      await addHost(fleet.deps, { name: `host${i}`, url: agent.url, expectKey: agent.publicKey });
    }
    await fn(fleet, ctl);
  } finally {
    // A controller restarted after a crash has a store of its own.
    if (ctl.deps.store !== fleet.store) await ctl.deps.store.close();
    await fleet.close();
  }
}

/** The files of a backup, decoded, by path ('' for a file state). */
export async function backupFiles(store: Store, backup: BackupFile): Promise<Map<string, Buffer>> {
  const entries = await store.listBackupEntries(backup.uuid);
  return new Map(
    entries.map((e) => [e.path, e.encoding === 'gzip' ? gunzipSync(e.content) : Buffer.from(e.content)] as const),
  );
}

/** The bytes of a file state's backup. */
export async function backupBytes(store: Store, backup: BackupFile): Promise<Buffer> {
  const bytes = (await backupFiles(store, backup)).get('');
  if (bytes === undefined) throw new Error(`backup ${backup.uuid} is not a file state`);
  return bytes;
}

/** A backup of a file state, stored as it would travel. */
export function newFileBackup(vmUuid: string, type: FileType, content: Buffer): NewBackupFile {
  const state = fileState(content);
  return { uuid: randomUUID(), vmUuid, type, ...state, source: 'sync', hostUuid: null };
}

/** The roots of agent `i` of the fleet. */
export function roots(fleet: Fleet, i: number): { readonly TpmState: string; readonly NvRam: string } {
  const setup = fleet.agents[i]?.setup;
  if (setup === undefined) throw new RangeError(`no agent ${i}`);
  return setup.roots;
}

/** Puts `content` at `path` behind the agent's back (as libvirt or an operator would), making its directories. */
export function plant(path: string, content: Buffer): Buffer {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return content;
}
