// Sync: a VM's recorded files read back from their hosts (one `files.read` per host) into the controller's backups.
import { randomUUID } from 'node:crypto';
import { mapLimit, type FileType, type ReadResult, type StateKind } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type {
  GenerationSource,
  Host,
  NewOperation,
  Operation,
  RecordGenerationResult,
  StoreTx,
  Vm,
  VmHostFile,
} from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { markHost, markUnreachable } from './host-state.js';
import { resolveVm } from './resolve.js';
import { planOnVms, runPlanned } from './run-planned.js';
import { MAX_STATE_BYTES, stateFromRead, type State } from './state.js';
import { groupBy } from './group-by.js';
import { OPERATION_KIND } from '../store/types.js';

export const SYNC_VM = OPERATION_KIND.syncVm;

interface FileOnHost {
  readonly hostUuid: string;
  readonly hostName: string;
  readonly type: FileType;
  readonly path: string;
}

/** `missing`: the agent found no file there; `failed`: the host or the file could not be read (see `reason`). */
export type SyncOutcome =
  | { readonly status: 'read'; readonly kind: StateKind; readonly sha256: string; readonly size: number }
  | { readonly status: 'missing' | 'failed'; readonly reason: string };

export type SyncedFile = FileOnHost & SyncOutcome;

/** The backup of one type, as this sync left it: the newest generation. */
export interface SyncBackup {
  readonly type: FileType;
  readonly generation: number;
  /** false: the newest generation already held exactly this state, and no new one was made */
  readonly created: boolean;
  /** the file it was taken from */
  readonly hostUuid: string;
  readonly hostName: string;
  readonly path: string;
  readonly kind: StateKind;
  readonly sha256: string;
  readonly size: number;
}

export interface SyncReport {
  readonly operationId: string;
  readonly vmUuid: string;
  readonly vmName: string;
  readonly commands: number;
  /** every recorded file of the VM, per host, with what the read gave */
  readonly files: readonly SyncedFile[];
  /** the backups updated, one per type the VM has a file of */
  readonly backups: readonly SyncBackup[];
  /** the types whose source file could not be read: their earlier backup, if any, is kept as it was */
  readonly notUpdated: readonly SyncedFile[];
  /**
   * the states read that were not the VM's current host's at the epoch the sync began (a host it left, or one it
   * left while the sync read): never recorded as a generation
   */
  readonly fenced: readonly FencedCapture[];
}

/** A capture refused: `fenced`, with why. */
export interface FencedCapture extends FileOnHost {
  readonly code: 'fenced';
  readonly reason: string;
}

export interface HostRead {
  readonly row: VmHostFile;
  readonly outcome: SyncedFile;
  readonly state?: State;
}

/**
 * Reads every recorded file of the VM and updates each row's sha256, size and last sync. A new generation of a type
 * is captured only from the VM's file on its current host, and only if the VM is still there at the epoch the sync
 * read before it asked the hosts (checked in the recording transaction); a copy on another host is never captured
 * (`fenced`). If the source file cannot be read, the earlier generations stay as they were.
 */
export async function syncVm(
  deps: FlowDeps,
  vmRef: string,
  operationId: string = randomUUID(),
  source: 'sync' | 'adopt' = 'sync',
): Promise<SyncReport> {
  const resolved = await resolveVm(deps.store, vmRef);
  return runPlanned(
    deps,
    () => planOnVms(deps, [resolved.uuid]),
    async (rows) => {
      const vm = await deps.store.getVm(resolved.uuid);
      if (vm === null) throw new FlowError('not_found', `no VM ${vmRef}`);
      await startJournal(deps, {
        id: operationId,
        kind: SYNC_VM,
        subject: vm.uuid,
        step: 'read',
        input: { vm: vm.uuid, ...(source === 'sync' ? {} : { source }) },
      });
      return failJournalOnError(deps, operationId, async () => {
        const { reads, commands } = await readOnHosts(deps, rows);
        return record(deps, { operationId, source }, vm, reads, commands);
      });
    },
  );
}

/** One command per host, hosts reached with bounded concurrency; a host that fails fails only its own files. */
async function readOnHosts(
  deps: FlowDeps,
  rows: readonly VmHostFile[],
): Promise<{ reads: HostRead[]; commands: number }> {
  const byHost = groupBy(rows, (row) => row.hostUuid);
  let commands = 0;
  let done = 0;
  const perHost = await mapLimit([...byHost.entries()], deps.concurrency, async ([hostUuid, files]) => {
    const host = await deps.store.getHost(hostUuid);
    if (host !== null) commands++;
    const reads =
      host === null
        ? files.map((row) => failed(row, hostUuid, 'the host is not in the inventory'))
        : await readOnHost(deps, host, files);
    done++;
    deps.onProgress?.({ flow: SYNC_VM, done, total: byHost.size, host: host?.name ?? hostUuid });
    return reads;
  });
  return { reads: perHost.flat(), commands };
}

/** One `files.read` of `rows` (at most MAX_OPS: a VM's sync has one per type; a fleet sync chunks them). */
export async function readOnHost(deps: FlowDeps, host: Host, rows: readonly VmHostFile[]): Promise<HostRead[]> {
  const files = rows.map((row) => ({ type: row.type, path: row.path }));
  const bytes = rows.reduce((n, row) => n + row.size, 0);
  let results: readonly ReadResult[];
  try {
    results = (await deps.agents.send(host, 'files.read', { files }, { bytes })).results;
    await markHost(deps, host, 'Connected');
  } catch (error) {
    if (!isAgentCallError(error)) throw error;
    await markUnreachable(deps, host, error);
    return rows.map((row) => failed(row, host.name, `${error.failure}: ${error.message}`));
  }
  // What the answer's states may inflate to, together: each state's own bound (MAX_STATE_BYTES) alone would let one
  // answer of a few hundred small gzip bombs cost minutes of inflating. Their recorded sizes twice over, and room for
  // one state that grew to the bound: a state that claims more than is left fails alone, uninflated.
  const room = { left: MAX_STATE_BYTES + 2 * bytes };
  return Promise.all(rows.map((row, i) => readOutcome(row, host.name, results[i], room)));
}

async function readOutcome(
  row: VmHostFile,
  hostName: string,
  result: ReadResult | undefined,
  room: { left: number },
): Promise<HostRead> {
  if (result === undefined || result.path !== row.path) return failed(row, hostName, 'no result for this file');
  if (result.status === 'failed') {
    const reason = `${result.error.code}: ${result.error.message}`;
    return result.error.code === 'not_found' ? missing(row, hostName, reason) : failed(row, hostName, reason);
  }
  // Taken before any await: the states of one answer share the room in their order.
  if (result.size > room.left) {
    return failed(row, hostName, `the agent's answer claims ${result.size} bytes, more than is left to inflate`);
  }
  room.left -= result.size;
  const state = await stateFromRead(result);
  if (typeof state === 'string') return failed(row, hostName, `the agent's answer does not check: ${state}`);
  const { kind, sha256, size } = state;
  return { row, state, outcome: { ...at(row, hostName), status: 'read', kind, sha256, size } };
}

const at = (row: VmHostFile, hostName: string): FileOnHost => ({
  hostUuid: row.hostUuid,
  hostName,
  type: row.type,
  path: row.path,
});
const failed = (row: VmHostFile, hostName: string, reason: string): HostRead => ({
  row,
  outcome: { ...at(row, hostName), status: 'failed', reason },
});
const missing = (row: VmHostFile, hostName: string, reason: string): HostRead => ({
  row,
  outcome: { ...at(row, hostName), status: 'missing', reason },
});

/** Per type, the row whose file is the VM's state: the one on its current host (at most one per host and type). */
function sourceRows(vm: Vm, rows: readonly VmHostFile[]): Set<VmHostFile> {
  return new Set(rows.filter((row) => vm.hostUuid !== null && row.hostUuid === vm.hostUuid));
}

/**
 * Why a capture from `row` would not be the VM's own now, or null when it is: `owner` is the VM as the recording
 * transaction reads it, `vm` as the sync read it before it asked the hosts.
 */
function fenceOf(vm: Vm, owner: Vm | null, row: VmHostFile, hostName: string): string | null {
  if (owner === null) return 'the VM is gone';
  if (owner.hostUuid !== row.hostUuid) {
    return owner.hostUuid === null
      ? `VM ${vm.name} is placed on no host: nothing is its own`
      : `host ${hostName} is not VM ${vm.name}'s current host`;
  }
  if (owner.epoch !== vm.epoch) {
    return `VM ${vm.name}'s ownership changed while the sync read (epoch ${vm.epoch}, now ${owner.epoch})`;
  }
  return null;
}

/** The types the VM has a state of only on hosts other than its own: nothing is captured of them. */
function strays(reads: readonly HostRead[], sources: ReadonlySet<VmHostFile>): HostRead[] {
  const owned = new Set([...sources].map((row) => row.type));
  return reads.filter((r) => !owned.has(r.row.type) && r.outcome.status === 'read');
}

/** Rows and backups updated and the operation finished, in one transaction. */
async function record(
  deps: FlowDeps,
  { operationId, source }: { readonly operationId: string; readonly source: 'sync' | 'adopt' },
  vm: Vm,
  reads: readonly HostRead[],
  commands: number,
): Promise<SyncReport> {
  const now = deps.now();
  const sources = sourceRows(
    vm,
    reads.map((r) => r.row),
  );
  const notUpdated = reads.filter((r) => sources.has(r.row) && r.outcome.status !== 'read').map((r) => r.outcome);
  const fence = (outcome: SyncedFile, reason: string): FencedCapture => {
    const { hostUuid, hostName, type, path } = outcome;
    return { hostUuid, hostName, type, path, code: 'fenced', reason };
  };
  const fenced = strays(reads, sources).map((r) =>
    fence(r.outcome, `host ${r.outcome.hostName} is not VM ${vm.name}'s current host`),
  );
  return deps.store.transaction(async (tx) => {
    const backups: SyncBackup[] = [];
    const owner = await tx.getVm(vm.uuid);
    for (const read of reads) {
      const { outcome, state } = read;
      if (outcome.status !== 'read' || state === undefined) continue;
      const capture = sources.has(read.row) ? { vm, owner, source } : null;
      const captured = await recordRead(tx, now, read.row, state, outcome.hostName, capture);
      if (captured === null) continue;
      if ('fenced' in captured) {
        fenced.push(fence(outcome, captured.fenced));
        continue;
      }
      const { hostUuid, hostName, type, path } = outcome;
      const { kind, sha256, size } = state;
      const { generation } = captured.backup;
      backups.push({ type, generation, created: captured.created, hostUuid, hostName, path, kind, sha256, size });
    }
    const report: SyncReport = {
      operationId,
      vmUuid: vm.uuid,
      vmName: vm.name,
      commands,
      files: reads.map((r) => r.outcome),
      backups,
      notUpdated,
      fenced,
    };
    // Failed when the CLI exits 1 for it: a backup not updated, or a capture fenced (`ops list --state failed`).
    await tx.finishOperation(operationId, notUpdated.length + fenced.length > 0 ? 'failed' : 'done', report);
    return report;
  });
}

/**
 * Records one state read, in the caller's transaction: its row follows the disk; and, when the read is of the VM's
 * own state (`capture`: the VM as the flow read it, `owner` as this transaction reads it), a generation is captured,
 * unless the ownership changed since (`fenced`, with why). Null when nothing was to be captured. The one capture rule
 * of `sync VM` and the fleet sync.
 */
export async function recordRead(
  tx: StoreTx,
  now: number,
  row: VmHostFile,
  state: State,
  hostName: string,
  capture: { readonly vm: Vm; readonly owner: Vm | null; readonly source: GenerationSource } | null,
): Promise<RecordGenerationResult | { readonly fenced: string } | null> {
  const { kind, sha256, size, entries } = state;
  await tx.upsertFile({ ...row, kind, sha256, size, lastSyncAt: now });
  if (capture === null) return null;
  const { vm, owner, source } = capture;
  const refused = fenceOf(vm, owner, row, hostName);
  if (refused !== null) return { fenced: refused };
  const captured = { uuid: randomUUID(), vmUuid: vm.uuid, type: row.type, kind, sha256, size, entries };
  return tx.recordGeneration({ ...captured, source, hostUuid: row.hostUuid });
}

/** Repeats a sync the controller was killed in: it only reads hosts and overwrites rows and backups. */
export async function resumeSync(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const vm = typeof input['vm'] === 'string' ? input['vm'] : undefined;
    if (vm === undefined || (await deps.store.getVm(vm)) === null) return 'the VM no longer exists';
    await syncVm(deps, vm, operation.id, input['source'] === 'adopt' ? 'adopt' : 'sync');
    return null;
  });
}

// The journal steps the sync, restore and reconcile flows share.

/** Starts the operation, unless it exists already (a resume repeats it under its own id). */
export async function startJournal(deps: FlowDeps, operation: NewOperation): Promise<void> {
  if ((await deps.store.getOperation(operation.id)) === null) await deps.store.startOperation(operation);
}

/** Runs `fn`; if it throws, the operation is finished 'failed' with the error (if still running), then rethrown. */
export async function failJournalOnError<T>(deps: FlowDeps, operationId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if ((await deps.store.getOperation(operationId))?.state === 'running') {
      const message = error instanceof Error ? error.message : String(error);
      await deps.store.finishOperation(operationId, 'failed', { error: message });
    }
    throw error;
  }
}

/**
 * A resumer for flows that are safe to repeat whole: `repeat` answers null when it repeated the flow, or why it
 * could not (the operation is then finished 'failed' with that reason). A repeat that throws finished 'failed'.
 * Answers how the operation ended, as the journal says.
 */
export async function repeatFlow(
  deps: FlowDeps,
  operation: Operation,
  repeat: (input: Readonly<Record<string, unknown>>) => Promise<string | null>,
): Promise<'done' | 'failed'> {
  const input =
    typeof operation.input === 'object' && operation.input !== null
      ? (operation.input as Readonly<Record<string, unknown>>)
      : {};
  try {
    const skipped = await repeat(input);
    // The repeat finished the operation itself: done, or failed (a restore whose writes did not all land).
    if (skipped === null) return (await deps.store.getOperation(operation.id))?.state === 'failed' ? 'failed' : 'done';
    await deps.store.finishOperation(operation.id, 'failed', { error: skipped });
    return 'failed';
  } catch (error) {
    if ((await deps.store.getOperation(operation.id))?.state === 'running') throw error;
    return 'failed';
  }
}
