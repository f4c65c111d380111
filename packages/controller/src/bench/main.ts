// pnpm bench (controller part): remove the TPMs of N VMs spread over 20 local agents in one call (N = 200, 1,000 and
// 10,000), on SQLite and on PostgreSQL (BENCH_ENGINES), beside a fair baseline in the same run: the same deletions made by 20 bare servers (the agent package's
// bench/baseline-server.ts, one process per host as the agents are) with the same durability (moved aside, unlinked,
// emptied parents removed, the deepest directory left fsynced), the same 8-at-a-time runs of a host's ops, one
// request per host sent to all hosts at once over the same transport (mutual TLS, the server's certificate pinned,
// through the controller's own pinned undici dispatcher), each body signed by the client and verified by the server.
// What the baseline leaves out is the product's own work to beat: the database (reading the VMs, the purge, the
// outbox), the busy probe before anything is deleted, the envelopes and answers, the agents' checks and journal.
// Rounds interleaved; medians and the ratio printed per scale.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { fetch, type Agent } from 'undici';
import {
  certificateFor,
  COMMAND_CONTEXT,
  generateSigningKey,
  signedBytes,
  tlsIdentity,
  writeOp,
  type ApplyOp,
  type GeneratedKey,
  type SigningKey,
} from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { createPinnedDispatcher } from '../agents/pinned-tls.js';
import { openStore } from '../cli/context.js';
import {
  addHost,
  addTpm,
  addVm,
  createLeasedQueue,
  createVmQueue,
  registerController,
  removeTpms,
  type FlowDeps,
} from '../flows/index.js';
import { agentBin, startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import { groupBy } from '../flows/group-by.js';

const HOSTS = Number(process.env['BENCH_HOSTS'] ?? 20);
/** The store engines the flow runs on; the baseline has none. PostgreSQL at $HOSTFILES_TEST_PG_URL, a schema per round. */
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const PG_URL = process.env['HOSTFILES_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCALES = (process.env['BENCH_VMS'] ?? '200,1000,10000').split(',').map(Number);
/** Rounds per scale: 3, but one at 10,000 VMs (its setup alone takes a minute); BENCH_ROUNDS sets them all. */
const roundsAt = (vms: number): number => Number(process.env['BENCH_ROUNDS'] ?? (vms > 2000 ? 1 : 3));
const CONTENT = Buffer.alloc(16 * 1024, 0x42);
/** Setup writes per command: 100 × 16 KiB in base64 is ~2.2 MB, inside the agent's 4 MiB body limit. */
const SETUP_BATCH = 100;
/** As the controller's dispatch: at most this many deletes per command (more go in further commands). */
const DELETES_PER_COMMAND = 1000;
/** The baseline server's request header (packages/agent/src/bench/workload.ts). */
const SIGNATURE_HEADER = 'x-signature';

/** One deletion, as the product reported it: which host, and the file's path on that host. */
interface Deleted {
  readonly host: number;
  readonly path: string;
}

interface FlowResult {
  readonly ms: number;
  readonly commands: number;
  readonly deleted: readonly Deleted[];
}

/** A bare server standing for one host: its roots mirror the agent's; reached with its certificate pinned. */
interface BareHost {
  readonly roots: { readonly TpmState: string; readonly NvRam: string };
  readonly url: string;
  readonly certificate: string;
  readonly child: ChildProcess;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-cbench-'));
  const key = generateSigningKey();
  const agents: LocalAgent[] = [];
  const bare: BareHost[] = [];
  try {
    for (let i = 0; i < HOSTS; i++) agents.push(await startLocalAgent(dir, `host-${i}`, key.publicKey));
    for (let i = 0; i < HOSTS; i++) bare.push(await startBareHost(join(dir, `bare-${i}`), key));
    console.log(
      `controller benchmark: remove the TPMs of ${SCALES.join(', ')} VMs on ${HOSTS} agents in one call, ` +
        `${SCALES.map((vms) => `${roundsAt(vms)} round${roundsAt(vms) === 1 ? '' : 's'} at ${vms}`).join(', ')}, interleaved with the baseline; medians\n`,
    );
    for (const vms of SCALES) await measureScale(join(dir, `vms-${vms}`), vms, key, agents, bare);
  } finally {
    await Promise.all(agents.map((agent) => agent.stop()));
    for (const host of bare) host.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureScale(
  dir: string,
  vms: number,
  key: SigningKey,
  agents: readonly LocalAgent[],
  bare: readonly BareHost[],
): Promise<void> {
  for (const engine of ENGINES) await measureEngine(dir, vms, key, agents, bare, engine);
}

async function measureEngine(
  dir: string,
  vms: number,
  key: SigningKey,
  agents: readonly LocalAgent[],
  bare: readonly BareHost[],
  engine: 'sqlite' | 'postgres',
): Promise<void> {
  const flowTimes: number[] = [];
  const baseTimes: number[] = [];
  let last: FlowResult | undefined;
  for (let round = 0; round < roundsAt(vms); round++) {
    last = await flowRound(join(dir, `${engine}-round-${round}`), vms, key, agents, engine);
    flowTimes.push(last.ms);
    baseTimes.push(await baselineRound(last.deleted, agents, bare, key));
  }
  if (last === undefined) return;
  const flow = median(flowTimes);
  const base = median(baseTimes);
  const list = (times: readonly number[]): string => times.map((t) => t.toFixed(0)).join(', ');
  console.log(
    `${vms} VMs on ${engine}: hostfiles removeTpms ${flow.toFixed(0)} ms for ${last.deleted.length} files, ` +
      `${last.commands} commands; baseline ${base.toFixed(0)} ms; ratio ${(flow / base).toFixed(2)}× ` +
      `(rounds: flow ${list(flowTimes)} ms; baseline ${list(baseTimes)} ms)`,
  );
  const expected = HOSTS * Math.max(1, Math.ceil(last.deleted.length / HOSTS / DELETES_PER_COMMAND));
  console.log(
    `  target: within 2× of the baseline — ${flow / base <= 2 ? 'MET' : 'MISSED'}; ` +
      `${expected} commands (one per host per ${DELETES_PER_COMMAND} deletes) — ${last.commands === expected ? 'MET' : 'MISSED'}`,
  );
}

/**
 * A fresh database with `vms` VMs (TPM state on their host, NVRAM for a third of them); times removeTpms only. The
 * controller runs as serve does: registered in the database, its flows' keys held as leases there.
 */
async function flowRound(
  dir: string,
  vms: number,
  key: SigningKey,
  agents: readonly LocalAgent[],
  engine: 'sqlite' | 'postgres',
): Promise<FlowResult> {
  mkdirSync(dir, { recursive: true });
  const schema = `hf_cbench_${process.pid}_${Date.now()}`;
  const store = await openStore(engine === 'sqlite' ? join(dir, 'hostfiles.db') : `${PG_URL}?schema=${schema}`);
  const registration = await registerController(store, {
    now: Date.now,
    settings: { leaseMs: 60_000, graceMs: 92_000 },
  });
  const deps: FlowDeps = {
    store,
    agents: createAgentClient({ key, timeoutMs: 60_000, retries: 0, now: Date.now }),
    queue: createLeasedQueue(createVmQueue(), store, registration, { now: Date.now }),
    now: Date.now,
    random: Math.random,
    concurrency: 32,
    retryBaseMs: 5000,
    retryMaxMs: 600_000,
    controller: registration,
  };
  try {
    for (const agent of agents) await addHost(deps, { name: agent.name, url: agent.url, expectKey: agent.publicKey });
    const names = await setUp(deps, vms, agents);
    const start = process.hrtime.bigint();
    const report = await removeTpms(deps, names);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (report.pending.length > 0) throw new Error(`${report.pending.length} deletions unconfirmed`);
    const hostIndex = new Map(agents.map((agent, i) => [agent.name, i]));
    const deleted = report.hosts.flatMap((h) =>
      h.files
        .filter((f) => f.status === 'deleted')
        .map((f) => ({ host: hostIndex.get(h.hostName) ?? -1, path: f.path })),
    );
    return { ms, commands: report.commands, deleted };
  } finally {
    await deps.agents.close();
    await registration.retire();
    await store.close();
    if (engine === 'postgres') await dropSchema(schema);
  }
}

async function dropSchema(schema: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await admin.end();
  }
}

/** Untimed: the VMs and their TPMs recorded, their files written through the agents, the rows recorded. */
async function setUp(deps: FlowDeps, vms: number, agents: readonly LocalAgent[]): Promise<string[]> {
  const names: string[] = [];
  const perHost = new Map<number, { vmUuid: string; type: 'TpmState' | 'NvRam'; path: string }[]>();
  for (let i = 0; i < vms; i++) {
    const h = i % agents.length;
    const agent = agents[h];
    if (agent === undefined) continue;
    const name = `vm-${i}`;
    const vm = await addVm(deps, {
      name,
      host: agent.name,
      bootMode: i % 3 === 0 ? 'UEFI' : 'Legacy',
      secureBoot: false,
    });
    await addTpm(deps, name, 'kms');
    names.push(name);
    const list = perHost.get(h) ?? [];
    list.push({ vmUuid: vm.uuid, type: 'TpmState', path: join(agent.roots.TpmState, vm.uuid, 'tpm2-00.permall') });
    if (i % 3 === 0) list.push({ vmUuid: vm.uuid, type: 'NvRam', path: join(agent.roots.NvRam, vm.uuid, 'VARS.fd') });
    perHost.set(h, list);
  }
  for (const [h, list] of perHost) {
    const agent = agents[h];
    const host = agent === undefined ? null : await deps.store.getHostByName(agent.name);
    if (host === null) throw new Error('host missing');
    for (let i = 0; i < list.length; i += SETUP_BATCH) {
      const ops = list.slice(i, i + SETUP_BATCH).map((f) => writeOp(f.type, f.path, CONTENT));
      await deps.agents.send(host, 'files.apply', { ops });
    }
    await deps.store.transaction(async (tx) => {
      for (const f of list) {
        await tx.upsertFile({
          uuid: randomUUID(),
          vmUuid: f.vmUuid,
          hostUuid: host.uuid,
          type: f.type,
          path: f.path,
          kind: 'file',
          sha256: '0'.repeat(64),
          size: CONTENT.length,
          lastSyncAt: Date.now(),
        });
      }
    });
  }
  return names;
}

/** Starts the agent package's baseline server for one host, serving mutual TLS with a key of its own. */
async function startBareHost(home: string, controllerKey: GeneratedKey): Promise<BareHost> {
  const roots = { TpmState: join(home, 'swtpm'), NvRam: join(home, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root, { recursive: true });
  const serverKey = generateSigningKey();
  const config = join(home, 'baseline.json');
  writeFileSync(
    config,
    JSON.stringify({
      roots: [roots.TpmState, roots.NvRam],
      publicKey: controllerKey.publicKey,
      transport: 'https',
      identities: { serverKeyPem: serverKey.pem, clientKeyPem: controllerKey.pem },
    }),
  );
  const child = spawn(process.execPath, [join(dirname(agentBin()), 'bench', 'baseline-server.js'), config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as { port?: number };
      if (typeof event.port === 'number') resolve(event.port);
    });
    child.once('exit', (code) => {
      reject(new Error(`baseline server exited ${String(code)}`));
    });
  });
  child.stdout.resume();
  return { roots, url: `https://127.0.0.1:${port}/`, certificate: certificateFor(serverKey), child };
}

/**
 * The files the product deleted made again below the bare hosts' roots (untimed), then deleted by them: per host,
 * one signed request per DELETES_PER_COMMAND paths, every host at once, over connections made in the round (the
 * product's agent client is made per round too, so both pay their TLS handshakes).
 */
async function baselineRound(
  deleted: readonly Deleted[],
  agents: readonly LocalAgent[],
  bare: readonly BareHost[],
  key: SigningKey,
): Promise<number> {
  const mirrored: { host: number; path: string }[] = [];
  for (const { host, path } of deleted) {
    const agent = agents[host];
    const target = bare[host];
    if (agent === undefined || target === undefined) throw new Error(`no host ${host}`);
    const type = path.startsWith(`${agent.roots.NvRam}/`) ? 'NvRam' : 'TpmState';
    const copy = join(target.roots[type], relative(agent.roots[type], path));
    mkdirSync(dirname(copy), { recursive: true });
    writeFileSync(copy, CONTENT);
    mirrored.push({ host, path: copy });
  }
  const perHost = [...groupBy(mirrored, (m) => m.host)].map(
    ([host, files]) => [host, files.map((f) => f.path)] as const,
  );
  const identity = tlsIdentity(key);
  const dispatchers = bare.map((host) => createPinnedDispatcher(host.certificate, identity));
  try {
    const start = process.hrtime.bigint();
    await Promise.all(
      perHost.map(async ([host, paths]) => {
        const target = bare[host];
        const dispatcher = dispatchers[host];
        if (target === undefined || dispatcher === undefined) return;
        for (let i = 0; i < paths.length; i += DELETES_PER_COMMAND) {
          await bareDelete(target.url, dispatcher, paths.slice(i, i + DELETES_PER_COMMAND), key);
        }
      }),
    );
    return Number(process.hrtime.bigint() - start) / 1e6;
  } finally {
    await Promise.all(dispatchers.map((d) => d.close()));
  }
}

async function bareDelete(url: string, dispatcher: Agent, paths: readonly string[], key: SigningKey): Promise<void> {
  const ops: Pick<ApplyOp, 'op' | 'path'>[] = paths.map((path) => ({ op: 'delete', path }));
  const body = Buffer.from(JSON.stringify({ ops }));
  const signature = sign(null, signedBytes(COMMAND_CONTEXT, body), key.privateKey).toString('base64');
  const response = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature },
    dispatcher,
  });
  const answer = (await response.json()) as { results?: string[] };
  const done = answer.results?.filter((r) => r === 'deleted').length ?? 0;
  if (response.status !== 200 || done !== paths.length) {
    throw new Error(`baseline: ${response.status}, ${done} of ${paths.length} deleted`);
  }
}

const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
