// The Store on SQLite through the `sqlite3` driver: one connection, one queue, migrations applied at open.
import { openConnection, type Sql } from './connection.js';
import { deletionReads, deletionWrites } from './deletions.js';
import { fileReads, fileWrites } from './files.js';
import { inventoryReads, inventoryWrites } from './inventory.js';
import { migrate } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { operationReads, operationWrites } from './operations.js';
import type { Context } from './support.js';
import type { Store, StoreReads, StoreTx, StoreWrites } from './types.js';

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
  /** Called with the text of every statement as it starts (debugging, tests). */
  readonly onTrace?: (sql: string) => void;
}

type Method = (...args: unknown[]) => Promise<unknown>;

/** An object with the same method names as `template`, each calling `call(name, args)` instead. */
function redirect<T extends object>(template: T, call: (name: string, args: unknown[]) => Promise<unknown>): T {
  const entries = Object.keys(template).map((name) => [name, (...args: unknown[]) => call(name, args)]);
  return Object.fromEntries(entries) as T;
}

function invoke(target: object, name: string, args: unknown[]): Promise<unknown> {
  const method = (target as Record<string, Method | undefined>)[name];
  if (method === undefined) throw new Error(`store: no method ${name}`);
  return method(...args);
}

/** A Sql that refuses every statement: the templates below are built only for their method names. */
const NO_SQL: Sql = {
  run: () => Promise.reject(new Error('store: template used')),
  get: () => Promise.reject(new Error('store: template used')),
  all: () => Promise.reject(new Error('store: template used')),
  exec: () => Promise.reject(new Error('store: template used')),
};

export async function createSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const now = options.now ?? Date.now;
  const connection = await openConnection(path, {
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    synchronous: options.synchronous ?? 'FULL',
    onTrace: options.onTrace,
  });
  try {
    await migrate(connection, MIGRATIONS, now);
  } catch (error) {
    await connection.close();
    throw error;
  }

  const readsOf = (sql: Sql): StoreReads => {
    const context: Context = { sql, now };
    return { ...inventoryReads(context), ...fileReads(context), ...deletionReads(context), ...operationReads(context) };
  };
  const writesOf = (sql: Sql): StoreWrites => {
    const context: Context = { sql, now };
    return {
      ...inventoryWrites(context),
      ...fileWrites(context),
      ...deletionWrites(context),
      ...operationWrites(context),
    };
  };
  const txOf = (sql: Sql): StoreTx => ({ ...readsOf(sql), ...writesOf(sql) });

  return {
    // A read alone needs no BEGIN (it is its own snapshot) but still waits its turn in the queue.
    ...redirect(readsOf(NO_SQL), (name, args) => connection.exclusive((sql) => invoke(readsOf(sql), name, args))),
    // A write alone is a transaction of its own: upsertFile and addTpm are several statements.
    ...redirect(writesOf(NO_SQL), (name, args) => connection.transaction((sql) => invoke(writesOf(sql), name, args))),
    transaction: (fn) => connection.transaction((sql) => fn(txOf(sql))),
    close: () => connection.close(),
  };
}
