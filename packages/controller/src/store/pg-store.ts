// The Store on PostgreSQL through `pg`: the same table groups as SQLite's store over a pool (pg-connection.ts), its
// own migrations, applied at open. Several controllers may open one database: write transactions are serialized
// across all of them, as on SQLite (see pg-connection.ts).
import type { Sql } from './connection.js';
import { migrate, MIGRATIONS_TABLE, requireMigrated, type SchemaReport } from './migrate.js';
import { PG_MIGRATIONS } from './migrations/pg/index.js';
import { openPgConnection } from './pg-connection.js';
import { storeOver } from './store-over.js';
import type { Store } from './types.js';

export interface PgStoreOptions {
  /** The clock of bookkeeping stamps (createdAt, updatedAt, applied_at); Date.now by default. */
  readonly now?: () => number;
  /** The schema of the tables, created at open if missing; `public` by default. */
  readonly schema?: string | undefined;
  /** Refuse a schema hostfiles never made (no tables are created): every command but `init`. */
  readonly existing?: boolean;
  /** At most this many server connections; 8 by default. */
  readonly poolSize?: number;
  /** How long to wait for a server connection before failing with 'io'; 10 s by default. */
  readonly connectTimeoutMs?: number;
  /** Called with the text of every statement as it starts (debugging, tests). */
  readonly onTrace?: (sql: string) => void;
  /** Told the schema version the database had when opened and has now (`init` says which it did). */
  readonly onSchema?: SchemaReport;
}

export async function createPgStore(url: string, options: PgStoreOptions = {}): Promise<Store> {
  const now = options.now ?? Date.now;
  const connection = openPgConnection({
    url,
    schema: options.schema,
    poolSize: options.poolSize,
    connectTimeoutMs: options.connectTimeoutMs,
    onTrace: options.onTrace,
  });
  try {
    if (options.existing === true) await connection.transaction((sql) => requireMigrated(sql, connection.schema));
    else await connection.transaction((sql: Sql) => sql.exec(`CREATE SCHEMA IF NOT EXISTS ${connection.schema}`));
    await migrate(connection, PG_MIGRATIONS, now, MIGRATIONS_TABLE.postgres, options.onSchema);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return storeOver(connection, now);
}
