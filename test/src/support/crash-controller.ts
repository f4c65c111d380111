// A controller that dies by SIGKILL at a named step of a flow, and the test side that runs it and awaits its death.
// Run as a script: `node crash-controller.js '<CrashPlan as JSON>'`. It opens the same SQLite file as the test and
// runs the real flow, with its store and agent client wrapped only to trace the flow and to kill the process at the
// named point. The trace (what the flow journaled, which agents answered, which transactions committed) is written
// synchronously to stdout, so the test reads exactly how far the flow got before the kill.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createAgentClient,
  createSqliteStore,
  createVmQueue,
  destroyVm,
  fileState,
  reconcileHost,
  recoverVm,
  removeTpms,
  restoreVm,
  retryPendingDeletions,
  syncVm,
  writeFile,
  DESTROY_VM,
  RECONCILE_HOST,
  RECOVER_VM,
  REMOVE_TPM,
  RESTORE_VM,
  SYNC_VM,
  type AgentClient,
  type FlowDeps,
  type Store,
  type StoreTx,
} from '@hostfiles/controller';
import { signingKeyFromPem, type FileType } from '@hostfiles/shared';
import type { Fleet } from './controller.js';

/** Where a controller can be killed in a removal or a destruction. */
export const CRASH_POINTS = [
  /** when the flow records that it is about to dispatch: collected, nothing sent */
  'after-collect',
  /** right after the first host's answer: one host's files deleted, the others' not (hosts reached one at a time) */
  'mid-dispatch',
  /** at the start of the purge transaction: every host answered, no row purged */
  'before-purge',
  /** inside the purge transaction, after its last statement: everything written, nothing committed */
  'mid-purge',
  /** right after the purge committed */
  'after-purge',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** Where a controller can be killed in a sync. */
export const SYNC_CRASH_POINTS = [
  /** the operation journaled at step 'read': nothing read */
  'started',
  /** right after the first host's read answered (hosts reached one at a time) */
  'mid-read',
  /** at the start of the record transaction: every host read, nothing recorded */
  'read',
  /** inside the record transaction, after its last statement: rows, backups, operation written, nothing committed */
  'mid-record',
  /** right after the record transaction committed (it finished the operation) */
  'recorded',
] as const;
export type SyncCrashPoint = (typeof SYNC_CRASH_POINTS)[number];

/** Where a controller can be killed in a restore. */
export const RESTORE_CRASH_POINTS = [
  /** the operation journaled at step 'write': nothing guarded, nothing sent */
  'started',
  /** right after the guards' transaction committed (paths taken charge of, guard deletions armed): nothing sent */
  'guarded',
  /** right after the agent answered: every state written on the host, nothing recorded */
  'landed',
  /** inside the record transaction, after its last statement: nothing committed */
  'mid-record',
  /** right after the record transaction committed, before the operation is finished (its own statement) */
  'recorded',
] as const;
export type RestoreCrashPoint = (typeof RESTORE_CRASH_POINTS)[number];

/** Where a controller can be killed in a `reconcile --apply`. */
export const RECONCILE_CRASH_POINTS = [
  /** the operation journaled at step 'list': nothing listed */
  'started',
  /** right after the host's listing answered: nothing compared or scheduled */
  'listed',
  /** inside the compare-and-schedule transaction, after its last statement: nothing committed */
  'mid-schedule',
  /** right after it committed (it finished the operation) */
  'scheduled',
] as const;
export type ReconcileCrashPoint = (typeof RECONCILE_CRASH_POINTS)[number];

/** Where a controller can be killed in a retry pass (not journaled: the outbox rows are its journal). */
export const RETRY_CRASH_POINTS = [
  /** right after the first host's deletions answered (hosts reached one at a time) */
  'mid-dispatch',
  /** at the start of the settle transaction: every host answered, nothing settled */
  'dispatched',
  /** inside the settle transaction, after its last statement: nothing committed */
  'mid-settle',
  /** right after the settle transaction committed */
  'settled',
] as const;
export type RetryCrashPoint = (typeof RETRY_CRASH_POINTS)[number];

/** Where a controller can be killed in a file write (not journaled: its guard deletion is its journal). */
export const WRITE_CRASH_POINTS = [
  /** right after the guard's transaction committed: nothing sent */
  'guarded',
  /** right after the agent answered: the state written on the host, not recorded */
  'landed',
  /** inside the record transaction, after its last statement: nothing committed */
  'mid-record',
  /** right after the record transaction committed */
  'recorded',
] as const;
export type WriteCrashPoint = (typeof WRITE_CRASH_POINTS)[number];

/** Where a controller can be killed in a `vm recover`. */
export const RECOVER_CRASH_POINTS = [
  /** the operation journaled at step 'restore': nothing guarded, nothing sent */
  'started',
  /** right after the guards' transaction committed: nothing sent */
  'guarded',
  /** right after the new host answered: every generation written there, nothing recorded */
  'landed',
  /** right after the restore's record transaction committed: the states recorded on the new host, nothing moved */
  'restored',
  /** inside the move transaction, after its last statement: nothing of the move committed */
  'mid-move',
  /** right after the move transaction committed (it finished the operation) */
  'moved',
] as const;
export type RecoverCrashPoint = (typeof RECOVER_CRASH_POINTS)[number];

export const RETRY = 'retry';
export const WRITE = 'write';

/** The flow to run and where to kill it. */
export type FlowPlan =
  | {
      readonly flow: typeof REMOVE_TPM | typeof DESTROY_VM;
      readonly point: CrashPoint;
      /** the VMs of a removal, or the one VM to destroy */
      readonly vms: readonly string[];
      readonly operationId: string;
    }
  | { readonly flow: typeof SYNC_VM; readonly point: SyncCrashPoint; readonly vm: string; readonly operationId: string }
  | {
      readonly flow: typeof RESTORE_VM;
      readonly point: RestoreCrashPoint;
      readonly vm: string;
      readonly host: string;
      readonly paths: Readonly<Partial<Record<FileType, string>>>;
      readonly operationId: string;
    }
  | {
      readonly flow: typeof RECONCILE_HOST;
      readonly point: ReconcileCrashPoint;
      readonly host: string;
      readonly includeUnknown: boolean;
      readonly operationId: string;
    }
  | {
      readonly flow: typeof RECOVER_VM;
      readonly point: RecoverCrashPoint;
      readonly vm: string;
      readonly to: string;
      readonly operationId: string;
    }
  | { readonly flow: typeof RETRY; readonly point: RetryCrashPoint }
  | {
      readonly flow: typeof WRITE;
      readonly point: WriteCrashPoint;
      readonly vm: string;
      readonly host: string;
      readonly type: FileType;
      readonly path: string;
      /** a file state's bytes, base64 */
      readonly content: string;
    };

export type CrashPlan = FlowPlan & {
  readonly db: string;
  /** PKCS#8 PEM of the controller key the agents trust */
  readonly keyFile: string;
};

export interface CrashOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

/**
 * How a point is reached. `start`: right after the operation is journaled. `step`: when the flow records that it
 * enters `step`, before it is recorded. `answer`: right after the `nth` answer to a command of `kind`. `tx`: when the
 * flow opens its first transaction. `uncommitted`: in the transaction that called `marker`, after its last statement,
 * before COMMIT. `committed`: right after that transaction committed.
 */
type Trip =
  | { readonly at: 'start' | 'tx' }
  | { readonly at: 'step'; readonly step: string }
  | { readonly at: 'answer'; readonly kind: string; readonly nth: number }
  | { readonly at: 'uncommitted' | 'committed'; readonly marker: keyof StoreTx };

const PURGE_TRIPS: Readonly<Record<CrashPoint, Trip>> = {
  'after-collect': { at: 'step', step: 'dispatch' },
  // The busy probe (files.stat) comes before the journal: only a deletion command is mid-dispatch.
  'mid-dispatch': { at: 'answer', kind: 'files.apply', nth: 1 },
  'before-purge': { at: 'tx' },
  'mid-purge': { at: 'uncommitted', marker: 'finishOperation' },
  'after-purge': { at: 'committed', marker: 'finishOperation' },
};

const TRIPS: { readonly [F in FlowPlan['flow']]: Readonly<Record<Extract<FlowPlan, { flow: F }>['point'], Trip>> } = {
  [REMOVE_TPM]: PURGE_TRIPS,
  [DESTROY_VM]: PURGE_TRIPS,
  [SYNC_VM]: {
    started: { at: 'start' },
    'mid-read': { at: 'answer', kind: 'files.read', nth: 1 },
    read: { at: 'tx' },
    'mid-record': { at: 'uncommitted', marker: 'finishOperation' },
    recorded: { at: 'committed', marker: 'finishOperation' },
  },
  [RESTORE_VM]: {
    started: { at: 'start' },
    guarded: { at: 'committed', marker: 'addOwnedPaths' },
    landed: { at: 'answer', kind: 'files.apply', nth: 1 },
    'mid-record': { at: 'uncommitted', marker: 'upsertFile' },
    recorded: { at: 'committed', marker: 'upsertFile' },
  },
  [RECONCILE_HOST]: {
    started: { at: 'start' },
    listed: { at: 'answer', kind: 'files.list', nth: 1 },
    'mid-schedule': { at: 'uncommitted', marker: 'finishOperation' },
    scheduled: { at: 'committed', marker: 'finishOperation' },
  },
  [RECOVER_VM]: {
    started: { at: 'start' },
    guarded: { at: 'committed', marker: 'addOwnedPaths' },
    landed: { at: 'answer', kind: 'files.apply', nth: 1 },
    restored: { at: 'committed', marker: 'upsertFile' },
    'mid-move': { at: 'uncommitted', marker: 'setVmHost' },
    moved: { at: 'committed', marker: 'setVmHost' },
  },
  [RETRY]: {
    'mid-dispatch': { at: 'answer', kind: 'files.apply', nth: 1 },
    dispatched: { at: 'tx' },
    'mid-settle': { at: 'uncommitted', marker: 'deletePendingDeletions' },
    settled: { at: 'committed', marker: 'deletePendingDeletions' },
  },
  [WRITE]: {
    guarded: { at: 'committed', marker: 'addOwnedPaths' },
    landed: { at: 'answer', kind: 'files.apply', nth: 1 },
    'mid-record': { at: 'uncommitted', marker: 'upsertFile' },
    recorded: { at: 'committed', marker: 'upsertFile' },
  },
};

const tripOf = (plan: FlowPlan): Trip => (TRIPS[plan.flow] as Readonly<Record<string, Trip>>)[plan.point] as Trip;

const SCRIPT = fileURLToPath(import.meta.url);
const TRACE = '@ ';

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

/** One line of the trace, written before anything else can run: it survives the SIGKILL that may follow. */
function trace(event: string): void {
  writeSync(1, `${TRACE}${event}\n`);
}

/** SIGKILL to ourselves, then block: no line of JavaScript may run after the crash point. */
function die(point: string): never {
  trace(`kill ${point}`);
  process.kill(process.pid, 'SIGKILL');
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

/** The tx, noting the names of the writes called on it (reads are not noted). */
function spyTx(tx: StoreTx, called: Set<string>): StoreTx {
  return new Proxy(tx, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || typeof name !== 'string') return value;
      return (...args: unknown[]): unknown => {
        if (!/^(get|list|count)/.test(name)) called.add(name);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function crashingStore(store: Store, point: string, trip: Trip): Store {
  let transactions = 0;
  return {
    ...store,
    async startOperation(operation) {
      const started = await store.startOperation(operation);
      trace(`start ${operation.kind} ${operation.step}`);
      if (trip.at === 'start') die(point);
      return started;
    },
    async setOperationStep(id, step, report) {
      if (trip.at === 'step' && trip.step === step) die(point);
      await store.setOperationStep(id, step, report);
      trace(`step ${step}`);
    },
    async transaction(fn) {
      transactions++;
      if (trip.at === 'tx' && transactions === 1) die(point);
      const called = new Set<string>();
      const marked = (): boolean => 'marker' in trip && called.has(trip.marker);
      const value = await store.transaction(async (tx) => {
        const answer = await fn(spyTx(tx, called));
        if (trip.at === 'uncommitted' && marked()) die(point);
        return answer;
      });
      trace(`commit ${[...called].join(',')}`);
      if (trip.at === 'committed' && marked()) die(point);
      return value;
    },
  };
}

function crashingAgents(agents: AgentClient, point: string, trip: Trip): AgentClient {
  const answers = new Map<string, number>();
  return {
    info: (endpoint) => agents.info(endpoint),
    certificate: (url) => agents.certificate(url),
    close: () => agents.close(),
    async send(target, kind, body, options) {
      const host = 'name' in target && typeof target.name === 'string' ? target.name : target.uuid;
      try {
        const answer = await agents.send(target, kind, body, options);
        trace(`${kind} ${host}`);
        const nth = (answers.get(kind) ?? 0) + 1;
        answers.set(kind, nth);
        if (trip.at === 'answer' && trip.kind === kind && trip.nth === nth) die(point);
        return answer;
      } catch (error) {
        trace(`${kind} ${host} failed`);
        throw error;
      }
    },
  };
}

async function runFlow(deps: FlowDeps, plan: FlowPlan): Promise<void> {
  switch (plan.flow) {
    case REMOVE_TPM:
      await removeTpms(deps, plan.vms, plan.operationId);
      return;
    case DESTROY_VM:
      await destroyVm(deps, plan.vms[0] ?? '', plan.operationId);
      return;
    case SYNC_VM:
      await syncVm(deps, plan.vm, plan.operationId);
      return;
    case RESTORE_VM:
      await restoreVm(deps, plan.vm, { host: plan.host, paths: plan.paths }, plan.operationId);
      return;
    case RECONCILE_HOST:
      await reconcileHost(deps, plan.host, { apply: true, includeUnknown: plan.includeUnknown }, plan.operationId);
      return;
    case RECOVER_VM:
      // host0's agent was killed: its machine refuses connections, which only the operator gives up (--host-lost).
      await recoverVm(deps, plan.vm, plan.to, { hostLost: true }, plan.operationId);
      return;
    case RETRY:
      await retryPendingDeletions(deps, { all: true });
      return;
    case WRITE: {
      const { vm, host, type, path } = plan;
      await writeFile(deps, { vm, host, type, path, state: fileState(Buffer.from(plan.content, 'base64')) });
      return;
    }
  }
}

async function main(plan: CrashPlan): Promise<void> {
  const store = await createSqliteStore(plan.db);
  const key = signingKeyFromPem(readFileSync(plan.keyFile, 'utf8'));
  const agents = createAgentClient({ key, timeoutMs: 3000, retries: 0, now: Date.now, backoffMs: 0 });
  const trip = tripOf(plan);
  const deps: FlowDeps = {
    store: crashingStore(store, plan.point, trip),
    agents: crashingAgents(agents, plan.point, trip),
    queue: createVmQueue(),
    now: Date.now,
    random: () => 0.5,
    // One host at a time, so that a 'mid-' point between answers falls between two hosts.
    concurrency: 1,
    retryBaseMs: 0,
    retryMaxMs: 0,
  };
  await runFlow(deps, plan);
  await agents.close();
  await store.close();
  process.stdout.write(`the flow ended without reaching ${plan.point}\n`);
  process.exitCode = 3;
}

export interface Crashed {
  /** the deps of a controller started afresh on the same database (new store, new queue) */
  readonly deps: FlowDeps;
  /** what the dead controller did, in order, ending with `kill <point>` */
  readonly trace: readonly string[];
}

/**
 * Test side: closes the running controller's store, runs the plan against the same database until it dies by
 * SIGKILL, and answers the deps of a controller started afresh on that database, with the dead one's trace.
 */
export async function crashAt(fleet: Fleet, current: FlowDeps, plan: FlowPlan): Promise<Crashed> {
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
  const lines = outcome.output.split('\n').filter((line) => line.startsWith(TRACE));
  return {
    deps: { ...current, store: await createSqliteStore(db), queue: createVmQueue() },
    trace: lines.map((line) => line.slice(TRACE.length)),
  };
}

/** crashAt, answering only the restarted controller's deps. */
export async function crashAndRestart(fleet: Fleet, current: FlowDeps, plan: FlowPlan): Promise<FlowDeps> {
  return (await crashAt(fleet, current, plan)).deps;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main(JSON.parse(process.argv[2] ?? '') as CrashPlan);
}
