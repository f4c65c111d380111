// Reconcile: a host's roots, listed through its agent, compared with the database. Orphans are files on disk that
// no row and no pending deletion accounts for; missing files are rows whose file is not on disk. `apply` puts the
// orphans in the outbox, so the retry pass (or worker) deletes them like any other unconfirmed deletion.
import { posix } from 'node:path';
import { randomUUID } from 'node:crypto';
import { FILE_TYPES, type FileType, type ListEntry } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { Host, Operation, PendingDeletion, StoreReads, VmHostFile } from '../store/index.js';
import type { FlowDeps } from './deps.js';
import { resolveHost } from './inventory.js';
import { failJournalOnError, repeatFlow, startJournal } from './sync.js';

export const RECONCILE_HOST = 'host.reconcile';

/**
 * The `vmUuid` of the outbox rows `apply` makes for orphans: the nil UUID, which no VM has (VMs get random v4
 * UUIDs). pending_deletions.vm_uuid is NOT NULL without a foreign key; it is what the retry pass serializes on, and
 * no flow of a real VM waits on this one. `tpmUuid` is null: an orphan holds no key binding back.
 */
export const ORPHAN_VM_UUID = '00000000-0000-0000-0000-000000000000';

export interface ReconcileOptions {
  /** put every orphan in the outbox */
  readonly apply?: boolean;
}

export interface MissingFile {
  readonly vmUuid: string;
  readonly type: FileType;
  readonly path: string;
  /** as recorded */
  readonly sha256: string;
  readonly size: number;
}

export interface ReconcileReport {
  readonly operationId: string;
  readonly hostUuid: string;
  readonly hostName: string;
  /** regular files under the host's roots */
  readonly listed: number;
  /** on disk, in no row and no pending deletion */
  readonly orphans: readonly ListEntry[];
  /** in a row, not on disk */
  readonly missing: readonly MissingFile[];
  /** on disk, already waiting in the outbox */
  readonly pending: number;
  /** with `apply`: the orphans put in the outbox (all of them, unless a write recorded one meanwhile) */
  readonly scheduled: readonly string[];
}

interface Compared {
  readonly orphans: ListEntry[];
  readonly missing: MissingFile[];
  readonly pending: number;
}

/** Lists the host's roots and compares; with `apply`, schedules the orphans' deletion in the same transaction. */
export async function reconcileHost(
  deps: FlowDeps,
  hostRef: string,
  options: ReconcileOptions = {},
  operationId: string = randomUUID(),
): Promise<ReconcileReport> {
  const host = await resolveHost(deps, hostRef);
  const apply = options.apply === true;
  await startJournal(deps, {
    id: operationId,
    kind: RECONCILE_HOST,
    subject: host.uuid,
    step: 'list',
    input: { host: host.uuid, apply },
  });
  return failJournalOnError(deps, operationId, async () => {
    const listed = await listHost(deps, host);
    return deps.store.transaction(async (tx) => {
      // Compared inside the transaction: a row written since the listing is seen, and its file is no orphan.
      const compared = await compare(tx, host, listed);
      const scheduled = apply ? compared.orphans.map((o) => o.path) : [];
      await tx.addPendingDeletions(
        apply
          ? compared.orphans.map((orphan) => ({
              hostUuid: host.uuid,
              type: orphan.type,
              path: orphan.path,
              vmUuid: ORPHAN_VM_UUID,
              tpmUuid: null,
              // After the first backoff, not at once: a write whose file landed but whose row is not recorded yet
              // cancels this deletion when it records the row (upsertFile), before any retry could send it.
              nextAttemptAt: deps.now() + deps.retryBaseMs,
              lastError: 'orphan: found by reconcile, in no row and no pending deletion',
            }))
          : [],
      );
      const report: ReconcileReport = {
        operationId,
        hostUuid: host.uuid,
        hostName: host.name,
        listed: listed.length,
        ...compared,
        scheduled,
      };
      await tx.finishOperation(operationId, 'done', report);
      return report;
    });
  });
}

async function listHost(deps: FlowDeps, host: Host): Promise<readonly ListEntry[]> {
  try {
    const answer = await deps.agents.send(host, 'files.list', { types: [...FILE_TYPES] });
    await deps.store.setHostState(host.uuid, 'Connected', deps.now());
    return answer.results;
  } catch (error) {
    if (isAgentCallError(error) && (error.failure === 'unreachable' || error.failure === 'timeout'))
      await deps.store.setHostState(host.uuid, 'Disconnected');
    throw error;
  }
}

async function compare(store: StoreReads, host: Host, listed: readonly ListEntry[]): Promise<Compared> {
  const rows: readonly VmHostFile[] = await store.listFilesByHost(host.uuid);
  const outbox: readonly PendingDeletion[] = await store.listPendingDeletions({ hostUuid: host.uuid });
  const recorded = new Set(rows.map((r) => r.path));
  const waiting = new Set(outbox.map((p) => p.path));
  // A recorded or pending path may be a directory (a delete removes a whole tree): what lies below it is accounted for.
  const orphans = listed.filter((file) => !coveredBy(file.path, recorded) && !coveredBy(file.path, waiting));
  const pending = listed.filter((file) => !coveredBy(file.path, recorded) && coveredBy(file.path, waiting)).length;
  const onDisk = new Set(listed.flatMap((file) => [file.path, ...ancestors(file.path)]));
  const missing = rows
    .filter((row) => !onDisk.has(row.path))
    .map(({ vmUuid, type, path, sha256, size }) => ({ vmUuid, type, path, sha256, size }));
  return { orphans, missing, pending };
}

/** The path itself or one of its parent directories is in the set. */
const coveredBy = (path: string, paths: ReadonlySet<string>): boolean =>
  paths.has(path) || ancestors(path).some((dir) => paths.has(dir));

function ancestors(path: string): string[] {
  const dirs: string[] = [];
  for (let dir = posix.dirname(path); dir !== '/' && dir !== '.'; dir = posix.dirname(dir)) dirs.push(dir);
  return dirs;
}

/** Repeats a reconcile the controller was killed in: its listing and scheduling commit together, or not at all. */
export async function resumeReconcile(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const { host, apply } = input;
    if (typeof host !== 'string') return 'the input cannot be read';
    if ((await deps.store.getHost(host)) === null) return 'the host is no longer in the inventory';
    await reconcileHost(deps, host, { apply: apply === true }, operation.id);
    return null;
  });
}
