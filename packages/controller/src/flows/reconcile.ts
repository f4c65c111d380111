// Reconcile: a host's roots, listed through its agent as states (each file or directory directly below a root),
// compared with the database. State no row and no pending deletion accounts for is an orphan when hostfiles wrote
// it or took charge of it (owned paths), and unknown otherwise (libvirt's, an operator's); a state in use (busy) is
// never touched. Missing: rows whose state is not on disk. `apply` puts the orphans (and, asked, the unknown) in the
// outbox, conditional on the digest listed, so the retry pass deletes exactly what was seen.
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import {
  FILE_TYPES,
  QUARANTINE_PREFIX,
  type FileType,
  type ListEntry,
  type Roots,
  type StatResult,
} from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { Host, Operation, OwnedPath, PendingDeletion, StoreReads, VmHostFile } from '../store/index.js';
import { bytesOf } from './bytes-of.js';
import type { FlowDeps } from './deps.js';
import { markHost, markUnreachable } from './host-state.js';
import { resolveHost } from './inventory.js';
import { wholeHost } from './lock-keys.js';
import { failJournalOnError, repeatFlow, startJournal } from './sync.js';
import { statUnlisted } from './unlisted.js';
import { OPERATION_KIND, ORPHAN_VM_UUID } from '../store/types.js';

export const RECONCILE_HOST = OPERATION_KIND.reconcileHost;

// ORPHAN_VM_UUID (store/types.ts): the `vmUuid` of the outbox rows `apply` makes for unknown state.
export { ORPHAN_VM_UUID };

export interface ReconcileOptions {
  /** put every orphan in the outbox */
  readonly apply?: boolean;
  /** with `apply`: unknown state too (never a busy one) */
  readonly includeUnknown?: boolean;
}

export interface MissingFile {
  readonly vmUuid: string;
  readonly type: FileType;
  readonly path: string;
  /** as recorded */
  readonly sha256: string;
  readonly size: number;
}

/** A recorded state whose digest on disk is not the recorded one (the VM ran since its last sync). */
export interface ModifiedFile extends MissingFile {
  readonly onDisk: string;
}

export interface ReconcileReport {
  readonly operationId: string;
  readonly hostUuid: string;
  readonly hostName: string;
  /** the agent's roots */
  readonly roots: Roots;
  /** states (files and directories directly below the roots) on the host */
  readonly listed: number;
  /**
   * The agent's listing stopped short (LISTING_BOUNDS: its names, bytes or time): the orphans, unknown and busy are
   * of the part listed, and others may exist; recorded states it did not show were looked at one by one, so missing
   * and modified are whole.
   */
  readonly truncated?: true;
  /** on disk, in no row and no pending deletion, at a path hostfiles wrote or took charge of: its own leftovers */
  readonly orphans: readonly ListEntry[];
  /**
   * on disk, in no row and no pending deletion, never hostfiles' (libvirt's, an operator's): kept unless
   * `includeUnknown`; a directory named like a VM hostfiles knows is a candidate for `adopt`
   */
  readonly unknown: readonly ListEntry[];
  /** unrecorded state in use by a running swtpm or QEMU: never scheduled */
  readonly busy: readonly ListEntry[];
  /** trees the agent's crash recovery set aside (possibly the only copy of a state): never scheduled, for an operator */
  readonly quarantined: readonly ListEntry[];
  /** in a row, not on disk */
  readonly missing: readonly MissingFile[];
  /** in a row, on disk with another digest */
  readonly modified: readonly ModifiedFile[];
  /** on disk, already waiting in the outbox */
  readonly pending: number;
  /** with `apply`: the paths put in the outbox */
  readonly scheduled: readonly string[];
}

type Found = Pick<ReconcileReport, 'orphans' | 'unknown' | 'busy' | 'quarantined' | 'missing' | 'modified' | 'pending'>;

interface Compared {
  readonly found: Found;
  /** for each orphan, the VM it was written for */
  readonly owners: ReadonlyMap<string, string>;
}

/**
 * Lists the host's roots (and stats recorded paths deeper than a listed state) and compares; with `apply`,
 * schedules the orphans' deletion (and the unknown state's, if asked) in the same transaction as the comparison.
 * Every scheduled deletion is conditional on the digest seen here: state that changes meanwhile is left alone.
 */
export async function reconcileHost(
  deps: FlowDeps,
  hostRef: string,
  options: ReconcileOptions = {},
  operationId: string = randomUUID(),
): Promise<ReconcileReport> {
  const host = await resolveHost(deps, hostRef);
  const apply = options.apply === true;
  const includeUnknown = apply && options.includeUnknown === true;
  await startJournal(deps, {
    id: operationId,
    kind: RECONCILE_HOST,
    subject: host.uuid,
    step: 'list',
    input: { host: host.uuid, apply, includeUnknown },
  });
  return failJournalOnError(deps, operationId, () =>
    // The whole host: the listing is what names the paths, and no flow on any of them may run between it and the
    // comparison (a state deleted meanwhile would be scheduled as unknown, one written meanwhile as an orphan).
    deps.queue.run([wholeHost(host.uuid)], async () => {
      const rows = await deps.store.listFilesByHost(host.uuid);
      const { roots, units, truncated } = await listHost(deps, host, rows);
      const deep = await statUnlisted(deps, host, rows, { results: units, truncated });
      return deps.store.transaction(async (tx) => {
        // Compared inside the transaction: a row written since the listing is seen, and its state is no orphan.
        const { found, owners } = await compare(tx, host, units, deep);
        const doomed = [...found.orphans, ...(includeUnknown ? found.unknown : [])];
        const scheduled = apply ? doomed : [];
        await tx.addPendingDeletions(
          scheduled.map((unit) => ({
            hostUuid: host.uuid,
            type: unit.type,
            path: unit.path,
            vmUuid: owners.get(unit.path) ?? ORPHAN_VM_UUID,
            tpmUuid: null,
            nextAttemptAt: deps.now() + deps.retryBaseMs,
            lastError: owners.has(unit.path)
              ? "orphan: hostfiles' own state, in no row and no pending deletion"
              : 'unknown state: scheduled by reconcile --include-unknown',
            expectSha256: unit.sha256,
          })),
        );
        const report: ReconcileReport = {
          operationId,
          hostUuid: host.uuid,
          hostName: host.name,
          roots,
          listed: units.length,
          ...(truncated ? { truncated } : {}),
          ...found,
          scheduled: scheduled.map((u) => u.path),
        };
        await tx.finishOperation(operationId, 'done', report);
        return report;
      });
    }),
  );
}

/** A reconcile's report, as a dry run gives it: no operation; `scheduled` is what `apply` would put in the outbox. */
export type ReconcilePlan = Omit<ReconcileReport, 'operationId'> & { readonly dryRun: true };

/**
 * `reconcile --apply --dry-run`: the comparison `reconcileHost` makes, and in `scheduled` what `apply` (with
 * `includeUnknown`, if asked) would put in the outbox. The host is listed (reads only: no deletion is sent); nothing
 * is written to the database, not even the host's state.
 */
export async function planReconcileHost(
  deps: FlowDeps,
  hostRef: string,
  options: Pick<ReconcileOptions, 'includeUnknown'> = {},
): Promise<ReconcilePlan> {
  const host = await resolveHost(deps, hostRef);
  // Listed without recording the host seen: a dry run writes nothing, not even that.
  const rows = await deps.store.listFilesByHost(host.uuid);
  const answer = await deps.agents.send(host, 'files.list', { types: [...FILE_TYPES] }, { bytes: bytesOf(rows) });
  const { roots, results: units, truncated } = answer;
  const deep = await statUnlisted(deps, host, rows, answer);
  const { found } = await compare(deps.store, host, units, deep);
  const doomed = [...found.orphans, ...(options.includeUnknown === true ? found.unknown : [])];
  return {
    dryRun: true,
    hostUuid: host.uuid,
    hostName: host.name,
    roots,
    listed: units.length,
    ...(truncated === true ? { truncated } : {}),
    ...found,
    scheduled: doomed.map((u) => u.path),
  };
}

/** `rows`: the host's recorded states, whose bytes each attempt is given time for. */
async function listHost(
  deps: FlowDeps,
  host: Host,
  rows: readonly VmHostFile[],
): Promise<{ roots: Roots; units: readonly ListEntry[]; truncated: boolean }> {
  try {
    // The agent hashes every state it lists: each attempt is given the time the recorded ones take, beyond the fixed
    // timeout (64 MiB AAVMF stores make a host's listing take minutes).
    const bytes = bytesOf(rows);
    const answer = await deps.agents.send(host, 'files.list', { types: [...FILE_TYPES] }, { bytes });
    await markHost(deps, host, 'Connected');
    return { roots: answer.roots, units: answer.results, truncated: answer.truncated === true };
  } catch (error) {
    if (isAgentCallError(error)) await markUnreachable(deps, host, error);
    throw error;
  }
}

async function compare(
  store: StoreReads,
  host: Host,
  units: readonly ListEntry[],
  deep: ReadonlyMap<string, StatResult>,
): Promise<Compared> {
  const rows: readonly VmHostFile[] = await store.listFilesByHost(host.uuid);
  const outbox: readonly PendingDeletion[] = await store.listPendingDeletions({ hostUuid: host.uuid });
  const owned: readonly OwnedPath[] = await store.listOwnedPaths(host.uuid);
  const within = (path: string, unit: string): boolean => path === unit || path.startsWith(`${unit}/`);
  const orphans: ListEntry[] = [];
  const unknown: ListEntry[] = [];
  const busy: ListEntry[] = [];
  const quarantined: ListEntry[] = [];
  const owners = new Map<string, string>();
  let pending = 0;
  for (const unit of units) {
    if (rows.some((r) => within(r.path, unit.path))) continue;
    if (outbox.some((p) => within(p.path, unit.path))) pending += 1;
    else if (unit.busy) busy.push(unit);
    else if (posix.basename(unit.path).startsWith(QUARANTINE_PREFIX)) quarantined.push(unit);
    else {
      const owner = owned.find((o) => within(o.path, unit.path));
      if (owner === undefined) unknown.push(unit);
      else {
        orphans.push(unit);
        owners.set(unit.path, owner.vmUuid);
      }
    }
  }
  const missing: MissingFile[] = [];
  const modified: ModifiedFile[] = [];
  const byPath = new Map(units.map((u) => [u.path, u]));
  for (const row of rows) {
    const onDisk = digestOnDisk(byPath.get(row.path) ?? deep.get(row.path));
    const record = { vmUuid: row.vmUuid, type: row.type, path: row.path, sha256: row.sha256, size: row.size };
    if (onDisk === null) missing.push(record);
    else if (onDisk !== row.sha256) modified.push({ ...record, onDisk });
  }
  return { found: { orphans, unknown, busy, quarantined, missing, modified, pending }, owners };
}

/** The digest of what the host has at a path; null when it has nothing there (or could not say). */
function digestOnDisk(seen: ListEntry | StatResult | undefined): string | null {
  if (seen === undefined) return null;
  if (!('status' in seen)) return seen.sha256;
  return seen.status === 'present' ? seen.sha256 : null;
}

/** Repeats a reconcile the controller was killed in: its listing and scheduling commit together, or not at all. */
export async function resumeReconcile(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const { host, apply, includeUnknown } = input;
    if (typeof host !== 'string') return 'the input cannot be read';
    if ((await deps.store.getHost(host)) === null) return 'the host is no longer in the inventory';
    await reconcileHost(deps, host, { apply: apply === true, includeUnknown: includeUnknown === true }, operation.id);
    return null;
  });
}
