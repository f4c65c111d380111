// Real agent processes on loopback over temporary roots, for the demo and the benchmark: HTTPS with mutual TLS, as
// agents run by default.
// The controller never imports the agent: it runs the agent's built bin as a separate program.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { generateSigningKey } from '@hostfiles/shared';

export interface LocalAgent {
  readonly name: string;
  readonly hostUuid: string;
  readonly roots: { readonly TpmState: string; readonly NvRam: string };
  /** the agent's key (base64), known here as an operator reads it on the host: what `host add` expects */
  readonly publicKey: string;
  url: string;
  readonly running: () => boolean;
  /** the agent process's pid while it runs (the benchmark reads its memory) */
  readonly pid: () => number | undefined;
  /** SIGTERM, and wait for the exit */
  stop(): Promise<void>;
  /** start again on the same port, roots, key and journal */
  start(): Promise<void>;
}

export function agentBin(): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('@hostfiles/agent/package.json');
  const manifest = require(manifestPath) as { bin: Record<string, string> };
  const bin = manifest.bin['hostfiles-agent'];
  if (bin === undefined) throw new Error('@hostfiles/agent has no hostfiles-agent bin');
  return join(dirname(manifestPath), bin);
}

/** Agents started by this process: killed when it exits, however it exits, so none is ever left running. */
const live = new Set<ChildProcess>();
let reaperInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once('exit', () => {
    for (const proc of live) proc.kill('SIGKILL');
  });
}

export async function startLocalAgent(dir: string, name: string, controllerPublicKey: string): Promise<LocalAgent> {
  const home = join(dir, name);
  const roots = { TpmState: join(home, 'swtpm'), NvRam: join(home, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root, { recursive: true });
  const hostUuid = randomUUID();
  const configPath = join(home, 'agent.json');
  // Made here rather than at the agent's first start, so that its key is known without asking the agent.
  const agentKey = generateSigningKey();
  writeFileSync(join(home, 'agent.key'), agentKey.pem, { mode: 0o600, flag: 'wx' });
  const write = (port: number): void => {
    const config = {
      hostUuid,
      listen: { host: '127.0.0.1', port },
      roots,
      trustedKeys: [controllerPublicKey],
      keyFile: join(home, 'agent.key'),
      stateDir: join(home, 'state'),
    };
    writeFileSync(configPath, JSON.stringify(config, null, 2));
  };
  write(0);
  const bin = agentBin();
  let child: ChildProcess | undefined;
  let port = 0;
  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, [bin, '--config', configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    child = proc;
    track(proc);
    port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: proc.stdout }).on('line', (line) => {
        const event = JSON.parse(line) as { event?: string; port?: number };
        if (event.event === 'listening' && typeof event.port === 'number') resolve(event.port);
      });
      proc.once('exit', (code) => {
        reject(new Error(`agent ${name} exited (${String(code)})`));
      });
    });
    write(port);
  };
  await launch();
  const agent: LocalAgent = {
    name,
    hostUuid,
    roots,
    publicKey: agentKey.publicKey,
    url: `https://127.0.0.1:${port}`,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    pid: () => (agent.running() ? child?.pid : undefined),
    async stop() {
      const proc = child;
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    },
    async start() {
      if (agent.running()) return;
      await launch();
    },
  };
  return agent;
}
