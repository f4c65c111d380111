// pnpm bench (agent part): ops/s through a real agent beside a bare node:http baseline doing the same file work,
// in the same run, samples interleaved so both see the same machine noise. Prints medians and ratios.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import nacl from 'tweetnacl';
import {
  buildCommand,
  COMMAND_CONTEXT,
  deleteOp,
  generateSigningKey,
  parseEnvelope,
  signedBytes,
  signEnvelope,
  trustedKeyFromBase64,
  verifyEnvelope,
  writeOp,
  type ApplyOp,
} from '@hostfiles/shared';

const HERE = dirname(fileURLToPath(import.meta.url));
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 7);
const CONTENT = Buffer.alloc(10 * 1024, 0x5a);

interface Server {
  readonly url: string;
  readonly child: ChildProcess;
}

async function spawnServer(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const event = JSON.parse(line) as { port?: number };
      if (typeof event.port === 'number') resolve(event.port);
    });
    child.once('exit', (code) => {
      reject(new Error(`server exited ${String(code)}`));
    });
  });
  child.stdout.resume(); // keep draining the agent's logs: they are part of its cost
  return { url: `http://127.0.0.1:${port}`, child };
}

async function post(url: string, body: string): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

interface Row {
  readonly op: 'write' | 'delete';
  readonly batch: number;
  readonly agentOpsPerSec: number;
  readonly baselineOpsPerSec: number;
  readonly ratio: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-bench-'));
  const key = generateSigningKey();
  const hostUuid = randomUUID();
  const roots = { TpmState: join(dir, 'agent', 'swtpm'), NvRam: join(dir, 'agent', 'nvram') };
  const baselineRoot = join(dir, 'baseline');
  for (const path of [roots.TpmState, roots.NvRam, baselineRoot]) mkdirSync(path, { recursive: true });
  const configPath = join(dir, 'agent.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      hostUuid,
      listen: { host: '127.0.0.1', port: 0 },
      roots,
      trustedKeys: [key.publicKey],
      keyFile: join(dir, 'agent.key'),
      stateDir: join(dir, 'state'),
      // 1000 × 10 KiB, base64 in JSON, base64 again in the envelope, is ~18 MiB.
      maxBodyBytes: 32 * 1024 * 1024,
    }),
  );
  const agent = await spawnServer([join(HERE, '..', 'main.js'), '--config', configPath]);
  const baseline = await spawnServer([join(HERE, 'baseline-server.js')]);
  try {
    console.log(`agent benchmark: ${SAMPLES} interleaved samples per cell, 10 KiB writes, median ops/s\n`);
    console.log('op      batch   agent ops/s   baseline ops/s   agent/baseline time');
    const rows: Row[] = [];
    for (const batch of [1, 100, 1000]) {
      for (const op of ['write', 'delete'] as const) {
        const row = await measure(op, batch, { agent, baseline, key, hostUuid, roots, baselineRoot });
        rows.push(row);
        console.log(
          `${op.padEnd(7)} ${String(batch).padStart(5)} ${row.agentOpsPerSec.toFixed(0).padStart(13)} ${row.baselineOpsPerSec.toFixed(0).padStart(16)} ${row.ratio.toFixed(2).padStart(20)}×`,
        );
      }
    }
    const verify = measureVerify(key);
    console.log(
      `\nsignature verification: node:crypto ${verify.nodePerSec.toFixed(0)}/s, tweetnacl ${verify.naclPerSec.toFixed(1)}/s (same bytes), ${(verify.nodePerSec / verify.naclPerSec).toFixed(0)}× faster`,
    );
    const at100 = rows.filter((row) => row.batch === 100);
    const worst = Math.max(...at100.map((row) => row.ratio));
    console.log(
      `\ntarget: agent within 1.5× of baseline at batch 100 — worst ${worst.toFixed(2)}× ${worst <= 1.5 ? 'MET' : 'MISSED'}`,
    );
    console.log(
      `target: ≥ 5,000 verifications/s — ${verify.nodePerSec.toFixed(0)}/s ${verify.nodePerSec >= 5000 ? 'MET' : 'MISSED'}`,
    );
    if (process.argv.includes('--json')) console.log(JSON.stringify({ rows, verify }));
  } finally {
    agent.child.kill('SIGTERM');
    baseline.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Context {
  readonly agent: Server;
  readonly baseline: Server;
  readonly key: ReturnType<typeof generateSigningKey>;
  readonly hostUuid: string;
  readonly roots: { TpmState: string; NvRam: string };
  readonly baselineRoot: string;
}

/** One cell: SAMPLES pairs of (agent, baseline) runs of the same ops, interleaved. */
async function measure(op: 'write' | 'delete', batch: number, ctx: Context): Promise<Row> {
  // A sample is at least 200 ops so that batch 1 is not one lone round trip.
  const requests = Math.max(1, Math.ceil(200 / batch));
  const agentRates: number[] = [];
  const baselineRates: number[] = [];
  for (let sample = 0; sample < SAMPLES; sample++) {
    const paths = (root: string): string[][] =>
      Array.from({ length: requests }, (_, r) =>
        Array.from({ length: batch }, (_, i) => join(root, `vm-${r}-${i}`, 'tpm2-00.permall')),
      );
    const agentPaths = paths(ctx.roots.TpmState);
    const baselinePaths = paths(ctx.baselineRoot);
    if (op === 'delete') for (const path of [...agentPaths.flat(), ...baselinePaths.flat()]) seed(path);
    const now = Date.now();
    const agentBodies = agentPaths.map((ops) => {
      const applyOps: ApplyOp[] = ops.map((path) =>
        op === 'write' ? writeOp('TpmState', path, CONTENT) : deleteOp('TpmState', path),
      );
      return JSON.stringify(
        signEnvelope(
          COMMAND_CONTEXT,
          buildCommand('files.apply', ctx.hostUuid, { ops: applyOps }, { now, lifetimeMs: 300_000 }),
          ctx.key,
        ),
      );
    });
    const content = CONTENT.toString('base64');
    const baselineBodies = baselinePaths.map((ops) =>
      JSON.stringify({ ops: ops.map((path) => (op === 'write' ? { op, path, content } : { op, path })) }),
    );
    agentRates.push(await timeRequests(`${ctx.agent.url}/v1/files/apply`, agentBodies, requests * batch));
    baselineRates.push(await timeRequests(ctx.baseline.url, baselineBodies, requests * batch));
  }
  const agentOpsPerSec = median(agentRates);
  const baselineOpsPerSec = median(baselineRates);
  return { op, batch, agentOpsPerSec, baselineOpsPerSec, ratio: baselineOpsPerSec / agentOpsPerSec };
}

function seed(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, CONTENT, { mode: 0o600 });
}

async function timeRequests(url: string, bodies: string[], ops: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (const body of bodies) await post(url, body);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return ops / seconds;
}

function measureVerify(key: ReturnType<typeof generateSigningKey>): { nodePerSec: number; naclPerSec: number } {
  const command = buildCommand(
    'files.apply',
    randomUUID(),
    { ops: [deleteOp('TpmState', '/var/lib/swtpm/vm/tpm2-00.permall')] },
    { now: Date.now() },
  );
  const text = JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, key));
  const envelope = parseEnvelope(text);
  if (!envelope.ok) throw new Error(envelope.error.message);
  const trusted = trustedKeyFromBase64(key.publicKey);
  const lookup = (): typeof trusted.key => trusted.key;
  const rate = (count: number, fn: () => boolean): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) if (!fn()) throw new Error('verification failed');
    return count / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  const nodePerSec = rate(20_000, () => verifyEnvelope(envelope.value, COMMAND_CONTEXT, lookup).ok);
  const message = signedBytes(COMMAND_CONTEXT, Buffer.from(envelope.value.payload, 'base64'));
  const signature = Buffer.from(envelope.value.signature, 'base64');
  const publicKey = Buffer.from(key.publicKey, 'base64');
  const naclPerSec = rate(30, () => nacl.sign.detached.verify(message, signature, publicKey));
  return { nodePerSec, naclPerSec };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
