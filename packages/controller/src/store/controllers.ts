// Several controllers on one database: who is alive, the lock keys each flow holds (leases), and whose operations are
// orphans. Every write here runs in a write transaction, and write transactions are serialized across processes
// (BEGIN IMMEDIATE on SQLite, the advisory write lock on PostgreSQL): a check and the write it allows never interleave
// with another controller's.
import { StoreError } from './errors.js';
import { OPERATION_COLUMNS, toOperation, type OperationRow } from './operations.js';
import { selectWhereIn, type Context } from './support.js';
import type { LeaseKey, LiveController, NewController, Operation } from './types.js';

interface ControllerRow {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  expires_at: number;
}

interface LeaseRow {
  key: string;
  mode: 'shared' | 'exclusive';
}

/** Rows per multi-row INSERT: 5 parameters each, well under either engine's limit. */
const INSERT_CHUNK = 200;

/**
 * A controller counts as alive until `expires_at + graceMs`: a dead one's signed commands may still be in flight
 * until they expire, so its leases keep counting that much longer (see docs/DESIGN.md, "Several controllers").
 */
const ALIVE = 'expires_at + $grace >= $now';

export function controllerReads({ sql }: Context) {
  return {
    /** The controllers alive at `now` (their leases count), by id. */
    listLiveControllers: async (now: number, graceMs = 0): Promise<LiveController[]> =>
      (
        await sql.all<ControllerRow>(
          `SELECT id, host, pid, started_at, expires_at FROM controllers WHERE ${ALIVE} ORDER BY id`,
          { now, grace: graceMs },
        )
      ).map((r) => ({ id: r.id, host: r.host, pid: r.pid, startedAt: r.started_at, expiresAt: r.expires_at })),
    /** Which controller holds each of these keys (any mode), alive or not: for the fleet's share of hosts. */
    listLeaseHolders: async (keys: readonly string[]): Promise<{ key: string; controllerId: string }[]> =>
      (
        await selectWhereIn<{ key: string; controller_id: string }>(
          sql,
          'SELECT key, controller_id FROM leases',
          'key',
          keys,
          'ORDER BY key',
        )
      ).map((r) => ({ key: r.key, controllerId: r.controller_id })),
  };
}

export function controllerWrites({ sql }: Context) {
  const dropDead = async (now: number, graceMs: number): Promise<void> => {
    // The leases of controllers that are gone or dead past their grace, then those controllers.
    await sql.run(`DELETE FROM leases WHERE controller_id NOT IN (SELECT id FROM controllers WHERE ${ALIVE})`, {
      now,
      grace: graceMs,
    });
    await sql.run(`DELETE FROM controllers WHERE NOT (${ALIVE})`, { now, grace: graceMs });
  };

  return {
    registerController: async (controller: NewController): Promise<void> => {
      await sql.run(
        `INSERT INTO controllers (id, host, pid, started_at, expires_at)
         VALUES ($id, $host, $pid, $startedAt, $expiresAt)`,
        { ...controller },
      );
    },
    /**
     * Pushes the controller's expiry to `expiresAt`; false once it has expired (or was retired): it is dead to the
     * others, who may have taken its work, and stays dead. Its process must stop.
     */
    renewController: async (id: string, now: number, expiresAt: number): Promise<boolean> =>
      (
        await sql.run('UPDATE controllers SET expires_at = $expiresAt WHERE id = $id AND expires_at > $now', {
          id,
          now,
          expiresAt,
        })
      ).changes === 1,
    /** A clean stop: the row and every lease of the controller go; its running operations become orphans. */
    retireController: async (id: string): Promise<void> => {
      await sql.run('DELETE FROM leases WHERE controller_id = $id', { id });
      await sql.run('DELETE FROM controllers WHERE id = $id', { id });
    },
    /**
     * Takes every key for `holder` (one flow of controller `controllerId`), or none: false when another live
     * controller holds one in a conflicting mode (exclusive against anything). The controller's own other holders are
     * not checked: its in-process queue already orders its flows.
     */
    tryAcquireLeases: async (
      holder: string,
      controllerId: string,
      keys: readonly LeaseKey[],
      now: number,
      graceMs: number,
    ): Promise<boolean> => {
      await dropDead(now, graceMs);
      const wanted = new Map(keys.map((k) => [k.key, k.mode]));
      const others = await selectWhereIn<LeaseRow & { controller_id: string }>(
        sql,
        'SELECT key, mode, controller_id FROM leases',
        'key',
        [...wanted.keys()],
      );
      const conflict = others.some(
        (row) =>
          row.controller_id !== controllerId && (row.mode === 'exclusive' || wanted.get(row.key) === 'exclusive'),
      );
      if (conflict) return false;
      const rows = [...wanted];
      for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
        const chunk = rows.slice(start, start + INSERT_CHUNK);
        await sql.run(
          `INSERT INTO leases (key, holder, controller_id, mode, acquired_at) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap(([key, mode]) => [key, holder, controllerId, mode, now]),
        );
      }
      return true;
    },
    releaseLeases: async (holder: string): Promise<number> =>
      (await sql.run('DELETE FROM leases WHERE holder = $holder', { holder })).changes,
    /**
     * Makes `controllerId` the runner of every running operation whose controller is dead past its grace (or none is
     * named: a controller before this schema, a process that never registered), and answers them: each orphan goes
     * to exactly one controller, whichever claims first.
     */
    claimOrphanOperations: async (controllerId: string, now: number, graceMs: number): Promise<Operation[]> => {
      await dropDead(now, graceMs);
      const rows = await sql.all<OperationRow>(
        `UPDATE operations SET controller_id = $me
         WHERE state = 'running' AND (controller_id IS NULL OR controller_id NOT IN (SELECT id FROM controllers))
         RETURNING ${OPERATION_COLUMNS}`,
        { me: controllerId },
      );
      return rows
        .map(toOperation)
        .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    /** Refuses the transaction unless `controllerId` is alive at `now`: the fencing check of every write it makes. */
    checkFence: async (controllerId: string, now: number): Promise<void> => {
      const row = await sql.get<{ expires_at: number }>('SELECT expires_at FROM controllers WHERE id = $id', {
        id: controllerId,
      });
      if (row === undefined || row.expires_at <= now) {
        throw new StoreError(
          'conflict',
          `controller ${controllerId} has expired: another controller may have taken its work; it writes nothing more`,
        );
      }
    },
  };
}
