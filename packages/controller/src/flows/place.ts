// Putting states onto a host (file write, restore): checked against the database before anything is sent, guarded
// so that a write whose outcome is unknown never leaves an untracked state, and recorded with the old path's
// deletion in the same transaction. One command per host.
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import {
  DEFAULT_COMMAND_LIFETIME_MS,
  isValidRoot,
  MAX_CLOCK_SKEW_MS,
  type ApplyResult,
  type Expectation,
  type FileType,
  type OpErrorCode,
  type RequestErrorCode,
  type StateKind,
} from '@hostfiles/shared';
import { isAgentCallError, type AgentCallError } from '../agents/index.js';
import type {
  Host,
  NewOperation,
  NewPendingDeletion,
  PendingDeletion,
  StoreTx,
  Vm,
  VmHostFile,
} from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { markHost, markUnreachable } from './host-state.js';
import { settleBinding } from './remove-tpm.js';
import { placeOp, type State } from './state.js';

export interface Placement {
  readonly vm: Vm;
  readonly type: FileType;
  readonly path: string;
  readonly state: State;
}

/**
 * `written`: on disk and recorded. `failed`: the agent answered that it did not write (nothing changed there).
 * `unknown`: no trustworthy answer (down, timed out, cut off): the write may have landed; a new path's guard
 * deletion then removes exactly those bytes unless a later write records the path.
 */
export type PlaceOutcome =
  | {
      readonly status: 'written';
      /** the VM's earlier path of this type on this host, now pending deletion */
      readonly replaced?: string;
    }
  | { readonly status: 'failed' | 'unknown'; readonly code: string; readonly reason: string };

export type PlacedFile = {
  readonly vmUuid: string;
  readonly hostUuid: string;
  readonly type: FileType;
  readonly path: string;
  readonly kind: StateKind;
  readonly sha256: string;
  readonly size: number;
} & PlaceOutcome;

interface Planned extends Placement {
  /** the VM's row of this type on this host, if any */
  readonly own: VmHostFile | null;
  /** the VM's TPM, for a TpmState placement: its guard holds the key binding back like any of its state */
  readonly tpmUuid: string | null;
  readonly expect?: Expectation;
  /** the own row's path, when it lies elsewhere: deleted through the outbox once the new state is recorded */
  readonly moveFrom?: string;
}

/**
 * How long a guard waits before it may run: past the latest moment any agent could still accept the command (its
 * life plus the widest clock skew an agent may be configured with), so delayed bytes cannot land after it ran.
 */
export const GUARD_DELAY_MS = DEFAULT_COMMAND_LIFETIME_MS + MAX_CLOCK_SKEW_MS + 60_000;

const below = (path: string, dir: string): boolean => path.startsWith(`${dir}/`);
const overlaps = (a: string, b: string): boolean => a === b || below(a, b) || below(b, a);

/**
 * Checks every placement against what the database holds on the host; throws FlowError before anything is sent.
 * Without `force`, a path the VM does not already hold is written only over what `expectation` allows: state
 * hostfiles does not know (libvirt's own) is never written over unless the operator says so.
 */
export async function planPlacements(
  deps: FlowDeps,
  host: Host,
  placements: readonly Placement[],
  force: boolean,
): Promise<Planned[]> {
  const rows = await deps.store.listFilesByHost(host.uuid);
  const pending = await deps.store.listPendingDeletions({ hostUuid: host.uuid });
  const tpms = new Map(
    (await deps.store.listTpmsByVms([...new Set(placements.map((p) => p.vm.uuid))])).map((t) => [t.vmUuid, t.uuid]),
  );
  return placements.map((placement, index) => {
    const { vm, type, path } = placement;
    if (!isValidRoot(path)) throw new FlowError('bad_input', `${path} is not an absolute, normalized path`);
    const clash = placements.find((other, i) => i !== index && overlaps(other.path, path));
    if (clash !== undefined) throw new FlowError('bad_input', `${path} and ${clash.path} overlap on host ${host.name}`);
    let own: VmHostFile | null = null;
    for (const row of rows) {
      if (row.vmUuid === vm.uuid && row.type === type) own = row;
      else if (overlaps(row.path, path)) throw new FlowError('conflict', heldBy(row, path, host));
    }
    if (own !== null && below(path, own.path)) {
      throw new FlowError(
        'conflict',
        `${path} is inside VM ${vm.name}'s ${type} state ${own.path} on host ${host.name}: write the whole state there`,
      );
    }
    const doomed = pending.find((p) => below(path, p.path));
    if (doomed !== undefined) {
      throw new FlowError(
        'conflict',
        `${path} is inside ${doomed.path}, pending deletion on host ${host.name}: let it finish (hostfiles retry) first`,
      );
    }
    const exact = own?.path === path;
    // An own row below the new path is replaced by the write itself: deleting it afterwards would cut into the new state.
    const moveFrom = own !== null && !exact && !below(own.path, path) ? own.path : undefined;
    return {
      ...placement,
      own,
      tpmUuid: placement.type === 'TpmState' ? (tpms.get(vm.uuid) ?? null) : null,
      ...(exact || force
        ? {}
        : expectation(
            pending.find((p) => p.path === path),
            placement.state.sha256,
          )),
      ...(moveFrom === undefined ? {} : { moveFrom }),
    };
  });
}

/**
 * What must be at a path the VM does not hold before a write lands there. Nothing (`absent`, also met by exactly the
 * state being written: a repeat of a write whose answer was lost). With a deletion pending there: an unconditional one
 * condemned whatever is there, so anything may be written over; a conditional one (another write's guard, an orphan
 * as reconcile listed it) condemned only its digest, so that is what must be there — anything else (libvirt's state
 * that refused the earlier write) is never written over without force.
 */
function expectation(pending: PendingDeletion | undefined, writing: string): { expect?: Expectation } {
  if (pending === undefined || pending.expectSha256 === writing) return { expect: 'absent' };
  return pending.expectSha256 === null ? {} : { expect: pending.expectSha256 };
}

function heldBy(row: VmHostFile, path: string, host: Host): string {
  const relation = row.path === path ? 'is' : below(path, row.path) ? 'is inside' : 'contains';
  return `${path} on host ${host.name} ${relation} the ${row.type} state of VM ${row.vmUuid} (${row.path}): refused before anything was sent`;
}

/**
 * A placement journaled by `placeOnHost` itself (a file write): the operation starts in the guards' transaction (alone
 * only when no path needs a guard) and finishes in the record transaction, so the journal costs no transaction of
 * its own.
 */
export interface PlaceJournal {
  readonly operation: NewOperation;
  /**
   * A state written onto the VM's current host becomes its newest generation (source 'write'), in the transaction
   * that records it. A restore does not capture: what it writes is a generation already.
   */
  readonly captures?: boolean;
  /** how the operation ends, from what was placed and why the host failed, if it did */
  finish(
    files: readonly PlacedFile[],
    error: string | undefined,
  ): { readonly state: 'done' | 'failed'; readonly report: unknown };
}

export interface PlaceOptions {
  /** raise the epoch of each VM a state of was written, in the recording transaction (a restore) */
  readonly bumpEpoch?: boolean;
}

/** What `armGuards` made, for `record` to undo where nothing landed. */
interface Guards {
  /** the guard deletion created for a placement */
  readonly ids: Map<Planned, number>;
  /** the placements whose path this write took charge of (it was nobody's before) */
  readonly claimed: Set<Planned>;
}

/**
 * For each placement at a path the VM does not hold yet: takes charge of the path (owned paths) and arms a guard
 * deletion of exactly the bytes being sent, in one transaction, before anything is sent.
 */
async function armGuards(
  deps: FlowDeps,
  host: Host,
  planned: readonly Planned[],
  journal: PlaceJournal | undefined,
): Promise<Guards> {
  const fresh = planned.filter((p) => p.own?.path !== p.path);
  const guards: Guards = { ids: new Map(), claimed: new Set() };
  if (fresh.length === 0) {
    // Nothing to guard: the journal's start is the one write before the command goes out.
    if (journal !== undefined) await deps.store.startOperation(journal.operation);
    return guards;
  }
  await deps.store.transaction(async (tx) => {
    if (journal !== undefined) await tx.startOperation(journal.operation);
    const owned = new Set((await tx.listOwnedPaths(host.uuid)).map((o) => o.path));
    for (const p of fresh) {
      if (!owned.has(p.path)) guards.claimed.add(p);
      await tx.addOwnedPaths([{ hostUuid: host.uuid, path: p.path, type: p.type, vmUuid: p.vm.uuid }]);
      // A deletion already pending there stays as it is: it removes whatever the write leaves, recorded or not.
      if ((await tx.listPendingDeletions({ hostUuid: host.uuid, path: p.path })).length > 0) continue;
      const [row] = await tx.addPendingDeletions([guardRow(deps, host, p)]);
      if (row !== undefined) guards.ids.set(p, row.id);
    }
  });
  return guards;
}

const guardRow = (deps: FlowDeps, host: Host, p: Planned): NewPendingDeletion => ({
  hostUuid: host.uuid,
  type: p.type,
  path: p.path,
  vmUuid: p.vm.uuid,
  tpmUuid: p.tpmUuid,
  nextAttemptAt: deps.now() + Math.max(GUARD_DELAY_MS, deps.retryBaseMs),
  lastError: 'guard: a write was sent here; if its bytes landed unrecorded, they alone are deleted',
  expectSha256: p.state.sha256,
});

/** Places the states on the host in one command and records what was written (and journals it, if asked). */
export async function placeOnHost(
  deps: FlowDeps,
  host: Host,
  planned: readonly Planned[],
  journal?: PlaceJournal,
  options: PlaceOptions = {},
): Promise<{ files: PlacedFile[]; error?: string }> {
  const guards = await armGuards(deps, host, planned, journal);
  const ops = planned.map((p) => placeOp(p.type, p.path, p.state, p.expect));
  const bytes = planned.reduce((n, p) => n + p.state.size, 0);
  let results: readonly (ApplyResult | undefined)[];
  let callError: AgentCallError | undefined;
  try {
    results = (await deps.agents.send(host, 'files.apply', { ops }, { bytes })).results;
    await markHost(deps, host, 'Connected');
  } catch (error) {
    if (!isAgentCallError(error)) throw error;
    callError = error;
    results = [];
    await markUnreachable(deps, host, error);
  }
  const outcomes = planned.map((p, i) => outcomeOf(p, results[i], callError));
  const error = callError === undefined ? undefined : `${callError.failure}: ${callError.message}`;
  const files = await deps.store.transaction(async (tx) => {
    const placed = await record(deps, tx, host, planned, outcomes, guards);
    if (journal?.captures === true) await captureWritten(tx, host, planned, placed);
    // A restore is a new ownership of what it wrote: a capture the VM's flows read before it is fenced.
    if (options.bumpEpoch === true && placed.some((f) => f.status === 'written')) {
      for (const vm of new Set(planned.map((p) => p.vm.uuid))) await tx.bumpVmEpoch(vm);
    }
    if (journal !== undefined) {
      const { state, report } = journal.finish(placed, error);
      await tx.finishOperation(journal.operation.id, state, report);
    }
    return placed;
  });
  return { files, ...(error === undefined ? {} : { error }) };
}

function outcomeOf(p: Planned, result: ApplyResult | undefined, error: AgentCallError | undefined): PlaceOutcome {
  if (error !== undefined) {
    // A refusal applies nothing, but for a command cut off mid-apply (replayed) or an agent's internal error. And it
    // speaks only for its own attempt: one that answers a retry (expired, say, for a retry that arrived past the
    // command's lifetime) says nothing of the attempt before it, which failed in a way that may have applied it —
    // unless the same bytes are refused whatever the time and the agent's state (SAME_BYTES_SAME_REFUSAL).
    // An error answer is not signed: only one that came over TLS to the pinned certificate is the agent's own, and
    // only a 4xx with the agent's code. Over plain HTTP anyone on the path could answer `400 bad_request` to a
    // write it let through, and the write would be forgotten while its state is on the host.
    const code = error.details.agentCode;
    const status = error.details.status ?? 500;
    const definite =
      error.failure === 'refused' &&
      error.details.pinned === true &&
      status >= 400 &&
      status < 500 &&
      code !== undefined &&
      code !== 'replayed' &&
      ((error.details.attempts ?? 1) === 1 || SAME_BYTES_SAME_REFUSAL.has(code));
    const unbelieved = error.failure === 'refused' && error.details.pinned !== true;
    return {
      status: definite ? 'failed' : 'unknown',
      code: error.details.agentCode ?? error.failure,
      reason:
        `${error.failure}: ${error.message}` +
        (unbelieved
          ? ' (not believed over a path without a pinned certificate: `host set-url https://…` pins one)'
          : ''),
    };
  }
  if (result === undefined || result.path !== p.path)
    return { status: 'unknown', code: 'no_result', reason: 'no result' };
  if (result.status === 'written') return { status: 'written' };
  const code = result.error?.code ?? 'failed';
  // Only a refusal made before anything changed says nothing landed; an io_error may come after the rename.
  const status = REFUSED_BEFORE_ANY_CHANGE.has(code) ? 'failed' : 'unknown';
  return { status, code, reason: `${code}: ${result.error?.message ?? 'not written'}` };
}

/** Refusals of what the bytes say, not of when they came or what the agent trusts now: every attempt got the same. */
const SAME_BYTES_SAME_REFUSAL: ReadonlySet<string> = new Set<RequestErrorCode>([
  'too_large',
  'bad_request',
  'bad_signature',
  'wrong_host',
  'outside_root',
]);

const REFUSED_BEFORE_ANY_CHANGE: ReadonlySet<string> = new Set<OpErrorCode>([
  'exists',
  'changed',
  'busy',
  'symlink',
  'not_directory',
  'not_regular_file',
  'not_found',
  // The op reached its change past its command's life and the skew, and stopped there.
  'expired',
]);

async function record(
  deps: FlowDeps,
  tx: StoreTx,
  host: Host,
  planned: readonly Planned[],
  outcomes: readonly PlaceOutcome[],
  guards: Guards,
): Promise<PlacedFile[]> {
  const now = deps.now();
  const files: PlacedFile[] = [];
  for (const [i, p] of planned.entries()) {
    const outcome = outcomes[i] ?? { status: 'unknown', code: 'no_result', reason: 'no result' };
    const base = {
      vmUuid: p.vm.uuid,
      hostUuid: host.uuid,
      type: p.type,
      path: p.path,
      kind: p.state.kind,
      sha256: p.state.sha256,
      size: p.state.size,
    };
    if (outcome.status === 'written') {
      await recordWritten(deps, tx, host, p, now);
      files.push({ ...base, ...outcome, ...(p.moveFrom === undefined ? {} : { replaced: p.moveFrom }) });
      continue;
    }
    // Nothing landed: our own guard has nothing to guard, and a path we took charge of is not ours (what is there,
    // e.g. libvirt's state that made the write fail, must never count as hostfiles' leftover). An unknown outcome
    // keeps both: the guard settles them.
    if (outcome.status === 'failed') {
      const guard = guards.ids.get(p);
      if (guard !== undefined) await tx.deletePendingDeletions([guard]);
      if (guards.claimed.has(p)) await tx.removeOwnedPaths(host.uuid, [p.path]);
    }
    files.push({ ...base, ...outcome });
  }
  return files;
}

/** Each state written onto its VM's current host, as read inside the transaction, recorded as a generation. */
async function captureWritten(
  tx: StoreTx,
  host: Host,
  planned: readonly Planned[],
  placed: readonly PlacedFile[],
): Promise<void> {
  for (const [i, p] of planned.entries()) {
    if (placed[i]?.status !== 'written' || (await tx.getVm(p.vm.uuid))?.hostUuid !== host.uuid) continue;
    const { kind, sha256, size, entries } = p.state;
    const captured = { uuid: randomUUID(), vmUuid: p.vm.uuid, type: p.type, kind, sha256, size, entries };
    await tx.recordGeneration({ ...captured, source: 'write', hostUuid: host.uuid });
  }
}

async function recordWritten(deps: FlowDeps, tx: StoreTx, host: Host, p: Planned, now: number): Promise<void> {
  const { cancelled } = await tx.upsertFile({
    uuid: p.own?.uuid ?? randomUUID(),
    vmUuid: p.vm.uuid,
    hostUuid: host.uuid,
    type: p.type,
    path: p.path,
    kind: p.state.kind,
    sha256: p.state.sha256,
    size: p.state.size,
    lastSyncAt: now,
  });
  if (p.moveFrom !== undefined) {
    await tx.addPendingDeletions([
      {
        hostUuid: host.uuid,
        type: p.type,
        path: p.moveFrom,
        vmUuid: p.vm.uuid,
        // The TPM's state at its earlier path holds its key binding back like any of its state.
        tpmUuid: p.tpmUuid,
        nextAttemptAt: now + deps.retryBaseMs,
        lastError: `replaced: VM ${p.vm.name}'s ${p.type} state moved to ${posix.normalize(p.path)}`,
      },
    ]);
  }
  // The new state replaced a removed TPM's state there: that TPM may have nothing left pending.
  for (const tpm of new Set(cancelled.map((c) => c.tpmUuid).filter((t): t is string => t !== null))) {
    if ((await tx.getKeyBinding(tpm)) !== null) await settleBinding(tx, tpm);
  }
}
