// pnpm bench (outbox drain, several controllers): BENCH_DRAIN_PENDING pending deletions (100,000) over BENCH_DRAIN_HOSTS
// real agent processes (200), drained by 1 controller on SQLite and by 1, 2 and 4 controllers on PostgreSQL, each
// controller a process of its own running the product's retry pass over its share of the hosts (drain-worker.ts).
// The same files, the same agents, the same durability in every configuration. Printed: deletions/s (wall time), and
// CPU time per 1,000 confirmed deletions in the controllers (their own accounting) and in PostgreSQL (its backends
// serving them, from /proc): the agents, the controllers and PostgreSQL share this machine's cores, so CPU per
// deletion, not the wall time, is what predicts scale on real hardware.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generateSigningKey, type GeneratedKey } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { openStore } from '../cli/context.js';
import { addHost, createVmQueue, type FlowDeps } from '../flows/index.js';
import { startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import type { NewPendingDeletion } from '../store/index.js';

const HOSTS = Number(process.env['BENCH_DRAIN_HOSTS'] ?? 200);
const PENDING = Number(process.env['BENCH_DRAIN_PENDING'] ?? 100_000);
const PG_URL = process.env['HOSTFILES_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONFIGS: readonly { readonly engine: 'sqlite' | 'postgres'; readonly controllers: number }[] = (
  process.env['BENCH_DRAIN_CONFIGS'] ?? 'sqlite:1,postgres:1,postgres:2,postgres:4'
)
  .split(',')
  .map((c) => {
    const [engine, n] = c.split(':');
    return { engine: engine === 'sqlite' ? 'sqlite' : 'postgres', controllers: Number(n ?? 1) };
  });
const CONTENT = Buffer.alloc(512, 0x42);
/** Linux's clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLK_TCK = 100;

interface Worker {
  readonly child: ChildProcess;
  readonly lines: Interface;
  next(): Promise<Record<string, unknown>>;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-drain-'));
  const key = generateSigningKey();
  const agents: LocalAgent[] = [];
  try {
    for (let i = 0; i < HOSTS; i++) agents.push(await startLocalAgent(dir, `host-${i}`, key.publicKey));
    console.log(
      `outbox drain: ${PENDING} pending deletions over ${HOSTS} agents, ` +
        `${CONFIGS.map((c) => `${c.controllers} controller${c.controllers === 1 ? '' : 's'} on ${c.engine}`).join(', ')}\n`,
    );
    for (const [i, config] of CONFIGS.entries()) await drain(join(dir, `run-${i}`), i, config, key, agents);
  } finally {
    await Promise.all(agents.map((agent) => agent.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function drain(
  dir: string,
  run: number,
  config: (typeof CONFIGS)[number],
  key: GeneratedKey,
  agents: readonly LocalAgent[],
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const schema = `hf_drain_${process.pid}_${run}`;
  const db = config.engine === 'sqlite' ? join(dir, 'hostfiles.db') : `${PG_URL}?schema=${schema}`;
  const admin = config.engine === 'postgres' ? new pg.Client({ connectionString: PG_URL }) : undefined;
  await admin?.connect();
  const started: Worker[] = [];
  try {
    await seed(db, key, agents, run);
    const workers = await Promise.all(Array.from({ length: config.controllers }, () => startWorker(db, key.pem)));
    started.push(...workers);
    const pgBefore = admin === undefined ? new Map<number, number>() : await backendCpu(admin, schema);
    const start = process.hrtime.bigint();
    for (const worker of workers) worker.child.stdin?.write('go\n');
    const done = await Promise.all(workers.map((worker) => worker.next()));
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const pgAfter = admin === undefined ? new Map<number, number>() : await backendCpu(admin, schema);
    for (const worker of workers) worker.child.stdin?.write('exit\n');
    await Promise.all(workers.map((worker) => new Promise((resolve) => worker.child.once('exit', resolve))));

    const confirmed = done.reduce((sum, d) => sum + Number(d['confirmed']), 0);
    const controllerCpu = done.reduce((sum, d) => sum + Number(d['cpuMs']), 0);
    let pgCpu = 0;
    for (const [pid, ticks] of pgAfter) pgCpu += ((ticks - (pgBefore.get(pid) ?? 0)) * 1000) / CLK_TCK;
    const left = agents.reduce((sum, agent) => sum + remaining(join(agent.roots.TpmState, `run-${run}`)), 0);
    if (confirmed !== PENDING || left !== 0) {
      throw new Error(`${config.engine}×${config.controllers}: ${confirmed} confirmed, ${left} files left`);
    }
    const per1k = (cpuMs: number): string => ((cpuMs * 1000) / confirmed).toFixed(1);
    console.log(
      `${config.controllers} controller${config.controllers === 1 ? ' ' : 's'} on ${config.engine.padEnd(8)}: ` +
        `${(confirmed / (ms / 1000)).toFixed(0)} deletions/s (${(ms / 1000).toFixed(1)} s for ${confirmed}); ` +
        `CPU per 1,000 deletions: controllers ${per1k(controllerCpu)} ms` +
        (admin === undefined ? '' : `, PostgreSQL ${per1k(pgCpu)} ms`) +
        `; passes ${done.map((d) => String(d['passes'])).join('/')}`,
    );
  } finally {
    // A worker that failed leaves the others draining: stopped before their schema goes (DROP would wait on them).
    for (const worker of started) worker.child.kill('SIGKILL');
    if (admin !== undefined) {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  }
}

/** Untimed: the hosts added (their keys pinned), the files on disk, and one pending deletion for each. */
async function seed(db: string, key: GeneratedKey, agents: readonly LocalAgent[], run: number): Promise<void> {
  const store = await openStore(db);
  const deps: FlowDeps = {
    store,
    agents: createAgentClient({ key, timeoutMs: 60_000, retries: 0, now: Date.now }),
    queue: createVmQueue(),
    now: Date.now,
    random: Math.random,
    concurrency: 32,
    retryBaseMs: 5000,
    retryMaxMs: 600_000,
  };
  try {
    const rows: NewPendingDeletion[] = [];
    for (const agent of agents) {
      const host = await addHost(deps, { name: agent.name, url: agent.url, expectKey: agent.publicKey });
      const home = join(agent.roots.TpmState, `run-${run}`);
      mkdirSync(home, { recursive: true });
      for (let i = 0; i < Math.ceil(PENDING / agents.length); i++) {
        if (rows.length >= PENDING) break;
        const path = join(home, `${i}.permall`);
        writeFileSync(path, CONTENT);
        rows.push({
          hostUuid: host.uuid,
          type: 'TpmState',
          path,
          vmUuid: randomUUID(),
          tpmUuid: null,
          nextAttemptAt: 0,
          lastError: null,
        });
      }
    }
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000);
      await store.transaction((tx) => tx.addPendingDeletions(chunk));
    }
  } finally {
    await deps.agents.close();
    await store.close();
  }
}

function remaining(path: string): number {
  try {
    return readdirSync(path).length;
  } catch {
    return 0;
  }
}

/** CPU ticks (user + system) of each PostgreSQL backend serving the controllers (of `schema`), from /proc. */
async function backendCpu(admin: pg.Client, schema: string): Promise<Map<number, number>> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
    `hostfiles:${schema}`,
  ]);
  const ticks = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      // after "pid (comm) ": state is field 3, utime 14 and stime 15 → indexes 11 and 12 here
      ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // the backend ended meanwhile
    }
  }
  return ticks;
}

async function startWorker(db: string, keyPem: string): Promise<Worker> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'drain-worker.js');
  const child = spawn(process.execPath, [script, JSON.stringify({ db, keyPem })], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const queue: Record<string, unknown>[] = [];
  const waiting: ((line: Record<string, unknown>) => void)[] = [];
  lines.on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  });
  const next = (): Promise<Record<string, unknown>> => {
    const line = queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      child.once('exit', (code) => {
        reject(new Error(`drain worker exited ${String(code)}`));
      });
    });
  };
  await next(); // ready
  return { child, lines, next };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
