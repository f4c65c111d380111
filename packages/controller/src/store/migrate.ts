// Brings a database to the schema this code knows, one transaction per migration, and refuses a newer one.
import type { Connection, Sql } from './connection.js';
import { StoreError } from './errors.js';
import type { Migration } from './migrations/index.js';

/** The bookkeeping table, as each engine writes it. */
export const MIGRATIONS_TABLE = {
  sqlite: `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER NOT NULL PRIMARY KEY,
  name       TEXT    NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT`,
  postgres: `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer NOT NULL PRIMARY KEY,
  name       text    NOT NULL,
  applied_at bigint  NOT NULL
)`,
} as const;

/**
 * Whether the bookkeeping table is there, as each engine asks (Postgres in the schema named): a database hostfiles
 * made has it from its first migration on. The schema is an identifier checked by its pattern (pg-connection.ts).
 */
const MIGRATIONS_PRESENT = {
  sqlite: () => "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
  postgres: (schema: string) =>
    `SELECT 1 AS found FROM pg_catalog.pg_tables WHERE schemaname = '${schema}' AND tablename = 'schema_migrations'`,
} as const;

/**
 * Refuses a database hostfiles never made (StoreError 'not_found'): a command other than `init` must not create its
 * tables in a schema named by a typo (an empty fleet, whose every state a reconcile would then call unknown) or in
 * another program's SQLite file. `schema`: the Postgres schema, none for SQLite.
 */
export async function requireMigrated(sql: Pick<Sql, 'get'>, schema?: string): Promise<void> {
  const probe = schema === undefined ? MIGRATIONS_PRESENT.sqlite() : MIGRATIONS_PRESENT.postgres(schema);
  const found = await sql.get(probe);
  if (found === undefined) {
    throw new StoreError(
      'not_found',
      `it is not a hostfiles database (no schema_migrations table${schema === undefined ? '' : ` in schema ${schema}`}): ` +
        '`hostfiles init` makes one, and only it',
    );
  }
}

/** Versions must be 1, 2, 3…: a gap or a duplicate is a bug in the code, found before touching any database. */
function checkSequence(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`migration ${migration.name} has version ${migration.version}, expected ${index + 1}`);
    }
  });
}

/** The schema versions a database had before `migrate` and has after it: 0 before, for one it created. */
export type SchemaReport = (change: { readonly from: number; readonly to: number }) => void;

/**
 * Applies what is missing and answers the database's version. Safe to run again, and from two processes at once.
 * `report` is told which version the database had before (what this process found) and has now.
 */
export async function migrate(
  connection: Connection,
  migrations: readonly Migration[],
  now: () => number,
  table: string = MIGRATIONS_TABLE.sqlite,
  report?: SchemaReport,
): Promise<number> {
  checkSequence(migrations);
  const known = migrations.length;
  const current = await connection.transaction(async (sql) => {
    await sql.exec(table);
    const row = await sql.get<{ version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations');
    return row?.version ?? 0;
  });
  if (current > known) {
    throw new StoreError(
      'schema_too_new',
      `the database has schema version ${current}, newer than this controller knows (${known}): upgrade the controller`,
    );
  }
  for (const migration of migrations.slice(current)) {
    await connection.transaction(async (sql) => {
      // Checked again under the write lock: another process may have applied it since we looked.
      const done = await sql.get('SELECT 1 FROM schema_migrations WHERE version = $version', {
        version: migration.version,
      });
      if (done !== undefined) return;
      await sql.exec(migration.sql);
      await sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($version, $name, $at)', {
        version: migration.version,
        name: migration.name,
        at: now(),
      });
    });
  }
  report?.({ from: current, to: known });
  return known;
}
