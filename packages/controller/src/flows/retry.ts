// Step 6: drains the outbox. Due deletions are sent per host (one command per host and ≤ 1000 files),
// confirmed rows removed with the bindings they held back, the rest pushed back with exponential backoff and jitter.
import type { PendingDeletion } from '../store/index.js';
import type { FlowDeps } from './deps.js';
import { deleteOnHosts, type HostReport } from './dispatch.js';
import { keysOfStates, vmKey } from './lock-keys.js';
import { forgetDeleted, isConfirmed, outcomesOf, reasonOf } from './outbox.js';
import { settleBinding } from './remove-tpm.js';
import { runPlanned, type Plan } from './run-planned.js';

export interface RetryReport {
  readonly attempted: number;
  readonly confirmed: number;
  /** conditional deletions dropped: the path no longer held what they were to delete */
  readonly dropped: number;
  readonly stillPending: number;
  readonly detached: readonly string[];
  readonly hosts: readonly HostReport[];
}

export interface RetryOptions {
  /** only this host's rows, e.g. at once when it reconnects */
  readonly hostUuid?: string;
  /** every pending row, due or not (the operator's `retry`) */
  readonly all?: boolean;
  /** only the rows of these hosts: this controller's share of the fleet, when several share it */
  readonly hostUuids?: ReadonlySet<string>;
}

export async function retryPendingDeletions(deps: FlowDeps, options: RetryOptions = {}): Promise<RetryReport> {
  const filter = options.hostUuid === undefined ? {} : { hostUuid: options.hostUuid };
  const listed = options.all
    ? await deps.store.listPendingDeletions(filter)
    : await deps.store.listDueDeletions(deps.now(), filter);
  const share = options.hostUuids;
  const rows = share === undefined ? listed : listed.filter((row) => share.has(row.hostUuid));
  if (rows.length === 0) return { attempted: 0, confirmed: 0, dropped: 0, stillPending: 0, detached: [], hosts: [] };
  return runPlanned(
    deps,
    () => retryKeys(deps, rows),
    async (current) => {
      const hosts = await deleteOnHosts(
        deps,
        current.map(({ hostUuid, type, path, expectSha256 }) => ({
          hostUuid,
          type,
          path,
          ...(expectSha256 === null ? {} : { expect: expectSha256 }),
        })),
        'retry',
      );
      return settle(deps, current, hosts);
    },
  );
}

/**
 * Serialized with every flow on the rows' VMs and on their paths: a write that lands at one of them meanwhile cancels
 * its row before we send, and none lands while we delete. Keyed by the rows as they are now, not as first listed: a
 * merge may have handed a row to another VM.
 */
async function retryKeys(deps: FlowDeps, rows: readonly PendingDeletion[]): Promise<Plan<PendingDeletion[]>> {
  const current = await stillPending(deps, rows);
  return { keys: [...current.map((row) => vmKey(row.vmUuid)), ...keysOfStates(current)], value: current };
}

/**
 * The rows as they are now: those cancelled (by a write) or confirmed (by another pass) while we waited for the queue
 * are not sent, and the others are sent as they stand (a merge may have made a conditional deletion unconditional).
 */
async function stillPending(deps: FlowDeps, rows: readonly PendingDeletion[]): Promise<PendingDeletion[]> {
  const wanted = new Set(rows.map((row) => row.id));
  // Only the rows' hosts are read again: a pass over one host, or over one controller's share, never reads the
  // whole outbox of the fleet.
  const current: PendingDeletion[] = [];
  for (const hostUuid of new Set(rows.map((row) => row.hostUuid))) {
    for (const row of await deps.store.listPendingDeletions({ hostUuid })) if (wanted.has(row.id)) current.push(row);
  }
  return current;
}

async function settle(
  deps: FlowDeps,
  rows: readonly PendingDeletion[],
  hosts: readonly HostReport[],
): Promise<RetryReport> {
  const outcome = outcomesOf(hosts);
  const now = deps.now();
  return deps.store.transaction(async (tx) => {
    const confirmed: number[] = [];
    const dropped: number[] = [];
    const tpms = new Set<string>();
    for (const row of rows) {
      const result = outcome(row.hostUuid, row.path);
      if (isConfirmed(result)) {
        confirmed.push(row.id);
        if (row.tpmUuid !== null) tpms.add(row.tpmUuid);
      } else if (result?.status === 'changed') {
        // Other state is there now (libvirt's, a newer write's): it was never this deletion's to remove.
        dropped.push(row.id);
      } else {
        const lastError = reasonOf(result);
        await tx.markDeletionFailed(row.id, { nextAttemptAt: now + backoff(deps, row.attempts + 1), lastError });
      }
    }
    await tx.deletePendingDeletions([...confirmed, ...dropped]);
    const done = new Set([...confirmed, ...dropped]);
    await forgetDeleted(
      tx,
      rows.filter((row) => done.has(row.id)),
    );
    const detached: string[] = [];
    for (const tpm of tpms) {
      if ((await tx.getKeyBinding(tpm)) !== null && (await settleBinding(tx, tpm)) === 'detached') detached.push(tpm);
    }
    return {
      attempted: rows.length,
      confirmed: confirmed.length,
      dropped: dropped.length,
      stillPending: rows.length - confirmed.length - dropped.length,
      detached,
      hosts,
    };
  });
}

/** base · 2^(attempts−1), capped, with "equal jitter": half fixed, half random, so hosts don't retry in lockstep. */
export function backoff(deps: Pick<FlowDeps, 'retryBaseMs' | 'retryMaxMs' | 'random'>, attempts: number): number {
  const exp = Math.min(deps.retryMaxMs, deps.retryBaseMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(exp / 2 + (exp / 2) * deps.random());
}
