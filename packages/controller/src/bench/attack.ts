// pnpm bench (attack): a real controller (its agent client: signing, retries, answers verified) writes 10 KiB states
// through a real agent back to back, first alone, then while attackers without a key (their own processes, loopback
// only) (b) keep 1,000 connections sending max-size bodies slowly, and (c) flood max-size hostile envelopes (many
// short keys; the trusted keyId with a signature that cannot verify) from several senders. Per phase: the agent's peak
// RSS (VmHWM, reset as the phase starts) and the writes' p50/p99 beside the quiet phase's, measured in the same run.
// The attackers run at the lowest CPU priority (nice 19), standing in for machines of their own.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Dispatcher } from 'undici';
import {
  certificateFor,
  generateSigningKey,
  stopChild,
  tlsIdentity,
  writeOp,
  type SigningKey,
} from '@hostfiles/shared';
import { createAgentClient, createPinnedDispatcher, type AgentClient, type AgentTarget } from '../agents/index.js';
import { FLOW_SETTINGS } from '../config.js';
import { agentBin } from '../local/local-agents.js';
import { peakRssKiB, resetPeak } from './memory.js';

const PHASE_MS = Number(process.env['BENCH_ATTACK_MS'] ?? 10_000);
const SLOW_CONNECTIONS = Number(process.env['BENCH_ATTACK_CONNECTIONS'] ?? 1000);
const FLOOD_SENDERS = Number(process.env['BENCH_ATTACK_SENDERS'] ?? 8);
/** The agent's default maxBodyBytes: what the attackers send. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const WRITE_BYTES = 10 * 1024;
const STATES = 100;
const WORKER = new URL('./attack-worker.js', import.meta.url).pathname;
const RSS_TARGET_MIB = 256;
/** `http`: plain HTTP, the worst case; `https`: mutual TLS, as an agent serves by default. */
type Transport = 'http' | 'https';
const TRANSPORTS = (process.env['BENCH_ATTACK_TRANSPORTS'] ?? 'http,https').split(',') as Transport[];
const P99_TARGET = 3;

interface Agent {
  readonly url: string;
  /** the agent's certificate, pinned by the controller; null on plain HTTP */
  readonly certificate: string | null;
  readonly pid: number;
  readonly hostUuid: string;
  readonly tpmRoot: string;
  /** bytes the agent has logged so far */
  readonly logBytes: () => number;
  stop(): Promise<void>;
}

/**
 * The agent under attack, as a host runs it, every limit at its default: plain HTTP on loopback (the worst case: all
 * that stands before a sender without a key is the limits), or mutual TLS as it serves by default (such a sender is
 * dropped at the handshake, which still costs the agent its CPU). The one place its config is made.
 */
function agentConfig(home: string, controllerKey: SigningKey, transport: Transport): Record<string, unknown> {
  return {
    hostUuid: randomUUID(),
    listen: { host: '127.0.0.1', port: 0, tls: transport === 'https' },
    roots: { TpmState: join(home, 'swtpm'), NvRam: join(home, 'nvram') },
    trustedKeys: [controllerKey.publicKey],
    keyFile: join(home, 'agent.key'),
    stateDir: join(home, 'state'),
    maxBodyBytes: MAX_BODY_BYTES,
  };
}

async function startAgent(home: string, controllerKey: SigningKey, transport: Transport): Promise<Agent> {
  const config = agentConfig(home, controllerKey, transport);
  const roots = config['roots'] as { TpmState: string; NvRam: string };
  for (const root of Object.values(roots)) mkdirSync(root, { recursive: true });
  // The agent's key made here, so the controller can pin its certificate (the agent uses an existing key file).
  const agentKey = generateSigningKey();
  writeFileSync(config['keyFile'] as string, agentKey.pem, { mode: 0o600 });
  const configPath = join(home, 'agent.json');
  writeFileSync(configPath, JSON.stringify(config));
  const child = spawn(process.execPath, [agentBin(), '--config', configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  let logBytes = 0;
  // Read, counted and dropped: a full pipe would stall the agent.
  child.stdout.on('data', (chunk: Buffer) => {
    logBytes += chunk.length;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const event = JSON.parse(line) as { event?: string; port?: number };
      if (event.event === 'listening' && typeof event.port === 'number') {
        // Closing the reader pauses the stream: resume it, or the agent blocks on a full pipe.
        lines.close();
        child.stdout.resume();
        resolve(event.port);
      }
    });
    child.once('exit', (code) => {
      reject(new Error(`the agent exited (${String(code)})`));
    });
  });
  if (child.pid === undefined) throw new Error('the agent has no pid');
  return {
    url: `${transport}://127.0.0.1:${port}`,
    certificate: transport === 'https' ? certificateFor(agentKey) : null,
    pid: child.pid,
    hostUuid: config['hostUuid'] as string,
    tpmRoot: roots.TpmState,
    logBytes: () => logBytes,
    stop: () => stopChild(child),
  };
}

interface Attacker {
  /** the attacker's counts, once it stopped */
  stop(): Promise<string>;
}

/** Starts an attack worker and resolves once its attack is under way (or after 5 s of trying). */
async function startAttacker(args: readonly string[]): Promise<Attacker> {
  const child = spawn(process.execPath, [WORKER, ...args, String(PHASE_MS * 3)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Lowest CPU priority: on a small machine the attackers stand in for senders elsewhere, so what is measured is what
  // they cost the agent, not what their own work takes from the agent's and the controller's share of the cores.
  if (child.pid !== undefined) setPriority(child.pid, 19);
  let out = '';
  const started = new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('started\n')) resolve();
    });
    setTimeout(resolve, 5000).unref();
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  await started;
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
      return out.replace('started\n', '').trim();
    },
  };
}

interface Row {
  readonly phase: string;
  readonly writes: number;
  readonly failed: number;
  readonly p50: number;
  readonly p99: number;
  readonly peakMiB: number;
  readonly logKiB: number;
  readonly attacker: string;
}

/** Writes back to back for PHASE_MS; the latency of every write, failed ones included (as long as they took). */
async function writeFor(
  client: AgentClient,
  target: AgentTarget,
  tpmRoot: string,
): Promise<{ ms: number[]; failed: number }> {
  const content = randomBytes(WRITE_BYTES);
  const ms: number[] = [];
  let failed = 0;
  const end = Date.now() + PHASE_MS;
  for (let i = 0; Date.now() < end; i++) {
    const path = join(tpmRoot, `vm-${i % STATES}`, 'tpm2-00.permall');
    const start = process.hrtime.bigint();
    try {
      await client.send(target, 'files.apply', { ops: [writeOp('TpmState', path, content)] });
    } catch {
      failed++;
    }
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { ms, failed };
}

async function bodyBytesInFlight(url: string, dispatcher: Dispatcher | undefined): Promise<number> {
  // Node's fetch takes undici's dispatcher (the pinned, client-certified connection); its types do not say so.
  const init = { dispatcher } as unknown as RequestInit;
  const response = await fetch(`${url}/v1/health`, init);
  return ((await response.json()) as { bodyBytesInFlight?: number }).bodyBytesInFlight ?? 0;
}

async function runPhase(
  phase: string,
  context: { agent: Agent; client: AgentClient; target: AgentTarget; health: Dispatcher | undefined },
  attack?: readonly string[],
): Promise<Row> {
  const { agent, client, target, health } = context;
  // Each phase starts from an agent holding nothing: what the last attacker left has to be given back first.
  for (let i = 0; (await bodyBytesInFlight(agent.url, health)) > 0; i++) {
    if (i > 500) throw new Error('the agent still holds body bytes from the last phase');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  resetPeak(agent.pid);
  const logBefore = agent.logBytes();
  const attacker = attack === undefined ? undefined : await startAttacker(attack);
  const { ms, failed } = await writeFor(client, target, agent.tpmRoot);
  const counts = (await attacker?.stop()) ?? '-';
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return {
    phase,
    writes: ms.length,
    failed,
    p50: at(0.5),
    p99: at(0.99),
    peakMiB: peakRssKiB(agent.pid) / 1024,
    logKiB: (agent.logBytes() - logBefore) / 1024,
    attacker: counts,
  };
}

function report(rows: readonly Row[]): void {
  const quiet = rows[0];
  if (quiet === undefined) return;
  const pad = (text: string, width: number): string => text.padStart(width);
  console.log(
    `${'phase'.padEnd(34)}${pad('writes', 7)}${pad('failed', 7)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('p99/quiet', 10)}${pad('peak RSS', 10)}${pad('log', 9)}`,
  );
  for (const row of rows) {
    console.log(
      `${row.phase.padEnd(34)}${pad(String(row.writes), 7)}${pad(String(row.failed), 7)}${pad(row.p50.toFixed(1), 8)}${pad(row.p99.toFixed(1), 8)}${pad(`${(row.p99 / quiet.p99).toFixed(2)}×`, 10)}${pad(`${row.peakMiB.toFixed(0)} MiB`, 10)}${pad(`${row.logKiB.toFixed(0)} KiB`, 9)}`,
    );
  }
  console.log('\nattackers:');
  for (const row of rows.slice(1)) console.log(`  ${row.phase}: ${row.attacker}`);
  const rss = rows.every((row) => row.peakMiB < RSS_TARGET_MIB);
  console.log(`\ntarget: agent peak RSS under ${RSS_TARGET_MIB} MiB in every phase — ${rss ? 'MET' : 'MISSED'}`);
  for (const row of rows.slice(1)) {
    const ratio = row.p99 / quiet.p99;
    const met = ratio <= P99_TARGET && row.failed === 0;
    console.log(
      `target: p99 within ${P99_TARGET}× of quiet, no write failed — ${row.phase}: ${ratio.toFixed(2)}×, ${row.failed} failed — ${met ? 'MET' : 'MISSED'}`,
    );
  }
}

async function main(): Promise<void> {
  for (const transport of TRANSPORTS) await attackOver(transport);
}

async function attackOver(transport: Transport): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-abench-'));
  const key = generateSigningKey();
  const agent = await startAgent(join(dir, 'agent'), key, transport);
  const health = agent.certificate === null ? undefined : createPinnedDispatcher(agent.certificate, tlsIdentity(key));
  const client = createAgentClient({
    key,
    timeoutMs: FLOW_SETTINGS.agentTimeoutMs,
    retries: FLOW_SETTINGS.agentRetries,
    now: Date.now,
  });
  try {
    const endpoint = { url: agent.url, certificate: agent.certificate };
    const info = await client.info(endpoint);
    const target: AgentTarget = { uuid: agent.hostUuid, ...endpoint, publicKey: info.publicKey };
    const context = { agent, client, target, health };
    console.log(
      `\nattack benchmark, ${transport === 'https' ? 'mutual TLS (the default)' : 'plain HTTP (the worst case)'}: ` +
        `${WRITE_BYTES / 1024} KiB writes back to back through the controller's agent client, ` +
        `${PHASE_MS / 1000} s a phase; loopback, maxBodyBytes ${MAX_BODY_BYTES / 1024 / 1024} MiB, ` +
        `every limit at its default; attackers from ${process.env['BENCH_ATTACK_ADDRESSES'] ?? 1} address(es)\n`,
    );
    // Warm up (JIT, the state directories) before anything is measured.
    for (let i = 0; i < STATES; i++) {
      await client.send(target, 'files.apply', {
        ops: [writeOp('TpmState', join(agent.tpmRoot, `vm-${i}`, 'tpm2-00.permall'), randomBytes(WRITE_BYTES))],
      });
    }
    const maxBody = String(MAX_BODY_BYTES);
    const rows = [
      await runPhase('(a) quiet', context),
      await runPhase(`(b) ${SLOW_CONNECTIONS} slow max-size bodies`, context, [
        'slow',
        agent.url,
        String(SLOW_CONNECTIONS),
        maxBody,
      ]),
      await runPhase(`(c) hostile-envelope flood ×${FLOOD_SENDERS}`, context, [
        'flood',
        agent.url,
        String(FLOOD_SENDERS),
        maxBody,
        key.keyId,
      ]),
    ];
    report(rows);
  } finally {
    await client.close();
    await health?.close();
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
