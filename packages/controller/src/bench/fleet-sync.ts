// pnpm bench (issue 11's fleet sync benchmark): `hostfiles sync --all` over 10,000 VMs on 200 hosts (BENCH_FLEET_VMS,
// BENCH_HOSTS) when 1 % of the VMs changed one state since the last sync, beside the floor measured in the same run:
// the same listings and the same reads of the changed states made by a bare client, with no database.
//
// The hosts: 200 real agent processes, one per host identity, each with its own key, certificate and roots; every
// request goes through the real agent over mutual TLS. Each VM has libvirt's layout: its TPM state a directory
// `<swtpm root>/<uuid>/tpm2/tpm2-00.permall` (TPM_BYTES), its NVRAM `<nvram root>/<uuid>_VARS.fd` (NVRAM_BYTES,
// smaller than OVMF's 540 KiB store so that 10,000 fit this machine's page cache: every listing hashes every state).
//
// A round changes CHANGED_PERCENT of the VMs (one state each, TPM or NVRAM by turns) on disk, then times the fleet
// sync, then the floor. Rounds at 0 % and 5 % beside show how the bytes read grow with what changed.
// The floor: per host, with the flow's concurrency (8 hosts at once), a signed `files.list` of both types, then one
// signed `files.read` of the host's changed states, each answer read whole (not verified: the floor checks nothing).
// What it leaves out is the product's own work: the database (rows, backups, the journal, the VMs' keys held), the
// answers' signatures and schemas checked, the states' digests checked, the rows and backups recorded.
//
// Setup (untimed) writes the states straight into the agents' roots and records rows and backups in bulk transactions.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch, type Agent } from 'undici';
import {
  buildCommand,
  COMMAND_CONTEXT,
  ENDPOINTS,
  FILE_TYPES,
  generateSigningKey,
  signEnvelope,
  tlsIdentity,
  type CommandKind,
  type FileType,
  type SigningKey,
} from '@hostfiles/shared';
import { createAgentClient, type AgentClient } from '../agents/index.js';
import { createPinnedDispatcher } from '../agents/pinned-tls.js';
import { openStore } from '../cli/context.js';
import {
  addHost,
  createVmQueue,
  FLEET_LIST_CONCURRENCY,
  syncFleet,
  type FleetSyncReport,
  type FlowDeps,
} from '../flows/index.js';
import { dirState, fileState, type State } from '../flows/state.js';
import { startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import type { Host } from '../store/index.js';

const HOSTS = Number(process.env['BENCH_HOSTS'] ?? 200);
const VMS = Number(process.env['BENCH_FLEET_VMS'] ?? 10_000);
const ROUNDS = Number(process.env['BENCH_FLEET_ROUNDS'] ?? 3);
const CHANGED_PERCENT = 1;
const TPM_BYTES = 10 * 1024;
const NVRAM_BYTES = 64 * 1024;
const RANDOM_NVRAM_BYTES = 8 * 1024;
const SETUP_BATCH = 500;
const CONCURRENCY = 32;
const TARGET = 2;

interface Placed {
  readonly uuid: string;
  readonly host: number;
  readonly tpmDir: string;
  readonly tpmFile: string;
  readonly nvram: string;
}

/**
 * Distinct bytes per VM and version. A TPM state is random (swtpm's is encrypted: gzip gains nothing); an NVRAM store
 * is mostly erased flash (0xff), gzip shrinks it, with RANDOM_NVRAM_BYTES of variables that it does not.
 */
function content(type: FileType, vm: number, version: number): Buffer {
  if (type === 'TpmState') return randomBytes(TPM_BYTES);
  const bytes = Buffer.alloc(NVRAM_BYTES, 0xff);
  randomBytes(RANDOM_NVRAM_BYTES).copy(bytes);
  bytes.write(`vm ${vm} version ${version}\n`, RANDOM_NVRAM_BYTES);
  return bytes;
}

const tpmState = (bytes: Buffer): State => dirState([{ path: 'tpm2/tpm2-00.permall', content: bytes }]);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-fsbench-'));
  const key = generateSigningKey();
  const agents: LocalAgent[] = [];
  const store = await openStore(join(dir, 'hostfiles.db'));
  const answerBytes = new Map<string, number>();
  const deps: FlowDeps = {
    store,
    agents: countingClient(createAgentClient({ key, timeoutMs: 120_000, retries: 0, now: Date.now }), answerBytes),
    queue: createVmQueue(),
    now: Date.now,
    random: Math.random,
    concurrency: CONCURRENCY,
    retryBaseMs: 5000,
    retryMaxMs: 600_000,
  };
  try {
    for (let i = 0; i < HOSTS; i += 8) {
      const names = Array.from({ length: Math.min(8, HOSTS - i) }, (_, j) => `host-${i + j}`);
      agents.push(...(await Promise.all(names.map((name) => startLocalAgent(dir, name, key.publicKey)))));
    }
    const hosts: Host[] = [];
    for (const agent of agents) {
      hosts.push(await addHost(deps, { name: agent.name, url: agent.url, expectKey: agent.publicKey }));
    }
    const placed = await setUp(deps, agents, hosts);
    console.log(
      `fleet sync benchmark: ${VMS} VMs on ${HOSTS} hosts (${HOSTS} agent processes, mutual TLS), a TPM state ` +
        `directory of ${TPM_BYTES / 1024} KiB and an NVRAM file of ${NVRAM_BYTES / 1024} KiB each; ` +
        `${ROUNDS} rounds with ${CHANGED_PERCENT} % of the VMs changed, interleaved with the floor; medians\n`,
    );
    // Untimed: every agent lists once (its code compiled, its states in the page cache), as a fleet's have.
    await syncFleet(deps);

    let version = 1;
    let next = 0;
    /** Changes `count` VMs (the next ones, in turn): one state each, TPM and NVRAM by turns. */
    const change = (count: number): Map<number, { type: FileType; path: string }[]> => {
      const changed = new Map<number, { type: FileType; path: string }[]>();
      for (let n = 0; n < count; n++) {
        const vm = (next++ * 7919) % VMS; // spread over the hosts, never twice in a run of VMS
        const p = placed[vm] as Placed;
        const tpm = n % 2 === 0;
        writeFileSync(tpm ? p.tpmFile : p.nvram, content(tpm ? 'TpmState' : 'NvRam', vm, version));
        const list = changed.get(p.host) ?? [];
        list.push(tpm ? { type: 'TpmState', path: p.tpmDir } : { type: 'NvRam', path: p.nvram });
        changed.set(p.host, list);
      }
      version++;
      return changed;
    };
    const expectedBytes = (count: number): number =>
      Math.ceil(count / 2) * TPM_BYTES + Math.floor(count / 2) * NVRAM_BYTES;

    const flowTimes: number[] = [];
    const floorTimes: number[] = [];
    const scale = async (percent: number, timed: boolean): Promise<void> => {
      const count = Math.round((VMS * percent) / 100);
      const changed = change(count);
      answerBytes.clear();
      const start = process.hrtime.bigint();
      const report = await syncFleet(deps);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      check(report, count, expectedBytes(count));
      const floor = await floorRound(hosts, changed, key);
      if (timed) {
        flowTimes.push(ms);
        floorTimes.push(floor.ms);
      }
      const bytes = [...answerBytes].map(([kind, n]) => `${kind} ${kb(n)}`).join(', ');
      console.log(
        `${percent} % changed (${count} states): hostfiles ${ms.toFixed(0)} ms, floor ${floor.ms.toFixed(0)} ms ` +
          `(${(ms / floor.ms).toFixed(2)}×); states read ${report.totals.read}, ${kb(report.totals.bytesRead)} ` +
          `decoded; answers from hosts: ${bytes} (floor: ${kb(floor.listBytes)} listings, ${kb(floor.readBytes)} reads)`,
      );
    };
    await scale(0, false);
    for (let round = 0; round < ROUNDS; round++) await scale(CHANGED_PERCENT, true);
    await scale(5, false);
    const flow = median(flowTimes);
    const floor = median(floorTimes);
    console.log(
      `\n${CHANGED_PERCENT} % changed: hostfiles ${flow.toFixed(0)} ms, floor ${floor.toFixed(0)} ms, ratio ` +
        `${(flow / floor).toFixed(2)}× (rounds: ${flowTimes.map((t) => t.toFixed(0)).join(', ')} ms; floor ` +
        `${floorTimes.map((t) => t.toFixed(0)).join(', ')} ms)`,
    );
    console.log(
      `target: wall time within ${TARGET}× of the floor — ${flow / floor <= TARGET ? 'MET' : 'MISSED'}; the states ` +
        `read are exactly the changed ones at every scale (checked each round)`,
    );
  } finally {
    await deps.agents.close();
    await Promise.all(agents.map((agent) => agent.stop()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;

/** The report must name exactly the changed states, read whole: otherwise the figures measure something else. */
function check(report: FleetSyncReport, count: number, bytes: number): void {
  const failed = report.read.filter((f) => f.status !== 'read' || f.why !== 'changed');
  if (report.totals.read !== count || report.totals.bytesRead !== bytes || failed.length > 0) {
    throw new Error(
      `fleet sync read ${report.totals.read} states (${report.totals.bytesRead} bytes), ${failed.length} not as ` +
        `changed; expected ${count} (${bytes} bytes)`,
    );
  }
  if (report.totals.failedHosts > 0) throw new Error(`${report.totals.failedHosts} hosts not listed`);
}

/** The product's client, counting the bytes of each answer (as JSON) by command kind. */
function countingClient(client: AgentClient, bytes: Map<string, number>): AgentClient {
  return {
    ...client,
    send: async (host, kind, body, options) => {
      const answer = await client.send(host, kind, body, options);
      bytes.set(kind, (bytes.get(kind) ?? 0) + JSON.stringify(answer).length);
      return answer;
    },
  };
}

/**
 * Untimed: the VMs, their states written straight into their agent's roots, and their rows and backups recorded as a
 * sync would have left them, in transactions of SETUP_BATCH VMs.
 */
async function setUp(deps: FlowDeps, agents: readonly LocalAgent[], hosts: readonly Host[]): Promise<Placed[]> {
  const placed: Placed[] = [];
  for (let first = 0; first < VMS; first += SETUP_BATCH) {
    const batch: { index: number; placed: Placed; tpm: State; nvram: State }[] = [];
    for (let i = first; i < Math.min(VMS, first + SETUP_BATCH); i++) {
      const h = i % agents.length;
      const agent = agents[h] as LocalAgent;
      const uuid = randomUUID();
      const tpmDir = join(agent.roots.TpmState, uuid);
      const p: Placed = {
        uuid,
        host: h,
        tpmDir,
        tpmFile: join(tpmDir, 'tpm2', 'tpm2-00.permall'),
        nvram: join(agent.roots.NvRam, `${uuid}_VARS.fd`),
      };
      const tpmBytes = content('TpmState', i, 0);
      const nvramBytes = content('NvRam', i, 0);
      mkdirSync(join(tpmDir, 'tpm2'), { recursive: true });
      writeFileSync(p.tpmFile, tpmBytes);
      writeFileSync(p.nvram, nvramBytes);
      batch.push({ index: i, placed: p, tpm: tpmState(tpmBytes), nvram: fileState(nvramBytes) });
      placed.push(p);
    }
    await deps.store.transaction(async (tx) => {
      for (const { index, placed: p, tpm, nvram } of batch) {
        const host = hosts[p.host] as Host;
        await tx.addVm({
          uuid: p.uuid,
          name: `vm-${index}`,
          hostUuid: host.uuid,
          bootMode: 'UEFI',
          secureBoot: false,
        });
        for (const [type, path, state] of [
          ['TpmState', p.tpmDir, tpm],
          ['NvRam', p.nvram, nvram],
        ] as const) {
          const { kind, sha256, size, entries } = state;
          await tx.upsertFile({
            uuid: randomUUID(),
            vmUuid: p.uuid,
            hostUuid: host.uuid,
            type,
            path,
            kind,
            sha256,
            size,
            lastSyncAt: Date.now(),
          });
          await tx.recordGeneration({
            uuid: randomUUID(),
            vmUuid: p.uuid,
            type,
            kind,
            sha256,
            size,
            entries,
            source: 'sync',
            hostUuid: host.uuid,
          });
        }
      }
    });
  }
  return placed;
}

/**
 * The floor: per host (as many at once as the flow lists, FLEET_LIST_CONCURRENCY), a signed `files.list` of both
 * types, then one signed `files.read` of its changed states, through the same transport (mutual TLS, the agent's certificate pinned, a dispatcher per host made
 * in the round, as the product's client makes its own), each answer read whole.
 */
async function floorRound(
  hosts: readonly Host[],
  changed: ReadonlyMap<number, readonly { type: FileType; path: string }[]>,
  key: SigningKey,
): Promise<{ ms: number; listBytes: number; readBytes: number }> {
  const identity = tlsIdentity(key);
  const dispatchers = hosts.map((host) => createPinnedDispatcher(host.certificate ?? '', identity));
  let listBytes = 0;
  let readBytes = 0;
  try {
    const start = process.hrtime.bigint();
    const queue = hosts.map((_, i) => i);
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, FLEET_LIST_CONCURRENCY) }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          const host = hosts[i] as Host;
          const dispatcher = dispatchers[i] as Agent;
          const listed = await bare(host, dispatcher, key, 'files.list', { types: [...FILE_TYPES] });
          listBytes += listed;
          const files = changed.get(i);
          const read = files === undefined ? 0 : await bare(host, dispatcher, key, 'files.read', { files });
          readBytes += read;
        }
      }),
    );
    return { ms: Number(process.hrtime.bigint() - start) / 1e6, listBytes, readBytes };
  } finally {
    await Promise.all(dispatchers.map((d) => d.close()));
  }
}

/** One signed command to a real agent, its answer read whole; answers its length. */
async function bare(
  host: Host,
  dispatcher: Agent,
  key: SigningKey,
  kind: CommandKind,
  body: Record<string, unknown>,
): Promise<number> {
  const command = buildCommand(kind, host.uuid, body as never, { now: Date.now() });
  const response = await fetch(new URL(ENDPOINTS[kind], host.url), {
    method: 'POST',
    body: JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, key)),
    headers: { 'content-type': 'application/json' },
    dispatcher,
  });
  const text = await response.text();
  if (response.status !== 200)
    throw new Error(`floor: ${kind} on ${host.name}: ${response.status} ${text.slice(0, 200)}`);
  return text.length;
}

const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
