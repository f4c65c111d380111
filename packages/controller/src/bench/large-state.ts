// pnpm bench (large NVRAM): a 64 MiB AAVMF variable store written, synced and restored through a real agent, with
// the peak memory of the agent and of the controller measured for each, beside a baseline in the same run: a bare
// HTTP server and a bare client moving the same file the leanest way (streamed, raw, temp file + fsync + rename on
// the server, the same durability as the agent), each in its own process, measured the same way. Rounds
// interleaved; medians.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { addHost, addVm, createVmQueue } from '../flows/index.js';
import { startLocalAgent } from '../local/local-agents.js';
import { createSqliteStore } from '../store/index.js';
import { peakRssKiB, resetPeak } from './memory.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const AAVMF = process.env['BENCH_LARGE_FILE'] ?? '/usr/share/AAVMF/AAVMF_VARS.fd';
const WORKER = new URL('./large-worker.js', import.meta.url).pathname;
const MIB = 1024 * 1024;

interface Sample {
  readonly ms: number;
  /** peak RSS of the server side (agent, or bare server) during the step, KiB */
  readonly server: number;
  /** peak RSS of the client side (controller, or bare client) over its whole process, KiB */
  readonly client: number;
}

type Step = 'write' | 'sync' | 'restore';

async function main(): Promise<void> {
  if (!existsSync(AAVMF)) {
    console.log(`large-state benchmark SKIPPED: ${AAVMF} is missing (Debian package qemu-efi-aarch64)`);
    return;
  }
  const size = statSync(AAVMF).size;
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-lbench-'));
  const key = generateSigningKey();
  writeFileSync(join(dir, 'controller.key'), key.pem, { mode: 0o600 });
  const agent = await startLocalAgent(dir, 'host-0', key.publicKey);
  const bare = await startWorker(['serve', join(dir, 'bare')]);
  try {
    const db = join(dir, 'hostfiles.db');
    await setup(db, key, agent);
    const nvram = join(agent.roots.NvRam, 'arm_VARS.fd');
    const ours: Record<Step, Sample[]> = { write: [], sync: [], restore: [] };
    const base: Record<'upload' | 'download', Sample[]> = { upload: [], download: [] };
    for (let round = 0; round < ROUNDS; round++) {
      rmSync(nvram, { force: true });
      for (const step of ['write', 'sync', 'restore'] as const) {
        if (step === 'restore') rmSync(nvram);
        ours[step].push(await measured(agent.pid(), ['flow', step, db, join(dir, 'controller.key'), AAVMF, nvram]));
      }
      if (Buffer.compare(readFileSync(nvram), readFileSync(AAVMF)) !== 0)
        throw new Error('the restore is not byte-identical');
      base.upload.push(await measured(bare.pid, ['upload', bare.url, AAVMF]));
      base.download.push(await measured(bare.pid, ['download', bare.url, join(dir, 'downloaded.fd')]));
    }
    report(size, ours, base);
  } finally {
    bare.stop();
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function setup(
  db: string,
  key: ReturnType<typeof generateSigningKey>,
  agent: { readonly url: string; readonly publicKey: string },
): Promise<void> {
  const store = await createSqliteStore(db);
  const deps = {
    store,
    agents: createAgentClient({ key, timeoutMs: 10_000, retries: 0, now: Date.now }),
    queue: createVmQueue(),
    now: Date.now,
    random: Math.random,
    concurrency: 8,
    retryBaseMs: 5000,
    retryMaxMs: 600_000,
  };
  await addHost(deps, { name: 'host-0', url: agent.url, expectKey: agent.publicKey });
  await addVm(deps, { name: 'arm', host: 'host-0', bootMode: 'UEFI', secureBoot: true });
  await deps.agents.close();
  await store.close();
}

/** Runs the worker with `args`, the server's peak reset first; answers the time and both peaks. */
async function measured(serverPid: number | undefined, args: readonly string[]): Promise<Sample> {
  if (serverPid === undefined) throw new Error('the server is not running');
  resetPeak(serverPid);
  const { ms, maxRssKiB } = JSON.parse(await run(args)) as { ms: number; maxRssKiB: number };
  return { ms, server: peakRssKiB(serverPid), client: maxRssKiB };
}

function run(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`worker ${args[0] ?? ''} exited ${String(code)}`));
    });
  });
}

async function startWorker(args: readonly string[]): Promise<{ pid: number; url: string; stop: () => void }> {
  const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => {
      resolve(chunk.toString().trim());
    });
    child.once('exit', () => {
      reject(new Error('the bare server exited'));
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('no pid');
  return { pid, url, stop: () => child.kill('SIGTERM') };
}

const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

function report(size: number, ours: Record<Step, Sample[]>, base: Record<'upload' | 'download', Sample[]>): void {
  const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
  const cap = (4 * size) / 1024;
  console.log(`\nlarge NVRAM: ${(size / MIB).toFixed(0)} MiB AAVMF store (${AAVMF}), ${ROUNDS} rounds, medians`);
  console.log(
    'step                     | time     | server peak RSS | client peak RSS   (server: the agent, or the bare server; client: the controller, or the bare client)',
  );
  const row = (name: string, samples: readonly Sample[]): void => {
    const line = [
      name.padEnd(24),
      `${median(samples.map((s) => s.ms)).toFixed(0)} ms`.padStart(8),
      mib(median(samples.map((s) => s.server))).padStart(15),
      mib(median(samples.map((s) => s.client))).padStart(15),
    ];
    console.log(line.join(' | '));
  };
  row('hostfiles file write', ours.write);
  row('hostfiles sync', ours.sync);
  row('hostfiles restore', ours.restore);
  row('baseline upload (raw)', base.upload);
  row('baseline download (raw)', base.download);
  const worst = Math.max(...Object.values(ours).flatMap((s) => s.flatMap((x) => [x.server, x.client])));
  const baseWorst = Math.max(...Object.values(base).flatMap((s) => s.flatMap((x) => [x.server, x.client])));
  console.log(
    `\nworst peak: hostfiles ${mib(worst)}, baseline ${mib(baseWorst)} (${(worst / baseWorst).toFixed(2)}×); ` +
      `target under 4× the file (${mib(cap)}) — ${worst < cap ? 'MET' : 'MISSED'}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
