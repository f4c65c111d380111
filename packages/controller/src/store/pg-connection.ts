// The PostgreSQL side of the store's Connection: a pool of `pg` clients behind the same Sql the SQLite store's
// table groups use, so each query is written once. What differs is here:
// - placeholders: the table groups write `$name` (or `?`); PostgreSQL wants `$1…`, translated once per text;
// - types: bigint (times in ms, sizes, ids, COUNT) comes back as a number, json as its text (the table groups parse);
// - write transactions are serialized across every process on the database, as SQLite's BEGIN IMMEDIATE does, by a
//   transaction-level advisory lock taken first in each one. It is released by COMMIT or ROLLBACK, whatever
//   connection the transaction ran on, so it is safe behind a transaction-mode pooler (a session-level lock is not:
//   it would stay with a pooled server connection). Every flow's reasoning about its transactions holds unchanged.
//   Reads outside a transaction are not queued: each statement sees what was committed when it started.
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import {
  inTransaction,
  scope,
  type Connection,
  type RunResult,
  type Sql,
  type SqlParams,
  type SqlValue,
} from './connection.js';
import { SCHEMA_NAME } from '../config.js';
import { isStoreError, StoreError, toPgStoreError } from './errors.js';

export interface PgConnectionOptions {
  /** postgres://user@host:port/database */
  readonly url: string;
  /** The schema the tables live in (created if missing); `public` by default. */
  readonly schema?: string | undefined;
  /** At most this many server connections; 8 by default. */
  readonly poolSize?: number | undefined;
  /** How long to wait for a connection before failing with 'io'; 10 s by default. */
  readonly connectTimeoutMs?: number | undefined;
  readonly onTrace?: ((sql: string) => void) | undefined;
}

/** The advisory lock's first key: "host" in ASCII; the second is the schema's hash, so schemas do not contend. */
const WRITE_LOCK_CLASS = 0x686f7374;

const noop = (): void => undefined;
const summarize = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 60);

interface Translated {
  readonly text: string;
  /** The parameter names in `$1…` order; null when the text uses `?` (positional). */
  readonly names: readonly string[] | null;
}

const translations = new Map<string, Translated>();

/**
 * `$name` and `?` placeholders to `$1…`, outside quoted literals and comments. The same name reused is the same
 * parameter. A text may use one style or the other, not both.
 */
export function translate(text: string): Translated {
  const known = translations.get(text);
  if (known) return known;
  let out = '';
  const names: string[] = [];
  let positional = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new Error(`store: unterminated quote in ${summarize(text)}`);
      out += text.slice(i, end + 1);
      i = end + 1;
    } else if (c === '-' && text.charAt(i + 1) === '-') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === '$' && /[A-Za-z_]/.test(text.charAt(i + 1))) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
      const name = match?.[0] ?? '';
      let index = names.indexOf(name);
      if (index < 0) index = names.push(name) - 1;
      out += `$${index + 1}`;
      i += 1 + name.length;
    } else if (c === '?') {
      positional += 1;
      out += `$${positional}`;
      i += 1;
    } else {
      out += c;
      i += 1;
    }
  }
  if (names.length > 0 && positional > 0) throw new Error(`store: mixed placeholders in ${summarize(text)}`);
  const translated = { text: out, names: positional > 0 || names.length === 0 ? null : names };
  if (translations.size < 4096) translations.set(text, translated);
  return translated;
}

const value = (v: SqlValue): unknown =>
  v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;

function bind(translated: Translated, params: SqlParams | undefined): unknown[] {
  if (params === undefined) return [];
  if (Array.isArray(params)) return params.map((v: SqlValue) => value(v));
  const named = params as Readonly<Record<string, SqlValue>>;
  return (translated.names ?? []).map((name) => {
    const v = named[name];
    if (v === undefined) throw new Error(`store: no value for $${name}`);
    return value(v);
  });
}

/** bigint as a number: times in ms, sizes and ids stay far below 2^53. */
function parseBigint(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new StoreError('io', `integer ${text} is beyond what the controller handles`);
  return n;
}

const INT8 = 20;
const JSON_OID = 114;
const builtin = pg.types.getTypeParser as (oid: number, format: 'text' | 'binary') => (value: string) => unknown;
const typeParsers = {
  getTypeParser: ((oid: number, format: 'text' | 'binary' = 'text') => {
    if (oid === INT8) return parseBigint;
    if (oid === JSON_OID) return (text: string) => text;
    return builtin(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

type Queryable = Pick<pg.PoolClient, 'query'>;

/** How many statements of a connection's turn have completed: none, when its first one failed. */
interface Progress {
  statements: number;
}

function clientSql(client: Queryable, onTrace: (sql: string) => void, progress: Progress = { statements: 0 }): Sql {
  const query = async (text: string, params?: SqlParams): Promise<pg.QueryResult> => {
    const translated = translate(text);
    onTrace(text);
    try {
      const result = await client.query({ text: translated.text, values: bind(translated, params) });
      progress.statements++;
      return result;
    } catch (error) {
      throw toPgStoreError(error, summarize(text));
    }
  };
  return {
    run: async (text, params): Promise<RunResult> => ({
      changes: (await query(text, params)).rowCount ?? 0,
      lastId: 0,
    }),
    get: async <T>(text: string, params?: SqlParams) => (await query(text, params)).rows[0] as T | undefined,
    all: async <T>(text: string, params?: SqlParams) => (await query(text, params)).rows as T[],
    exec: async (text) => {
      onTrace(text);
      try {
        await client.query(text);
        progress.statements++;
      } catch (error) {
        throw toPgStoreError(error, summarize(text));
      }
    },
  };
}

export interface PgConnection extends Connection {
  /** The schema the connection's statements run in. */
  readonly schema: string;
}

export function openPgConnection(options: PgConnectionOptions): PgConnection {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new RangeError(`schema must match ${SCHEMA_NAME.source}, got ${schema}`);
  const poolSize = options.poolSize ?? 8;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    options: `-c search_path=${schema}`,
    types: typeParsers,
    // Which deployment a connection serves, in pg_stat_activity (a schema name is at most 63 characters; so is this).
    application_name: `hostfiles:${schema}`.slice(0, 63),
  });
  // An idle connection the server dropped (a restart, a pooler's timeout) is removed by the pool and reopened on
  // demand; without a listener, its error would end the process.
  pool.on('error', noop);
  const onTrace = options.onTrace ?? noop;
  const running = new AsyncLocalStorage<{ active: boolean }>();
  let closed = false;

  const withClient = async <T>(work: (client: pg.PoolClient, sql: Sql) => Promise<T>): Promise<T> => {
    if (running.getStore()?.active === true) {
      throw new Error(
        'store: called inside one of its own transactions, which would wait forever; use the tx argument',
      );
    }
    for (let attempt = 1; ; attempt++) {
      if (closed) throw new StoreError('io', 'store is closed');
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw toPgStoreError(error, 'cannot connect to PostgreSQL');
      }
      let broken: Error | undefined;
      const connection = { failed: false };
      const onError = (error: Error): void => {
        broken = error;
        connection.failed = true;
      };
      client.on('error', onError);
      const current = { active: true };
      const progress: Progress = { statements: 0 };
      try {
        return await running.run(current, () => work(client, clientSql(client, onTrace, progress)));
      } catch (error) {
        // A statement that failed because the connection did is not worth keeping in the pool.
        if (isStoreError(error) && error.code === 'io') broken ??= error;
        // A connection the server dropped while it sat idle in the pool (a restart, a failover, a pooler's timeout)
        // fails its first statement before anything ran on it — a transaction's BEGIN, or a lone read or renewal,
        // both safe to repeat: again, on another connection, so no request fails for the pool's stale sockets (as
        // many as the pool holds, each dropped from it as it fails).
        const lost = progress.statements === 0 && (connection.failed || connectionLost(error));
        if (lost && attempt <= poolSize) continue;
        throw error;
      } finally {
        current.active = false;
        client.off('error', onError);
        client.release(broken);
      }
    }
  };

  const exclusive = <T>(job: (sql: Sql) => Promise<T>): Promise<T> =>
    withClient(async (_client, sql) => {
      const view = scope(sql);
      try {
        return await job(view.sql);
      } finally {
        view.end();
      }
    });

  const transaction = <T>(fn: (sql: Sql) => Promise<T>): Promise<T> =>
    withClient((client, sql) =>
      inTransaction(
        sql,
        {
          begin: 'BEGIN',
          prelude: async (sql) => {
            await sql.run('SELECT pg_advisory_xact_lock($class, hashtext($schema)) AS locked', {
              class: WRITE_LOCK_CLASS,
              schema,
            });
          },
          rollback: async (cause) => {
            try {
              await client.query('ROLLBACK');
            } catch (rollbackError) {
              // The connection is gone: the server rolled back with it. The pool drops the client (release(broken)).
              throw new StoreError('io', 'rollback failed', { cause: new AggregateError([cause, rollbackError]) });
            }
          },
        },
        fn,
      ),
    );

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await pool.end();
  };

  return { schema, exclusive, transaction, close };
}

/**
 * Whether `error` says the connection was lost (not the statement refused): a connection exception (SQLSTATE class
 * 08), the server shutting the session down (57P01–57P03), or the socket gone.
 */
function connectionLost(error: unknown): boolean {
  if (!isStoreError(error) || error.code !== 'io') return false;
  const cause: unknown = error.cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  const message = cause instanceof Error ? cause.message : '';
  return code.startsWith('08') || /^57P0[123]$/.test(code) || /Connection terminated|ECONNRESET|EPIPE/.test(message);
}
