// pnpm bench (agent part): a real agent beside a fair baseline (baseline-server.ts), in the same run, over the same
// transport and client code, samples interleaved so both see the same machine noise. Prints medians and ratios.
//
// Fair means the baseline does the durable file work the agent must do, as fast as it can: the same fsyncs of files
// and directories, the same 8-at-a-time runs of a batch's independent ops, the same concurrency of requests. It also
// verifies an Ed25519 signature over every body, as the agent does: a server that changes files for whoever reaches
// its port is no baseline for one that must not (TLS, even mutual, authenticates a peer, not each command), and
// leaving it out would only flatter or blame the agent for a fixed ~0.1 ms a request both must pay. What the
// baseline leaves out is the agent's overhead to beat: the envelope and schema checks, the replay journal and its
// fdatasyncs, confinement and the symlink-safe walk, busy checks, digests, logs and the signed answer.
//
// Scenarios, each writes then deletes of 10 KiB files, one new TPM state directory per op:
// - batch 1 from 16 concurrent clients (requests/s and per-request p50) — target: agent within 1.3× of baseline;
//   between the writes and the deletes, the same files written again (`rewrite`, no target: each state's directory
//   is there already, as when a VM's state is updated); after them, deletes of paths that were never written
//   (`absent`, no target): next to no file work on either side (one lookup that finds nothing), so the agent's row
//   is what a request costs it before any file work — the envelope, journal, signed answer and logs — beside a
//   baseline that pays only its transport and signature check;
// - batch 100 from one client (ops/s) — target: within 1.3×;
// - batch 1 from one client: the latency of a lone request (no target; nothing there for requests to share).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generateSigningKey, stopChild, type GeneratedKey } from '@hostfiles/shared';
import { cpuSecondsOf, machineTicks, type CpuSeconds, type MachineTicks } from './cpu.js';
import { describeFileSystem, fileSystemOf } from './file-system.js';
import { median, runLoad, type LoadResult } from './load.js';
import type { FloorConfig } from './floor-server.js';
import { transportKit, type Identities, type Transport } from './transport.js';
import { measureVerify } from './verify-rate.js';
import {
  agentRequests,
  baselineRequests,
  batchesOf,
  type BaselineConfig,
  type BenchRequest,
  type OpKind,
} from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 7);
/**
 * Rounds of each scenario's cells run first on both sides and not counted (`BENCH_WARMUP`, default 2): the agent runs
 * for months, so what it costs once V8 has compiled its paths is the figure. Measured here with a driver sending
 * `absent` deletes from 16 clients in rounds of 320: both sides' rates climb over the first ~10 rounds, and while they
 * did V8's optimizing compiler took 12% of the agent's CPU samples (perf), its code being much more than the baseline's.
 * Two rounds of the 1 × 16 scenario are 2,560 requests a side, eight such rounds. The counted samples still take
 * turns going first.
 */
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 2);
const TARGET = 1.3;
/**
 * Where each transport's run makes its directory (the agent's roots and state, the baseline's root): `BENCH_DIR`, by
 * default the system's temp directory. file-system.ts says why it matters.
 */
const BENCH_DIR = process.env['BENCH_DIR'] ?? tmpdir();
/**
 * `BENCH_TRANSPORTS=https` measures one transport; `BENCH_NODE_ARGS='--cpu-prof'` profiles both servers;
 * `BENCH_AGENT=floor` puts the floor (floor-server.ts) in the agent's place.
 */
const TRANSPORTS = (process.env['BENCH_TRANSPORTS'] ?? 'http,https').split(',') as Transport[];

/** What a cell sends: writes, the same writes again, deletes of what was written, deletes of paths never written. */
type Cell = OpKind | 'rewrite' | 'absent';

interface Scenario {
  readonly batch: number;
  readonly clients: number;
  /** requests per sample */
  readonly requests: number;
  /** whether its write and delete rows have a target (`rewrite` and `absent` rows never have) */
  readonly target: boolean;
  /** in this order, each sample */
  readonly cells: readonly Cell[];
}

const ALL_SCENARIOS: readonly Scenario[] = [
  { batch: 1, clients: 16, requests: 320, target: true, cells: ['write', 'rewrite', 'delete', 'absent'] },
  { batch: 100, clients: 1, requests: 4, target: true, cells: ['write', 'delete'] },
  { batch: 1, clients: 1, requests: 100, target: false, cells: ['write', 'delete'] },
];
/** `BENCH_SCENARIOS=1x16,100x1` measures only those (batch × clients), e.g. to profile one of them. */
const ONLY_SCENARIOS = process.env['BENCH_SCENARIOS']?.split(',');
const SCENARIOS = ALL_SCENARIOS.filter((s) => ONLY_SCENARIOS?.includes(`${s.batch}x${s.clients}`) ?? true);

type Side = 'agent' | 'baseline';

interface Figures {
  /** ops per second (requests per second at batch 1) */
  readonly rate: number;
  /** per request, ms */
  readonly p50: number;
  /** the server's CPU time per op, ms, all samples together */
  readonly cpuPerOp: number;
  /**
   * How busy its event loop was: its main thread's CPU time over the samples' wall time, all samples together. Near 1,
   * requests queue for the loop, and what the loop does per request is what the rate is made of.
   */
  readonly loopBusy: number;
  /**
   * How busy the machine's cores were (every process's and the kernel's time, steal included, over all the cores'
   * time), all samples together. Near 1, the rate is made of the CPU time each op costs, the server's and the
   * clients' (CPU/op).
   */
  readonly machineBusy: number;
}

interface Sample extends Omit<LoadResult, 'answers'> {
  /** the server's CPU seconds during the sample: all its threads, its main thread */
  readonly cpu: CpuSeconds;
  /** the machine's CPU ticks during the sample */
  readonly machine: MachineTicks;
}

interface Row {
  readonly transport: Transport;
  readonly scenario: Scenario;
  readonly op: Cell;
  readonly agent: Figures;
  readonly baseline: Figures;
  /** agent time / baseline time: of the medians, and the range of the interleaved pairs */
  readonly ratio: number;
  readonly pairs: readonly number[];
}

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
}

interface Bench {
  readonly transport: Transport;
  readonly identities: Identities;
  readonly dir: string;
  readonly key: GeneratedKey;
  readonly hostUuid: string;
  readonly roots: Readonly<Record<Side, string>>;
  readonly servers: Readonly<Record<Side, Server>>;
}

/**
 * Every server started and not yet exited, and every run directory not yet removed: what the end of a run, or its
 * interruption (SIGINT, SIGTERM), stops and removes. The servers are waited for, so that nothing holds the directory
 * once this exits (bench-journaled.sh unmounts it then).
 */
const servers = new Set<ChildProcess>();
const runDirs = new Set<string>();

async function cleanUp(): Promise<void> {
  await Promise.all([...servers].map((child) => stopChild(child)));
  for (const dir of runDirs) rmSync(dir, { recursive: true, force: true });
  runDirs.clear();
}

function parseLine(line: string): { event?: string; port?: number } {
  try {
    return JSON.parse(line) as { event?: string; port?: number };
  } catch {
    return {};
  }
}

/** Starts a server process and waits for the line saying which port it listens on. */
async function spawnServer(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const nodeArgs = (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((arg) => arg !== '');
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      // Not every line is the agent's JSON: a V8 flag in BENCH_NODE_ARGS may print its own.
      const event = parseLine(line);
      // The agent's metrics listener says its port first: not the one the clients load.
      if (typeof event.port === 'number' && event.event !== 'metrics_listening') {
        // No more parsing: each of the agent's log lines parsed here cost this process (the clients) CPU that the
        // baseline, which logs nothing, never made it pay.
        lines.close();
        resolve(event.port);
      }
    });
    child.once('exit', (code) => {
      reject(new Error(`server exited ${String(code)}`));
    });
  });
  // Keep draining the agent's logs, unread: writing them is part of its cost.
  child.stdout.resume();
  return { child, port };
}

/**
 * `BENCH_AGENT=floor`: floor-server.ts runs in the agent's place (its rows are then the floor's, beside the same
 * baseline): the least any server keeping the protocol's promises must do beyond the baseline.
 */
const FLOOR = process.env['BENCH_AGENT'] === 'floor';

function floorConfigOf(dir: string, baseline: BaselineConfig, root: string, hostUuid: string): string {
  const path = join(dir, 'floor.json');
  const stateDir = join(dir, 'floor-state');
  mkdirSync(stateDir, { recursive: true });
  const config: FloorConfig = { ...baseline, roots: [root], hostUuid, stateDir };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

async function startBench(transport: Transport, dir: string, key: GeneratedKey): Promise<Bench> {
  const hostUuid = randomUUID();
  const roots = { agent: join(dir, 'agent', 'swtpm'), baseline: join(dir, 'baseline') };
  const nvram = join(dir, 'agent', 'nvram');
  for (const path of [roots.agent, roots.baseline, nvram]) mkdirSync(path, { recursive: true });
  const agentConfig = join(dir, 'agent.json');
  // The agent's key made here, so the clients can pin its certificate (the agent uses an existing key file).
  const agentKey = generateSigningKey();
  writeFileSync(join(dir, 'agent.key'), agentKey.pem, { mode: 0o600 });
  const identities: Identities = { serverKeyPem: agentKey.pem, clientKeyPem: key.pem };
  writeFileSync(
    agentConfig,
    JSON.stringify({
      hostUuid,
      listen: { host: '127.0.0.1', port: 0, ...transportKit(transport).agentListen },
      roots: { TpmState: roots.agent, NvRam: nvram },
      trustedKeys: [key.publicKey],
      keyFile: join(dir, 'agent.key'),
      stateDir: join(dir, 'state'),
      // On, as a host scraped by Prometheus runs it: its counters are part of the cost measured.
      metrics: { host: '127.0.0.1', port: 0 },
    }),
  );
  const baselineConfig = join(dir, 'baseline.json');
  const baseline: BaselineConfig = { roots: [roots.baseline], publicKey: key.publicKey, transport, identities };
  writeFileSync(baselineConfig, JSON.stringify(baseline));
  const url = (port: number, path: string): string => `${transportKit(transport).scheme}://127.0.0.1:${port}${path}`;
  const agent = await spawnServer(
    FLOOR
      ? [join(HERE, 'floor-server.js'), floorConfigOf(dir, baseline, roots.agent, hostUuid)]
      : [join(HERE, '..', 'main.js'), '--config', agentConfig],
  );
  const base = await spawnServer([join(HERE, 'baseline-server.js'), baselineConfig]);
  return {
    transport,
    identities,
    dir,
    key,
    hostUuid,
    roots,
    servers: {
      agent: { url: url(agent.port, '/v1/files/apply'), child: agent.child },
      baseline: { url: url(base.port, '/'), child: base.child },
    },
  };
}

/**
 * One scenario: WARMUP rounds not counted, then SAMPLES rounds of its cells (writes, deletes of what was written, …),
 * both sides each, alternating first.
 */
async function measure(bench: Bench, scenario: Scenario): Promise<Row[]> {
  const results = new Map(scenario.cells.map((cell) => [cell, { agent: [] as Sample[], baseline: [] as Sample[] }]));
  const client = transportKit(bench.transport).createClient(scenario.clients, bench.identities);
  try {
    for (let sample = -WARMUP; sample < SAMPLES; sample++) {
      // -1 % 2 is -1: the turns alternate through the warm-up too, and the first counted sample has the agent first.
      const order: Side[] = sample % 2 === 0 ? ['agent', 'baseline'] : ['baseline', 'agent'];
      for (const [cell, samples] of results) {
        for (const side of order) {
          // `absent`: paths of a tag nothing ever wrote.
          const tag = `${cell === 'absent' ? 'n' : 's'}${sample}`;
          const batches = batchesOf(bench.roots[side], tag, scenario.requests, scenario.batch);
          const requests = requestsOf(bench, side, opOf(cell), batches);
          const pid = bench.servers[side].child.pid ?? NaN;
          const before = cpuSecondsOf(pid);
          const machineBefore = machineTicks();
          const { answers, ...load } = await runLoad(client, bench.servers[side].url, requests, scenario.clients);
          const machineAfter = machineTicks();
          const after = cpuSecondsOf(pid);
          const cpu = { all: after.all - before.all, loop: after.loop - before.loop };
          const machine = {
            busy: machineAfter.busy - machineBefore.busy,
            total: machineAfter.total - machineBefore.total,
          };
          if (sample >= 0) samples[side].push({ ...load, cpu, machine });
          expectStatuses(side, answers, STATUS_OF[cell], scenario.requests * scenario.batch);
          expectUnits(bench.roots[side], opOf(cell) === 'write' ? scenario.requests * scenario.batch : 0);
        }
      }
    }
  } finally {
    client.close();
  }
  const ops = scenario.requests * scenario.batch;
  return [...results].map(([op, samples]) => {
    const figures = (side: Side): Figures => {
      /** `of` summed over the side's samples */
      const total = (of: (sample: Sample) => number): number => samples[side].reduce((sum, r) => sum + of(r), 0);
      return {
        rate: median(samples[side].map((r) => ops / r.seconds)),
        p50: median(samples[side].map((r) => median(r.latencies))),
        cpuPerOp: (1000 * total((r) => r.cpu.all)) / (ops * SAMPLES),
        loopBusy: total((r) => r.cpu.loop) / total((r) => r.seconds),
        machineBusy: total((r) => r.machine.busy) / total((r) => r.machine.total),
      };
    };
    const agent = figures('agent');
    const baseline = figures('baseline');
    const pairs = samples.agent.map((a, i) => a.seconds / (samples.baseline[i]?.seconds ?? NaN));
    return { transport: bench.transport, scenario, op, agent, baseline, ratio: baseline.rate / agent.rate, pairs };
  });
}

const opOf = (cell: Cell): OpKind => (cell === 'rewrite' ? 'write' : cell === 'absent' ? 'delete' : cell);

function requestsOf(bench: Bench, side: Side, op: OpKind, batches: string[][]): BenchRequest[] {
  return side === 'agent'
    ? agentRequests(op, batches, bench.key, bench.hostUuid)
    : baselineRequests(op, batches, bench.key);
}

/** What every op of a cell must answer. */
const STATUS_OF: Readonly<Record<Cell, string>> = {
  write: 'written',
  rewrite: 'written',
  delete: 'deleted',
  absent: 'absent',
};

/** Every op answered as it must: a 200 answer may still carry failed ops (read after the clock stopped). */
function expectStatuses(side: Side, answers: readonly Buffer[], status: string, ops: number): void {
  const statuses = answers.flatMap((body) => {
    const parsed = JSON.parse(body.toString('utf8')) as { payload?: string; results?: unknown[] };
    // The agent's answer is a signed envelope: its payload (base64 of JSON) holds results of objects.
    if (side === 'agent') {
      const answer = JSON.parse(Buffer.from(parsed.payload ?? '', 'base64').toString('utf8')) as {
        results: { status: string }[];
      };
      return answer.results.map((r) => r.status);
    }
    return (parsed.results ?? []) as string[];
  });
  const wrong = statuses.filter((s) => s !== status);
  if (statuses.length !== ops || wrong.length > 0) {
    throw new Error(`${side}: ${statuses.length} results for ${ops} ops, ${wrong.length} not ${status}: ${wrong[0]}`);
  }
}

/** Both sides must have done the work. */
function expectUnits(root: string, count: number): void {
  const found = readdirSync(root).length;
  if (found !== count) throw new Error(`${root} holds ${found} entries after the sample, not ${count}`);
}

const fixed = (value: number, width: number, digits = 0): string => value.toFixed(digits).padStart(width);

function printRow(row: Row): void {
  const { batch, clients } = row.scenario;
  const unit = batch === 1 ? 'req/s' : 'ops/s';
  const low = Math.min(...row.pairs);
  const high = Math.max(...row.pairs);
  console.log(
    `${row.transport.padEnd(6)} ${String(batch).padStart(5)} ${String(clients).padStart(7)}  ${row.op.padEnd(7)} ` +
      `${fixed(row.agent.rate, 6)} ${unit} ${fixed(row.agent.p50, 6, 1)} ms ` +
      `${fixed(row.baseline.rate, 6)} ${unit} ${fixed(row.baseline.p50, 6, 1)} ms ` +
      `${fixed(row.ratio, 6, 2)}× (${low.toFixed(2)}–${high.toFixed(2)}) ` +
      `${fixed(row.agent.cpuPerOp, 7, 2)} ${fixed(row.baseline.cpuPerOp, 6, 2)} ms ` +
      `${fixed(100 * row.agent.loopBusy, 7)}% ${fixed(100 * row.baseline.loopBusy, 4)}% ` +
      `${fixed(100 * row.agent.machineBusy, 8)}% ${fixed(100 * row.baseline.machineBusy, 4)}%`,
  );
}

async function main(): Promise<void> {
  const key = generateSigningKey();
  const rows: Row[] = [];
  console.log(
    `agent benchmark: ${SAMPLES} interleaved samples per cell after ${WARMUP} uncounted, 10 KiB files, one state directory per op; medians`,
  );
  const fs = fileSystemOf(BENCH_DIR);
  console.log(`files in ${BENCH_DIR}: ${describeFileSystem(fs)}`);
  if (fs.type === 'ext4' && fs.journal === false) {
    console.log(
      'note: ext4 without a journal skips recently deleted inodes when it makes one, a kernel cost real hosts do not pay\n' +
        'and one that grows from run to run; scripts/bench-journaled.sh runs this on a journaled ext4 (file-system.ts)',
    );
  }
  console.log('');
  console.log(
    'trans  batch clients  op      agent: rate    p50/req  baseline: rate  p50/req  agent/baseline time  CPU/op: agent baseline  loop busy: agent baseline  cores busy: agent baseline',
  );
  for (const transport of TRANSPORTS) {
    const dir = mkdtempSync(join(BENCH_DIR, 'hostfiles-bench-'));
    runDirs.add(dir);
    try {
      const bench = await startBench(transport, dir, key);
      for (const scenario of SCENARIOS) {
        for (const row of await measure(bench, scenario)) {
          rows.push(row);
          printRow(row);
        }
      }
    } finally {
      await cleanUp();
    }
  }
  const verify = measureVerify(key);
  console.log(
    `\nsignature verification: node:crypto ${verify.nodePerSec.toFixed(0)}/s, tweetnacl ${verify.naclPerSec.toFixed(1)}/s (same bytes), ${(verify.nodePerSec / verify.naclPerSec).toFixed(0)}× faster`,
  );
  console.log('');
  for (const row of rows.filter((r) => r.scenario.target && (r.op === 'write' || r.op === 'delete'))) {
    const { batch, clients } = row.scenario;
    console.log(
      `target: ${row.transport} ${row.op} batch ${batch} × ${clients} client${clients === 1 ? '' : 's'} within ${TARGET}× of baseline — ${row.ratio.toFixed(2)}× ${row.ratio <= TARGET ? 'MET' : 'MISSED'}`,
    );
  }
  console.log(
    `target: ≥ 5,000 verifications/s — ${verify.nodePerSec.toFixed(0)}/s ${verify.nodePerSec >= 5000 ? 'MET' : 'MISSED'}`,
  );
  if (process.argv.includes('--json')) console.log(JSON.stringify({ rows, verify }));
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    console.error(`agent benchmark: ${signal}: stopping its servers and removing its files`);
    void cleanUp().finally(() => process.exit(code));
  });
}

main().catch(async (error: unknown) => {
  console.error(error);
  await cleanUp();
  process.exitCode = 1;
});
