// The outbox of host-side deletions not yet confirmed.
import { PENDING_COLUMNS, toPending, type PendingRow } from './pending-row.js';
import { deleteWhereIn, selectWhereIn, whereEquals, type Context } from './support.js';
import type { PendingDeletion, StoreReads, StoreWrites } from './types.js';

const PENDING = `SELECT ${PENDING_COLUMNS} FROM pending_deletions`;

export function deletionReads({ sql }: Context) {
  return {
    listPendingDeletions: async (filter = {}) => {
      const where = whereEquals({
        host: { column: 'host_uuid', value: filter.hostUuid },
        vm: { column: 'vm_uuid', value: filter.vmUuid },
        tpm: { column: 'tpm_uuid', value: filter.tpmUuid },
        path: { column: 'path', value: filter.path },
      });
      return (await sql.all<PendingRow>(`${PENDING} ${where.clause} ORDER BY host_uuid, path`, where.params)).map(
        toPending,
      );
    },
    listDueDeletions: async (now, options = {}) => {
      const host = options.hostUuid === undefined ? '' : 'AND host_uuid = $host';
      const limit = options.limit === undefined ? '' : 'LIMIT $limit';
      const params = {
        now,
        ...(options.hostUuid === undefined ? {} : { host: options.hostUuid }),
        ...(options.limit === undefined ? {} : { limit: options.limit }),
      };
      const rows = await sql.all<PendingRow>(
        `${PENDING} WHERE next_attempt_at <= $now ${host} ORDER BY host_uuid, next_attempt_at, id ${limit}`,
        params,
      );
      return rows.map(toPending);
    },
    nextDeletionDueAt: async (hostUuid) => {
      const row = await sql.get<{ at: number | null }>(
        hostUuid === undefined
          ? 'SELECT MIN(next_attempt_at) AS at FROM pending_deletions'
          : 'SELECT MIN(next_attempt_at) AS at FROM pending_deletions WHERE host_uuid = $hostUuid',
        hostUuid === undefined ? {} : { hostUuid },
      );
      return row?.at ?? null;
    },
    deletionStats: async () => {
      const row = await sql.get<{ n: number; oldest: number | null }>(
        'SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM pending_deletions',
        {},
      );
      return { count: row?.n ?? 0, oldestCreatedAt: row?.oldest ?? null };
    },
    countPendingDeletionsForTpm: async (tpmUuid) => {
      const row = await sql.get<{ n: number }>(
        'SELECT COUNT(*) AS n FROM pending_deletions WHERE tpm_uuid = $tpmUuid',
        {
          tpmUuid,
        },
      );
      return row?.n ?? 0;
    },
    listTpmsWithPendingDeletions: async (tpmUuids) =>
      (
        await selectWhereIn<{ tpm_uuid: string }>(
          sql,
          'SELECT DISTINCT tpm_uuid FROM pending_deletions',
          'tpm_uuid',
          tpmUuids,
          'ORDER BY tpm_uuid',
        )
      ).map((row) => row.tpm_uuid),
  } satisfies Partial<StoreReads>;
}

export function deletionWrites({ sql, now }: Context) {
  return {
    addPendingDeletions: async (rows) => {
      const stored: PendingDeletion[] = [];
      const createdAt = now();
      for (const row of rows) {
        // `p.` is the existing row, `excluded` the one being inserted (qualified: PostgreSQL requires it, and
        // neither engine then has to guess). No min(a, b): SQLite's scalar form is PostgreSQL's least().
        const [result] = await sql.all<PendingRow>(
          `INSERT INTO pending_deletions AS p
             (host_uuid, type, path, vm_uuid, vm_name, tpm_uuid, attempts, next_attempt_at, last_error, expect_sha256,
              created_at)
           VALUES ($hostUuid, $type, $path, $vmUuid, (SELECT name FROM vms WHERE uuid = $vmUuid), $tpmUuid, 0,
                   $nextAttemptAt, $lastError, $expectSha256, $createdAt)
           ON CONFLICT (host_uuid, path) DO UPDATE SET
             type = excluded.type,
             vm_uuid = excluded.vm_uuid,
             vm_name = CASE WHEN excluded.vm_uuid = p.vm_uuid THEN coalesce(excluded.vm_name, p.vm_name)
                            ELSE excluded.vm_name END,
             tpm_uuid = coalesce(excluded.tpm_uuid, p.tpm_uuid),
             next_attempt_at = CASE WHEN excluded.next_attempt_at < p.next_attempt_at THEN excluded.next_attempt_at
                                    ELSE p.next_attempt_at END,
             last_error = coalesce(excluded.last_error, p.last_error),
             -- a deletion of whatever is there outranks a conditional one; two conditions: the newer one
             expect_sha256 = CASE WHEN p.expect_sha256 IS NULL OR excluded.expect_sha256 IS NULL THEN NULL
                                  ELSE excluded.expect_sha256 END
           RETURNING ${PENDING_COLUMNS}`,
          {
            hostUuid: row.hostUuid,
            type: row.type,
            path: row.path,
            vmUuid: row.vmUuid,
            tpmUuid: row.tpmUuid,
            nextAttemptAt: row.nextAttemptAt,
            lastError: row.lastError,
            expectSha256: row.expectSha256 ?? null,
            createdAt,
          },
        );
        if (result !== undefined) stored.push(toPending(result));
      }
      return stored;
    },
    markDeletionFailed: async (id, { nextAttemptAt, lastError }) => {
      const { changes } = await sql.run(
        `UPDATE pending_deletions SET attempts = attempts + 1, next_attempt_at = $nextAttemptAt, last_error = $lastError
         WHERE id = $id`,
        { id, nextAttemptAt, lastError },
      );
      return changes === 1;
    },
    deletePendingDeletions: (ids) => deleteWhereIn(sql, 'pending_deletions', 'id', ids),
  } satisfies Partial<StoreWrites>;
}
