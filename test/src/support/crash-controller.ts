// A controller that dies by SIGKILL at a named step of a flow, and the test side that runs it and awaits its death.
// Run as a script: `node crash-controller.js '<CrashPlan as JSON>'`. It opens the same SQLite file as the test and
// runs the real flow, with its store and agent client wrapped only to kill the process at the named point.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createAgentClient,
  createSqliteStore,
  createVmQueue,
  destroyVm,
  removeTpms,
  type DESTROY_VM,
  REMOVE_TPM,
  type AgentClient,
  type FlowDeps,
  type Store,
} from '@hostfiles/controller';
import { signingKeyFromPem } from '@hostfiles/shared';
import type { Fleet } from './controller.js';

export const CRASH_POINTS = [
  /** when the flow records that it is about to dispatch: collected, nothing sent */
  'after-collect',
  /** right after the first host's answer: one host's files deleted, the others' not (hosts reached one at a time) */
  'mid-dispatch',
  /** at the start of the purge transaction: every host answered, no row purged */
  'before-purge',
  /** inside the purge transaction, at its last statement: everything written, nothing committed */
  'mid-purge',
  /** right after the purge committed */
  'after-purge',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export interface CrashPlan {
  readonly db: string;
  /** PKCS#8 PEM of the controller key the agents trust */
  readonly keyFile: string;
  readonly point: CrashPoint;
  readonly flow: typeof REMOVE_TPM | typeof DESTROY_VM;
  /** the VMs of a removal, or the one VM to destroy */
  readonly vms: readonly string[];
  readonly operationId: string;
}

export interface CrashOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

const SCRIPT = fileURLToPath(import.meta.url);

/** Test side: runs the plan in a child process and resolves when it has died. */
export async function runCrashing(plan: CrashPlan): Promise<CrashOutcome> {
  const child = spawn(process.execPath, [SCRIPT, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({ code, signal, output });
    });
  });
}

/** SIGKILL to ourselves, then block: no line of JavaScript may run after the crash point. */
function die(): never {
  process.kill(process.pid, 'SIGKILL');
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

function crashingStore(store: Store, point: CrashPoint): Store {
  return {
    ...store,
    async setOperationStep(id, step, report) {
      if (point === 'after-collect' && step === 'dispatch') die();
      await store.setOperationStep(id, step, report);
    },
    async transaction(fn) {
      if (point === 'before-purge') die();
      const value = await store.transaction((tx) =>
        fn(
          point === 'mid-purge'
            ? {
                ...tx,
                finishOperation: () => die(),
              }
            : tx,
        ),
      );
      if (point === 'after-purge') die();
      return value;
    },
  };
}

function crashingAgents(agents: AgentClient, point: CrashPoint): AgentClient {
  return {
    info: (endpoint) => agents.info(endpoint),
    certificate: (url) => agents.certificate(url),
    close: () => agents.close(),
    async send(target, kind, body, options) {
      const answer = await agents.send(target, kind, body, options);
      // The busy probe (files.stat) comes before the journal: only a deletion command is mid-dispatch.
      if (point === 'mid-dispatch' && kind === 'files.apply') die();
      return answer;
    },
  };
}

async function main(plan: CrashPlan): Promise<void> {
  const store = await createSqliteStore(plan.db);
  const key = signingKeyFromPem(readFileSync(plan.keyFile, 'utf8'));
  const agents = createAgentClient({ key, timeoutMs: 3000, retries: 0, now: Date.now, backoffMs: 0 });
  const deps: FlowDeps = {
    store: crashingStore(store, plan.point),
    agents: crashingAgents(agents, plan.point),
    queue: createVmQueue(),
    now: Date.now,
    random: () => 0.5,
    // One host at a time, so that 'mid-dispatch' falls between two hosts.
    concurrency: 1,
    retryBaseMs: 0,
    retryMaxMs: 0,
  };
  if (plan.flow === REMOVE_TPM) await removeTpms(deps, plan.vms, plan.operationId);
  else await destroyVm(deps, plan.vms[0] ?? '', plan.operationId);
  await agents.close();
  await store.close();
  process.stdout.write(`the flow ended without reaching ${plan.point}\n`);
  process.exitCode = 3;
}

/**
 * Test side: closes the running controller's store, runs the plan against the same database until it dies by
 * SIGKILL, and answers the deps of a controller started afresh on that database (new store, new queue).
 */
export async function crashAndRestart(
  fleet: Fleet,
  current: FlowDeps,
  plan: Omit<CrashPlan, 'db' | 'keyFile'>,
): Promise<FlowDeps> {
  // startFleet keeps its database there.
  const db = join(fleet.dir, 'hostfiles.db');
  const keyFile = join(fleet.dir, 'controller-key.pem');
  writeFileSync(keyFile, fleet.key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  await current.store.close();
  const outcome = await runCrashing({ ...plan, db, keyFile });
  if (outcome.signal !== 'SIGKILL') {
    throw new Error(
      `the controller did not die at ${plan.point} (code ${String(outcome.code)}, signal ${String(outcome.signal)}): ${outcome.output}`,
    );
  }
  return { ...current, store: await createSqliteStore(db), queue: createVmQueue() };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(JSON.parse(process.argv[2] ?? '') as CrashPlan);
}
