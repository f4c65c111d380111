// The Store on SQLite through the `sqlite3` driver: one connection, one queue, migrations applied at open.
import { openConnection } from './connection.js';
import { migrate, MIGRATIONS_TABLE, requireMigrated, type SchemaReport } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { storeOver } from './store-over.js';
import type { Store } from './types.js';

export interface SqliteStoreOptions {
  /** The clock of bookkeeping stamps (createdAt, updatedAt, applied_at); Date.now by default. */
  readonly now?: () => number;
  /** How long a statement waits for another process's lock before failing with 'io'; 5000 by default. */
  readonly busyTimeoutMs?: number;
  /**
   * FULL by default: each COMMIT is fsynced, so a committed transaction survives a power cut, not only a crash.
   * The controller commits rarely (a few transactions per flow), and many commits record an effect already
   * made outside (a file deleted on a host, a deletion moved into the outbox), which must not be forgotten.
   * NORMAL (WAL's usual choice: safe against a crashed process, may lose the last commits on power loss) is
   * there for benchmarks and throwaway databases.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** Refuse a file hostfiles never made (no tables are created in it): every command but `init`. */
  readonly existing?: boolean;
  /** Called with the text of every statement as it starts (debugging, tests). */
  readonly onTrace?: (sql: string) => void;
  /** Told the schema version the database had when opened and has now (`init` says which it did). */
  readonly onSchema?: SchemaReport;
}

export async function createSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const now = options.now ?? Date.now;
  const connection = await openConnection(path, {
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    synchronous: options.synchronous ?? 'FULL',
    onTrace: options.onTrace,
    check: options.existing === true ? (sql) => requireMigrated(sql) : undefined,
  });
  try {
    await migrate(connection, MIGRATIONS, now, MIGRATIONS_TABLE.sqlite, options.onSchema);
  } catch (error) {
    await connection.close();
    throw error;
  }

  return storeOver(connection, now);
}
