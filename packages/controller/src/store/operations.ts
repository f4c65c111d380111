// The journal of flows: one row per operation, its current step, and its report.
import { StoreError } from './errors.js';
import { fromJson, toJson, whereEquals, type Context } from './support.js';
import type { Operation, OperationState, StoreReads, StoreWrites } from './types.js';

export interface OperationRow {
  id: string;
  kind: string;
  subject: string;
  step: string;
  state: OperationState;
  input: string;
  report: string | null;
  created_at: number;
  updated_at: number;
}
export const OPERATION_COLUMNS = 'id, kind, subject, step, state, input, report, created_at, updated_at';
const OPERATION = `SELECT ${OPERATION_COLUMNS} FROM operations`;
export const toOperation = (r: OperationRow): Operation => ({
  id: r.id,
  kind: r.kind,
  subject: r.subject,
  step: r.step,
  state: r.state,
  input: fromJson(r.input),
  report: fromJson(r.report),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export function operationReads({ sql }: Context) {
  return {
    getOperation: async (id) => {
      const row = await sql.get<OperationRow>(`${OPERATION} WHERE id = $id`, { id });
      return row === undefined ? null : toOperation(row);
    },
    listUnfinishedOperations: async () =>
      (await sql.all<OperationRow>(`${OPERATION} WHERE state = 'running' ORDER BY created_at, id`)).map(toOperation),
    // Plain SQL any engine runs (the PostgreSQL store reuses it): equality filters, ORDER BY, LIMIT.
    listOperations: async ({ state, kind, limit }) => {
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw new RangeError(`limit must be a whole number from 1: ${limit}`);
      const where = whereEquals({ state: { column: 'state', value: state }, kind: { column: 'kind', value: kind } });
      const rows = await sql.all<OperationRow>(
        `${OPERATION} ${where.clause} ORDER BY created_at DESC, id DESC LIMIT $limit`,
        { ...where.params, limit },
      );
      return rows.map(toOperation);
    },
  } satisfies Partial<StoreReads>;
}

export function operationWrites({ sql, now, owner }: Context) {
  /** Runs an UPDATE aimed at one running operation; tells a missing one from a finished one. */
  const updateRunning = async (id: string, set: string, params: Record<string, string | number | null>) => {
    const { changes } = await sql.run(
      `UPDATE operations SET ${set}, updated_at = $at WHERE id = $id AND state = 'running'`,
      {
        ...params,
        id,
        at: now(),
      },
    );
    if (changes === 1) return;
    const row = await sql.get<{ state: OperationState }>('SELECT state FROM operations WHERE id = $id', { id });
    if (row === undefined) throw new StoreError('not_found', `operation ${id} not found`);
    throw new StoreError('conflict', `operation ${id} already finished (${row.state})`);
  };
  return {
    startOperation: async ({ id, kind, subject, step, input }) => {
      const at = now();
      const operation: Operation = {
        id,
        kind,
        subject,
        step,
        state: 'running',
        input,
        report: null,
        createdAt: at,
        updatedAt: at,
      };
      await sql.run(
        `INSERT INTO operations (id, kind, subject, step, state, input, report, created_at, updated_at, controller_id)
         VALUES ($id, $kind, $subject, $step, 'running', $input, NULL, $at, $at, $controller)`,
        {
          id,
          kind,
          subject,
          step,
          input: toJson(input, `input of operation ${id}`),
          at,
          controller: owner?.() ?? null,
        },
      );
      return operation;
    },
    setOperationStep: async (id, step, report) => {
      if (report === undefined) await updateRunning(id, 'step = $step', { step });
      else
        await updateRunning(id, 'step = $step, report = $report', { step, report: toJson(report, `report of ${id}`) });
    },
    finishOperation: async (id, state, report) => {
      await updateRunning(id, 'state = $state, report = $report', { state, report: toJson(report, `report of ${id}`) });
    },
  } satisfies Partial<StoreWrites>;
}
