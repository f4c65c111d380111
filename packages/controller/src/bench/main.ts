// pnpm bench (controller part, issue 9's removal benchmark): remove the TPMs of N VMs spread over 200 hosts in one
// call (N = 1,000, 10,000 and 100,000), on SQLite and on PostgreSQL (BENCH_ENGINES), beside the floor measured in the
// same run, and how the time grows with N (the slope, and whether it is linear).
//
// The hosts: 200 real agent processes (BENCH_HOSTS), one per host identity, each with its own key, certificate and
// roots; every request goes through the real agent over mutual TLS.
//
// The floor: the same deletions made directly on disk plus the same count of bare round trips. Bare servers (the agent
// package's bench/baseline-server.ts) make them: per host, one signed request per DELETES_PER_COMMAND paths, all hosts
// at once, over the same transport (mutual TLS, the server's certificate pinned, through the controller's own pinned
// undici dispatcher), each body verified, then the deletes with the same durability as the agent (moved aside,
// unlinked, emptied parents removed, the deepest directory left fsynced), 8 at a time per request. A bare process
// stands for several hosts (BENCH_BARE_PROCESSES, 20 by default: 200 more processes would only share the same two
// cores), each host with roots of its own, reached at its process's port; a host's requests never wait on another
// host's, as with the agents.
// What the floor leaves out is the product's own work: the database (reading the VMs, the purge, the outbox, the
// leases), the busy probe before anything is deleted, the envelopes and signed answers, the agents' checks and journal.
//
// Setup (untimed) writes the files straight into the agents' roots and records the rows in bulk transactions: at
// 100,000 VMs, making them through the flows one by one would take longer than the whole measurement.
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
  type ApplyOp,
  type GeneratedKey,
  type SigningKey,
} from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { createPinnedDispatcher } from '../agents/pinned-tls.js';
import { openStore } from '../cli/context.js';
import type { FileType, Host, NewVm, VmHostFile } from '../store/index.js';
import {
  addHost,
  createLeasedQueue,
  createVmQueue,
  registerController,
  removeTpms,
  type FlowDeps,
} from '../flows/index.js';
import { agentBin, startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import { groupBy } from '../flows/group-by.js';

const HOSTS = Number(process.env['BENCH_HOSTS'] ?? 200);
const BARE_PROCESSES = Math.min(HOSTS, Number(process.env['BENCH_BARE_PROCESSES'] ?? 20));
/** The store engines the flow runs on; the baseline has none. PostgreSQL at $HOSTFILES_TEST_PG_URL, a schema per round. */
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const PG_URL = process.env['HOSTFILES_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
/** PostgreSQL up to 10,000 VMs (BENCH_PG_MAX_VMS): the 100,000 scale, which takes ~10 minutes, on the default engine. */
const PG_MAX_VMS = Number(process.env['BENCH_PG_MAX_VMS'] ?? 10_000);
const SCALES = (process.env['BENCH_VMS'] ?? '1000,10000,100000').split(',').map(Number);
/** Rounds per scale: 3, but one from 10,000 VMs (a round at 100,000 takes minutes); BENCH_ROUNDS sets them all. */
const roundsAt = (vms: number): number => Number(process.env['BENCH_ROUNDS'] ?? (vms >= 10_000 ? 1 : 3));
const CONTENT = Buffer.alloc(16 * 1024, 0x42);
/** Setup: VMs recorded per transaction. */
const SETUP_BATCH = 1000;
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

/** A host of the floor: its roots mirror its agent's; reached at its bare process, that process's certificate pinned. */
interface BareHost {
  readonly roots: { readonly TpmState: string; readonly NvRam: string };
  readonly url: string;
  readonly certificate: string;
  readonly process: number;
}

/** One scale's medians on one engine, for the slope. */
interface ScaleResult {
  readonly engine: 'sqlite' | 'postgres';
  readonly vms: number;
  readonly flowMs: number;
  readonly floorMs: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-cbench-'));
  const key = generateSigningKey();
  const agents: LocalAgent[] = [];
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < HOSTS; i += 8) {
      const names = Array.from({ length: Math.min(8, HOSTS - i) }, (_, j) => `host-${i + j}`);
      agents.push(...(await Promise.all(names.map((name) => startLocalAgent(dir, name, key.publicKey)))));
    }
    const bare = await startBareHosts(join(dir, 'bare'), key, children);
    // Untimed: every agent and bare server serves a removal first, as a fleet's long-running agents have (a cold
    // process's first request compiles its code: 200 of them on two cores would be timed as one host's start-up each).
    const warm = await flowRound(join(dir, 'warm-up'), HOSTS * 2, key, agents, 'sqlite');
    await baselineRound(warm.deleted, agents, bare, key);
    console.log(
      `controller benchmark: remove the TPMs of ${SCALES.join(', ')} VMs on ${HOSTS} hosts (${HOSTS} agent processes) ` +
        `in one call; the floor on the same ${HOSTS} hosts (${BARE_PROCESSES} bare processes); ` +
        `${SCALES.map((vms) => `${roundsAt(vms)} round${roundsAt(vms) === 1 ? '' : 's'} at ${vms}`).join(', ')}, ` +
        `interleaved with the floor; medians\n`,
    );
    const results: ScaleResult[] = [];
    for (const vms of SCALES) {
      for (const engine of ENGINES.filter((e) => e === 'sqlite' || vms <= PG_MAX_VMS)) {
        results.push(await measureEngine(join(dir, `vms-${vms}`), vms, key, agents, bare, engine));
      }
    }
    reportGrowth(results);
  } finally {
    await Promise.all(agents.map((agent) => agent.stop()));
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * How the time grows with the VMs, per engine: the cost per 1,000 VMs at each scale, the least-squares slope over all
 * scales, and the marginal cost per 1,000 VMs between consecutive scales. Linear: each marginal cost within 1.25× of
 * the one before (a fixed start-up cost makes the first scale's average higher; the margins leave it out).
 */
function reportGrowth(results: readonly ScaleResult[]): void {
  for (const engine of ENGINES) {
    const points = results.filter((r) => r.engine === engine).sort((a, b) => a.vms - b.vms);
    if (points.length < 2) continue;
    for (const [label, ms] of [
      ['hostfiles', (r: ScaleResult): number => r.flowMs],
      ['floor', (r: ScaleResult): number => r.floorMs],
    ] as const) {
      const slope = leastSquaresSlope(points.map((p) => [p.vms, ms(p)]));
      const margins = points.slice(1).map((p, i) => {
        const before = points[i] as ScaleResult;
        return ((ms(p) - ms(before)) / (p.vms - before.vms)) * 1000;
      });
      const linear = margins.every((m, i) => i === 0 || m <= (margins[i - 1] ?? m) * 1.25);
      console.log(
        `growth on ${engine}, ${label}: slope ${(slope * 1000).toFixed(0)} ms per 1,000 VMs (least squares); ` +
          `per 1,000 VMs at ${points.map((p) => `${p.vms}: ${((ms(p) / p.vms) * 1000).toFixed(0)} ms`).join(', ')}; ` +
          `marginal ${points
            .slice(1)
            .map((p, i) => `${(points[i] as ScaleResult).vms}→${p.vms}: ${(margins[i] ?? NaN).toFixed(0)} ms`)
            .join(', ')}` +
          (label === 'hostfiles'
            ? ` — linear (each margin within 1.25× of the one before): ${linear ? 'YES' : 'NO'}`
            : ''),
      );
    }
  }
}

function leastSquaresSlope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxy / sxx;
}

async function measureEngine(
  dir: string,
  vms: number,
  key: SigningKey,
  agents: readonly LocalAgent[],
  bare: readonly BareHost[],
  engine: 'sqlite' | 'postgres',
): Promise<ScaleResult> {
  const flowTimes: number[] = [];
  const baseTimes: number[] = [];
  let last: FlowResult | undefined;
  for (let round = 0; round < roundsAt(vms); round++) {
    last = await flowRound(join(dir, `${engine}-round-${round}`), vms, key, agents, engine);
    flowTimes.push(last.ms);
    baseTimes.push(await baselineRound(last.deleted, agents, bare, key));
  }
  if (last === undefined) throw new Error('no round');
  const flow = median(flowTimes);
  const base = median(baseTimes);
  const list = (times: readonly number[]): string => times.map((t) => t.toFixed(0)).join(', ');
  console.log(
    `${vms} VMs on ${engine}: hostfiles removeTpms ${flow.toFixed(0)} ms for ${last.deleted.length} files, ` +
      `${last.commands} commands; floor ${base.toFixed(0)} ms; ratio ${(flow / base).toFixed(2)}× ` +
      `(rounds: flow ${list(flowTimes)} ms; floor ${list(baseTimes)} ms)`,
  );
  const expected = HOSTS * Math.max(1, Math.ceil(last.deleted.length / HOSTS / DELETES_PER_COMMAND));
  console.log(
    `  ${expected} commands (one per host per ${DELETES_PER_COMMAND} deletes) — ${last.commands === expected ? 'MET' : 'MISSED'}`,
  );
  return { engine, vms, flowMs: flow, floorMs: base };
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

/**
 * Untimed: the VMs and their TPMs recorded in transactions of SETUP_BATCH VMs, their files written straight into
 * their agent's roots (TPM state for every VM, NVRAM for a third) and recorded.
 */
async function setUp(deps: FlowDeps, vms: number, agents: readonly LocalAgent[]): Promise<string[]> {
  const hosts = await Promise.all(
    agents.map(async (agent) => {
      const host = await deps.store.getHostByName(agent.name);
      if (host === null) throw new Error(`host ${agent.name} missing`);
      return host;
    }),
  );
  const names: string[] = [];
  for (let first = 0; first < vms; first += SETUP_BATCH) {
    const batch: { name: string; vm: NewVm; files: VmHostFile[] }[] = [];
    for (let i = first; i < Math.min(vms, first + SETUP_BATCH); i++) {
      const h = i % agents.length;
      const agent = agents[h] as LocalAgent;
      const host = hosts[h] as Host;
      const uuid = randomUUID();
      const uefi = i % 3 === 0;
      const paths: [FileType, string][] = [['TpmState', join(agent.roots.TpmState, uuid, 'tpm2-00.permall')]];
      if (uefi) paths.push(['NvRam', join(agent.roots.NvRam, uuid, 'VARS.fd')]);
      const files = paths.map(([type, path]): VmHostFile => {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, CONTENT);
        return {
          uuid: randomUUID(),
          vmUuid: uuid,
          hostUuid: host.uuid,
          type,
          path,
          kind: 'file',
          sha256: '0'.repeat(64),
          size: CONTENT.length,
          lastSyncAt: Date.now(),
        };
      });
      const name = `vm-${i}`;
      batch.push({
        name,
        vm: { uuid, name, hostUuid: host.uuid, bootMode: uefi ? 'UEFI' : 'Legacy', secureBoot: false },
        files,
      });
      names.push(name);
    }
    await deps.store.transaction(async (tx) => {
      for (const { vm, files } of batch) {
        await tx.addVm(vm);
        await tx.addTpm({ uuid: randomUUID(), vmUuid: vm.uuid, keyProvider: 'kms' });
        for (const file of files) await tx.upsertFile(file);
      }
    });
  }
  return names;
}

/**
 * Starts BARE_PROCESSES baseline servers, serving mutual TLS with a key of their own; host i's roots are below process
 * i mod BARE_PROCESSES's home, so its requests go there.
 */
async function startBareHosts(
  home: string,
  controllerKey: GeneratedKey,
  children: ChildProcess[],
): Promise<BareHost[]> {
  const hosts: BareHost[] = [];
  const rootsOf = (i: number): BareHost['roots'] => ({
    TpmState: join(home, `host-${i}`, 'swtpm'),
    NvRam: join(home, `host-${i}`, 'nvram'),
  });
  for (let p = 0; p < BARE_PROCESSES; p++) {
    const mine = Array.from({ length: HOSTS }, (_, i) => i).filter((i) => i % BARE_PROCESSES === p);
    const roots = mine.flatMap((i) => Object.values(rootsOf(i)));
    for (const root of roots) mkdirSync(root, { recursive: true });
    const serverKey = generateSigningKey();
    const config = join(home, `baseline-${p}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        roots,
        publicKey: controllerKey.publicKey,
        transport: 'https',
        identities: { serverKeyPem: serverKey.pem, clientKeyPem: controllerKey.pem },
      }),
    );
    const child = spawn(process.execPath, [join(dirname(agentBin()), 'bench', 'baseline-server.js'), config], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
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
    for (const i of mine) {
      hosts[i] = {
        roots: rootsOf(i),
        url: `https://127.0.0.1:${port}/`,
        certificate: certificateFor(serverKey),
        process: p,
      };
    }
  }
  return hosts;
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
  // One dispatcher per host, as the product's client has one per host: each host's requests on connections of their own.
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
