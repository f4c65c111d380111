// Runs the real `hostfiles` binary, as an operator would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { signingKeyFromPem, type SigningKey } from '@hostfiles/shared';
import { binPath, removeSetup, setupAgent, startAgent, type AgentHandle } from './agent-process.js';

export const CLI = binPath('@hostfiles/controller');

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The caller's own HOSTFILES_* must not leak into what a test asserts about defaults. */
export const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HOSTFILES_')));

/**
 * Runs the binary to its end without blocking this process (agents' and servers' pipes must keep draining); under
 * `prefix` when given (e.g. `['ip', 'netns', 'exec', NAME]`).
 */
export function hostfiles(
  args: readonly string[],
  env: Record<string, string> = {},
  prefix: readonly string[] = [],
): Promise<Run> {
  const [command = process.execPath, ...rest] = [...prefix, process.execPath, CLI, ...args];
  const child = spawn(command, rest, {
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => {
      resolve({ status, stdout, stderr });
    });
  });
}

/** A controller made by `hostfiles init` in a temp directory, and the binary run on its database. */
export interface Workspace {
  readonly dir: string;
  readonly db: string;
  /** the controller's key, as `init` wrote it: what the test's agents trust */
  readonly key: SigningKey;
  /** runs `hostfiles --db DB args` */
  readonly cli: (...args: string[]) => Promise<Run>;
  /** runs it, requires exit 0, answers its stdout */
  readonly ok: (...args: string[]) => Promise<string>;
}

/**
 * Initializes a workspace; its directory is removed after the test unless `remove: false` (a test that must stop a
 * server using it first removes it itself).
 */
export async function initWorkspace(
  t: TestContext,
  prefix: string,
  { remove = true }: { readonly remove?: boolean } = {},
): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (remove) {
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
  }
  const db = join(dir, 'hostfiles.db');
  const cli = (...args: string[]): Promise<Run> => hostfiles(['--db', db, ...args]);
  const ok = async (...args: string[]): Promise<string> => {
    const run = await cli(...args);
    assert.equal(run.status, 0, `${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  };
  await ok('init');
  const key = signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
  return { dir, db, key, cli, ok };
}

/**
 * A real agent trusting `workspace`'s key, added as host h0 (its key expected), with VM `a` on it (UEFI) and a TPM:
 * the agent (stopped and removed after the test) and the paths of the VM's TPM state and NVRAM on it.
 */
export async function oneVmOnOneHost(
  t: TestContext,
  { key, ok }: Workspace,
): Promise<{ readonly agent: AgentHandle; readonly tpmPath: string; readonly varsPath: string }> {
  const agent = await startAgent(setupAgent({ controllerKey: key }));
  t.after(async () => {
    await agent.stop();
    removeSetup(agent.setup);
  });
  await ok('host', 'add', 'h0', agent.url, '--expect-key', agent.publicKey);
  await ok('vm', 'add', 'a', '--host', 'h0', '--uefi');
  await ok('tpm', 'add', 'a');
  return {
    agent,
    tpmPath: join(agent.setup.roots.TpmState, 'a', 'tpm2-00.permall'),
    varsPath: join(agent.setup.roots.NvRam, 'a_VARS.fd'),
  };
}
