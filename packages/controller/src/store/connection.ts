// The one sqlite3 connection of a store: promise helpers over the callback API, and a queue that keeps every
// transaction whole. One connection interleaves the statements of concurrent async callers (a BEGIN of one
// inside the transaction of another); the queue runs one job at a time, so a transaction's statements are
// never mixed with anyone else's and a read never sees another caller's uncommitted rows.
import { AsyncLocalStorage } from 'node:async_hooks';
import sqlite3 from 'sqlite3';
import type { Database, RunResult as DriverRunResult } from 'sqlite3';
import { isStoreError, StoreError, toStoreError } from './errors.js';

export type SqlValue = string | number | null | Uint8Array;
/** Named parameters (`$name` in the SQL, `name` here) or positional ones (`?`). */
export type SqlParams = Readonly<Record<string, SqlValue>> | readonly SqlValue[];

export interface RunResult {
  readonly changes: number;
  readonly lastId: number;
}

/** Rows come back as the driver gives them; callers describe the shape they selected. */
export interface Sql {
  run(text: string, params?: SqlParams): Promise<RunResult>;
  get<T>(text: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(text: string, params?: SqlParams): Promise<T[]>;
  exec(text: string): Promise<void>;
}

export interface Connection {
  /** Runs `job` alone on the connection, in autocommit mode (one statement, one implicit transaction). */
  exclusive<T>(job: (sql: Sql) => Promise<T>): Promise<T>;
  /** Runs `fn` alone on the connection inside BEGIN IMMEDIATE … COMMIT, or ROLLBACK when it throws. */
  transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface ConnectionOptions {
  readonly busyTimeoutMs: number;
  readonly synchronous: 'FULL' | 'NORMAL';
  readonly onTrace?: ((sql: string) => void) | undefined;
  /** Runs before anything is written (WAL changes the file's header), but the busy timeout: a check that may refuse. */
  readonly check?: ((sql: Sql) => Promise<void>) | undefined;
}

const noop = (): void => undefined;
const summarize = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 60);

const bind = (params: SqlParams | undefined): unknown => {
  const value = (v: SqlValue): unknown =>
    // The driver binds a Buffer as a BLOB; a plain Uint8Array would not be.
    v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
  if (params === undefined) return [];
  if (Array.isArray(params)) return params.map(value);
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [`$${k}`, value(v)]));
};

/** The driver's callback API as promises, with every error mapped to a StoreError. */
function driverSql(db: Database): Sql {
  return {
    run: (text, params) =>
      new Promise((resolve, reject) => {
        db.run(text, bind(params), function (this: DriverRunResult, error: Error | null) {
          if (error) reject(toStoreError(error, summarize(text)));
          else resolve({ changes: this.changes, lastId: this.lastID });
        });
      }),
    get: <T>(text: string, params?: SqlParams) =>
      new Promise<T | undefined>((resolve, reject) => {
        db.get(text, bind(params), (error: Error | null, row: T | undefined) => {
          if (error) reject(toStoreError(error, summarize(text)));
          else resolve(row);
        });
      }),
    all: <T>(text: string, params?: SqlParams) =>
      new Promise<T[]>((resolve, reject) => {
        db.all(text, bind(params), (error: Error | null, rows: T[]) => {
          if (error) reject(toStoreError(error, summarize(text)));
          else resolve(rows);
        });
      }),
    exec: (text) =>
      new Promise((resolve, reject) => {
        db.exec(text, (error: Error | null) => {
          if (error) reject(toStoreError(error, summarize(text)));
          else resolve();
        });
      }),
  };
}

/**
 * A view of `sql` valid until `end()`: it refuses statements afterwards (a tx kept past its transaction would
 * otherwise run outside it, in someone else's turn). A statement issued but not awaited before the end still runs
 * before COMMIT or ROLLBACK: the connection runs statements in the order they are issued (`serialize` below).
 */
export function scope(sql: Sql): { readonly sql: Sql; end(): void } {
  let open = true;
  const guard = <T>(start: () => Promise<T>): Promise<T> =>
    open ? start() : Promise.reject(new Error('store: statement issued after its transaction or job ended'));
  return {
    sql: {
      run: (text, params) => guard(() => sql.run(text, params)),
      get: (text, params) => guard(() => sql.get(text, params)),
      all: (text, params) => guard(() => sql.all(text, params)),
      exec: (text) => guard(() => sql.exec(text)),
    },
    end: () => {
      open = false;
    },
  };
}

/**
 * A transaction's statements, refused once one of them failed: the transaction is then over, on either engine.
 * PostgreSQL aborts a transaction at its first error (and its COMMIT then rolls back without a word); SQLite would
 * let it go on and commit the rest. So neither does: later statements are refused, and `failure()` tells the
 * transaction to roll back and fail even when the callback caught the error and returned.
 */
export function abortingOnError(sql: Sql): { readonly sql: Sql; failure(): StoreError | undefined } {
  let failed: StoreError | undefined;
  const watch = <T>(start: () => Promise<T>): Promise<T> => {
    if (failed !== undefined) return Promise.reject(failed);
    return start().catch((error: unknown) => {
      failed ??= new StoreError('io', 'the transaction failed at an earlier statement; it rolls back', {
        cause: error,
      });
      throw error;
    });
  };
  return {
    sql: {
      run: (text, params) => watch(() => sql.run(text, params)),
      get: (text, params) => watch(() => sql.get(text, params)),
      all: (text, params) => watch(() => sql.all(text, params)),
      exec: (text) => watch(() => sql.exec(text)),
    },
    failure: () => failed,
  };
}

/**
 * `fn` between `begin` and COMMIT, on either engine: its statements refused once it ended or once one failed (then
 * it rolls back, even if `fn` caught the error), `prelude` run first inside the transaction (PostgreSQL's write lock).
 */
export async function inTransaction<T>(
  sql: Sql,
  how: {
    readonly begin: string;
    readonly prelude?: (sql: Sql) => Promise<void>;
    readonly rollback: (cause: unknown) => Promise<void>;
  },
  fn: (sql: Sql) => Promise<T>,
): Promise<T> {
  await sql.exec(how.begin);
  const watched = abortingOnError(sql);
  const tx = scope(watched.sql);
  let value: T;
  try {
    await how.prelude?.(sql);
    value = await fn(tx.sql);
    tx.end();
    const failure = watched.failure();
    if (failure) throw failure;
    await sql.exec('COMMIT');
  } catch (error) {
    tx.end();
    await how.rollback(error);
    throw error;
  }
  return value;
}

async function rollback(sql: Sql, cause: unknown): Promise<void> {
  try {
    await sql.exec('ROLLBACK');
  } catch (error) {
    // After some errors (SQLITE_FULL, SQLITE_IOERR…) SQLite has already rolled back by itself: nothing to undo.
    if (isStoreError(error) && error.message.includes('no transaction is active')) return;
    throw new StoreError('io', 'rollback failed', { cause: new AggregateError([cause, error]) });
  }
}

function openDatabase(path: string): Promise<Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE, (error) => {
      if (error) reject(toStoreError(error, `cannot open database ${path}`));
      else resolve(db);
    });
  });
}

function closeDatabase(db: Database): Promise<void> {
  return new Promise((resolve, reject) => {
    db.close((error) => {
      if (error) reject(toStoreError(error, 'close'));
      else resolve();
    });
  });
}

async function configure(sql: Sql, path: string, options: ConnectionOptions): Promise<void> {
  // First, so that switching to WAL waits for another process's lock instead of failing at once.
  await sql.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs}`);
  const journal = await sql.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
  if (journal?.journal_mode !== 'wal' && path !== ':memory:') {
    throw new StoreError('io', `cannot use WAL on ${path}: journal_mode is ${journal?.journal_mode ?? 'unknown'}`);
  }
  await sql.exec('PRAGMA foreign_keys = ON');
  const fk = await sql.get<{ foreign_keys: number }>('PRAGMA foreign_keys');
  if (fk?.foreign_keys !== 1) throw new StoreError('io', 'this SQLite build does not enforce foreign keys');
  await sql.exec(`PRAGMA synchronous = ${options.synchronous}`);
}

export async function openConnection(path: string, options: ConnectionOptions): Promise<Connection> {
  if (!Number.isInteger(options.busyTimeoutMs) || options.busyTimeoutMs < 0) {
    throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${options.busyTimeoutMs}`);
  }
  const db = await openDatabase(path);
  // Statements then run in the order they are issued (the driver's default is to run them in parallel).
  db.serialize();
  if (options.onTrace) db.on('trace', options.onTrace);
  const raw = driverSql(db);
  try {
    // The busy timeout first (it writes nothing): the check waits out another process's lock as every statement does.
    await raw.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs}`);
    await options.check?.(raw);
    await configure(raw, path, options);
  } catch (error) {
    await closeDatabase(db);
    throw error;
  }

  // The job of this connection the caller runs inside, if any: a job that calls its own store again would wait on
  // itself. Work a job started and left running (a timer, a background task) may call the store once the job is over.
  const running = new AsyncLocalStorage<{ active: boolean }>();
  let tail: Promise<void> = Promise.resolve();
  let closing: Promise<void> | undefined;

  const exclusive = <T>(job: (sql: Sql) => Promise<T>): Promise<T> => {
    if (running.getStore()?.active === true) {
      return Promise.reject(
        new Error('store: called inside one of its own transactions, which would wait forever; use the tx argument'),
      );
    }
    if (closing) return Promise.reject(new StoreError('io', 'store is closed'));
    const result = tail.then(() => {
      const current = { active: true };
      return running.run(current, async () => {
        const view = scope(raw);
        try {
          return await job(view.sql);
        } finally {
          view.end();
          current.active = false;
        }
      });
    });
    tail = result.then(noop, noop);
    return result;
  };

  const transaction = <T>(fn: (sql: Sql) => Promise<T>): Promise<T> =>
    exclusive((sql) => inTransaction(sql, { begin: 'BEGIN IMMEDIATE', rollback: (cause) => rollback(sql, cause) }, fn));

  const close = (): Promise<void> => {
    closing ??= exclusive(() => closeDatabase(db));
    return closing;
  };

  return { exclusive, transaction, close };
}
