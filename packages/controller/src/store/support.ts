// Small helpers shared by the table groups.
import type { Sql, SqlValue } from './connection.js';
import { StoreError } from './errors.js';

/** What a table group's methods work with: the statements of the current transaction or job, and the clock. */
export interface Context {
  readonly sql: Sql;
  readonly now: () => number;
  /** The controller this store acts for (Store.actAs), or null. */
  readonly owner?: () => string | null;
}

/** Keeps an IN (…) list well under SQLite's limit on bound parameters, whatever the batch size. */
const CHUNK = 500;

/** Runs `DELETE FROM table WHERE column IN (…)` over `values` in chunks; answers how many rows went. */
export async function deleteWhereIn(
  sql: Sql,
  table: string,
  column: string,
  values: readonly SqlValue[],
): Promise<number> {
  let changes = 0;
  for (let start = 0; start < values.length; start += CHUNK) {
    const chunk = values.slice(start, start + CHUNK);
    const marks = chunk.map(() => '?').join(', ');
    changes += (await sql.run(`DELETE FROM ${table} WHERE ${column} IN (${marks})`, chunk)).changes;
  }
  return changes;
}

/** Runs `${select} WHERE column IN (…) ${tail}` over `values` in chunks and concatenates the rows. */
export async function selectWhereIn<R>(
  sql: Sql,
  select: string,
  column: string,
  values: readonly SqlValue[],
  tail = '',
): Promise<R[]> {
  const rows: R[] = [];
  for (let start = 0; start < values.length; start += CHUNK) {
    const chunk = values.slice(start, start + CHUNK);
    const marks = chunk.map(() => '?').join(', ');
    rows.push(...(await sql.all<R>(`${select} WHERE ${column} IN (${marks}) ${tail}`, chunk)));
  }
  return rows;
}

/** Runs `UPDATE table SET … WHERE column IN (…)` over `values` in chunks; `set` uses only `?` placeholders first. */
export async function updateWhereIn(
  sql: Sql,
  table: string,
  set: string,
  setParams: readonly SqlValue[],
  column: string,
  values: readonly SqlValue[],
): Promise<number> {
  let changes = 0;
  for (let start = 0; start < values.length; start += CHUNK) {
    const chunk = values.slice(start, start + CHUNK);
    const marks = chunk.map(() => '?').join(', ');
    changes += (await sql.run(`UPDATE ${table} SET ${set} WHERE ${column} IN (${marks})`, [...setParams, ...chunk]))
      .changes;
  }
  return changes;
}

/** For a statement aimed at one named row: no change means there is no such row. */
export function expectOne(changes: number, what: string): void {
  if (changes === 0) throw new StoreError('not_found', `${what} not found`);
}

// JSON.stringify answers undefined for undefined, functions and symbols, despite its declared type.
const stringify: (value: unknown) => string | undefined = JSON.stringify;

export function toJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = stringify(value);
  } catch (error) {
    throw new StoreError('constraint', `${what} is not representable as JSON`, { cause: error });
  }
  if (text === undefined) throw new StoreError('constraint', `${what} is not representable as JSON`);
  return text;
}

export const fromJson = (text: string | null): unknown => (text === null ? null : (JSON.parse(text) as unknown));

/** `AND column = $key` for each given filter entry; column names come from the caller's code, never from input. */
export function whereEquals(
  filters: Readonly<Record<string, { readonly column: string; readonly value: string | undefined }>>,
): { readonly clause: string; readonly params: Record<string, string> } {
  const params: Record<string, string> = {};
  const parts: string[] = [];
  for (const [key, { column, value }] of Object.entries(filters)) {
    if (value === undefined) continue;
    parts.push(`${column} = $${key}`);
    params[key] = value;
  }
  return { clause: parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`, params };
}
