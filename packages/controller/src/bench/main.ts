// pnpm bench (controller part): remove the TPMs of 1,000 VMs spread over 20 local agents in one call, beside a
// baseline in the same run: the same file deletions made directly on disk plus the same number of plain HTTP
// round trips to a bare server. Rounds interleaved; medians and the ratio printed.
import { randomUUID } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  fsyncSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateSigningKey, writeOp } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { addHost, addTpm, addVm, createVmQueue, removeTpms, type FlowDeps } from '../flows/index.js';
import { startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import { createSqliteStore } from '../store/index.js';

const HOSTS = Number(process.env['BENCH_HOSTS'] ?? 20);
const VMS = Number(process.env['BENCH_VMS'] ?? 1000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const CONTENT = Buffer.alloc(16 * 1024, 0x42);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-cbench-'));
  const key = generateSigningKey();
  const agents: LocalAgent[] = [];
  const bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;
  try {
    for (let i = 0; i < HOSTS; i++) agents.push(await startLocalAgent(dir, `host-${i}`, key.publicKey));
    console.log(
      `controller benchmark: remove the TPMs of ${VMS} VMs on ${HOSTS} agents in one call, ${ROUNDS} rounds, medians\n`,
    );
    const flowTimes: number[] = [];
    const baseTimes: number[] = [];
    let commands = 0;
    let files = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const result = await flowRound(join(dir, `round-${round}`), key, agents);
      flowTimes.push(result.ms);
      commands = result.commands;
      files = result.paths.length;
      baseTimes.push(await baselineRound(result.paths, result.commands, bareUrl));
    }
    const flow = median(flowTimes);
    const base = median(baseTimes);
    console.log(
      `hostfiles removeTpms: ${flow.toFixed(0)} ms for ${files} files, ${commands} commands (${HOSTS} hosts)`,
    );
    console.log(`baseline (direct deletes + ${commands} bare HTTP round trips): ${base.toFixed(0)} ms`);
    console.log(
      `ratio: ${(flow / base).toFixed(2)}×  (rounds: flow ${flowTimes.map((t) => t.toFixed(0)).join(', ')} ms; baseline ${baseTimes.map((t) => t.toFixed(0)).join(', ')} ms)`,
    );
    console.log(
      `\ntarget: within 2× of the baseline — ${flow / base <= 2 ? 'MET' : 'MISSED'}; exactly one command per host — ${commands === HOSTS ? 'MET' : 'MISSED'}`,
    );
  } finally {
    bare.close();
    await Promise.all(agents.map((agent) => agent.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

interface FlowResult {
  readonly ms: number;
  readonly commands: number;
  readonly paths: string[];
}

/** A fresh database with VMS VMs (TPM state on their host, NVRAM for a third of them); times removeTpms only. */
async function flowRound(
  dir: string,
  key: ReturnType<typeof generateSigningKey>,
  agents: readonly LocalAgent[],
): Promise<FlowResult> {
  mkdirSync(dir, { recursive: true });
  const store = await createSqliteStore(join(dir, 'hostfiles.db'));
  const deps: FlowDeps = {
    store,
    agents: createAgentClient({ key, timeoutMs: 30_000, retries: 0, now: Date.now }),
    queue: createVmQueue(),
    now: Date.now,
    random: Math.random,
    concurrency: 32,
    retryBaseMs: 5000,
    retryMaxMs: 600_000,
  };
  try {
    for (const agent of agents) await addHost(deps, { name: agent.name, url: agent.url, expectKey: agent.publicKey });
    const names: string[] = [];
    const perHost = new Map<number, { vm: string; vmUuid: string; type: 'TpmState' | 'NvRam'; path: string }[]>();
    for (let i = 0; i < VMS; i++) {
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
      list.push({
        vm: name,
        vmUuid: vm.uuid,
        type: 'TpmState',
        path: join(agent.roots.TpmState, vm.uuid, 'tpm2-00.permall'),
      });
      if (i % 3 === 0)
        list.push({ vm: name, vmUuid: vm.uuid, type: 'NvRam', path: join(agent.roots.NvRam, vm.uuid, 'VARS.fd') });
      perHost.set(h, list);
    }
    // Setup, untimed: one batched write per host, the rows recorded in one transaction.
    for (const [h, list] of perHost) {
      const agent = agents[h];
      if (agent === undefined) continue;
      const host = await store.getHostByName(agent.name);
      if (host === null) throw new Error('host missing');
      await deps.agents.send(host, 'files.apply', { ops: list.map((f) => writeOp(f.type, f.path, CONTENT)) });
      await store.transaction(async (tx) => {
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
    const start = process.hrtime.bigint();
    const report = await removeTpms(deps, names);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const paths = report.hosts.flatMap((h) => h.files.filter((f) => f.status === 'deleted').map((f) => f.path));
    if (report.pending.length > 0) throw new Error(`${report.pending.length} deletions unconfirmed`);
    return { ms, commands: report.commands, paths };
  } finally {
    await deps.agents.close();
    await store.close();
  }
}

/** The same files made again (untimed), then deleted directly as the agent does, plus the same round trips. */
async function baselineRound(paths: readonly string[], commands: number, url: string): Promise<number> {
  for (const path of paths) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, CONTENT);
  }
  const start = process.hrtime.bigint();
  for (const path of paths) {
    unlinkSync(path);
    rmdirSync(dirname(path));
    const parent = openSync(dirname(dirname(path)), 'r');
    fsyncSync(parent);
    closeSync(parent);
  }
  await Promise.all(
    Array.from({ length: commands }, async () => {
      const response = await fetch(url, {
        method: 'POST',
        body: '{"ops":[]}',
        headers: { 'content-type': 'application/json' },
      });
      await response.arrayBuffer();
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
