// Fixtures for the store's tests: a real database file in a temporary directory, or a fresh schema of the real
// PostgreSQL, and a small inventory.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import sqlite3 from 'sqlite3';
import { translate } from './pg-connection.js';
import { createPgStore } from './pg-store.js';
import { createSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import type { FileType, NewPendingDeletion, Store, StoreWrites, VmHostFile } from './types.js';

/** A fresh directory removed after the test. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostfiles-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A store on a fresh file, closed after the test (before its directory goes). */
export async function openTempStore(
  t: TestContext,
  options: SqliteStoreOptions = {},
): Promise<{ store: Store; path: string }> {
  const path = join(await tempDir(t), 'hostfiles.db');
  const store = await createSqliteStore(path, options);
  t.after(() => store.close());
  return { store, path };
}

export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

/** The PostgreSQL the tests use: $HOSTFILES_TEST_PG_URL, else this machine's (and CI's) own. */
export const PG_TEST_URL = process.env['HOSTFILES_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Why the PostgreSQL tests skip here, or undefined when they run. CI sets HOSTFILES_REQUIRE_POSTGRES (and .ci/run
 * fails first when PostgreSQL does not answer): there they always run, and an unreachable server fails them.
 */
async function probePostgres(): Promise<string | undefined> {
  if (process.env['HOSTFILES_REQUIRE_POSTGRES'] === '1') return undefined;
  const client = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL is not reachable at ${PG_TEST_URL} (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}
export const POSTGRES_SKIP: string | undefined = await probePostgres();

/** `describe`'s options for a suite on `engine`: the PostgreSQL one skips, with its reason, where there is none. */
export const onEngine = (engine: Engine): { skip: string | false } => ({
  skip: engine === 'postgres' ? (POSTGRES_SKIP ?? false) : false,
});

/** A schema of its own on the test PostgreSQL, dropped after the test; answers its name. */
export function tempSchema(t: TestContext): string {
  const schema = `hf_test_${randomBytes(6).toString('hex')}`;
  t.after(async () => {
    const client = new pg.Client({ connectionString: PG_TEST_URL });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await client.end();
    }
  });
  return schema;
}

/** A store on a fresh database of `engine` (a file, or a schema), closed after the test. */
export async function openStore(
  t: TestContext,
  engine: Engine,
  options: { readonly now?: () => number } = {},
): Promise<Store> {
  return (await openStoreWithRaw(t, engine, options)).store;
}

/** One statement (`?` placeholders) on the store's database, past the store: what the schema itself refuses. */
export type RawQuery = (sql: string, params?: readonly unknown[]) => Promise<unknown[]>;

/** As openStore, with a way to reach the same database past the store. */
export async function openStoreWithRaw(
  t: TestContext,
  engine: Engine,
  options: { readonly now?: () => number } = {},
): Promise<{ store: Store; raw: RawQuery }> {
  if (engine === 'sqlite') {
    const { store, path } = await openTempStore(t, options);
    return { store, raw: (sql, params = []) => rawSqlite(path, sql, params) };
  }
  const schema = tempSchema(t);
  const store = await createPgStore(PG_TEST_URL, { ...options, schema });
  t.after(() => store.close());
  const raw: RawQuery = async (sql, params = []) => {
    const client = new pg.Client({ connectionString: PG_TEST_URL, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      return (await client.query(translate(sql).text, [...params])).rows as unknown[];
    } finally {
      await client.end();
    }
  };
  return { store, raw };
}

function rawSqlite(path: string, sql: string, params: readonly unknown[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path);
    db.all(sql, params, (error: Error | null, rows: unknown[]) => {
      db.close((closeError) => {
        const failure = error ?? closeError;
        if (failure) reject(failure);
        else resolve(rows);
      });
    });
  });
}

/** A clock that moves only when told to. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; set: (at: number) => void } {
  let at = start;
  return { now: () => at, set: (next) => (at = next) };
}

export const sha = (c: string): string => c.repeat(64).slice(0, 64);

export async function addHost(store: Pick<StoreWrites, 'addHost'>, name: string): Promise<string> {
  const uuid = `host-${name}`;
  await store.addHost({
    uuid,
    name,
    url: `http://${name}:7300`,
    publicKey: 'pk',
    keyId: '0011223344556677',
    certificate: null,
    state: 'Connected',
    lastSeenAt: null,
  });
  return uuid;
}

export async function addVm(
  store: Pick<StoreWrites, 'addVm'>,
  name: string,
  hostUuid: string | null,
  secureBoot = false,
): Promise<string> {
  const uuid = `vm-${name}`;
  await store.addVm({ uuid, name, hostUuid, bootMode: 'UEFI', secureBoot });
  return uuid;
}

export const fileRow = (vmUuid: string, hostUuid: string, type: FileType, path: string, digit = 'a'): VmHostFile => ({
  uuid: `file-${vmUuid}-${hostUuid}-${type}`,
  vmUuid,
  hostUuid,
  type,
  path,
  kind: 'file',
  sha256: sha(digit),
  size: 3,
  lastSyncAt: 1,
});

export const pendingRow = (
  hostUuid: string,
  path: string,
  nextAttemptAt: number,
  tpmUuid: string | null = null,
): NewPendingDeletion => ({
  hostUuid,
  type: 'TpmState',
  path,
  vmUuid: 'vm-gone',
  tpmUuid,
  nextAttemptAt,
  lastError: null,
});

/** A backup of one file state whose content is stored as given (identity). */
export const fileBackup = (uuid: string, vmUuid: string, type: FileType, content: Uint8Array, digit: string) => ({
  uuid,
  vmUuid,
  type,
  source: 'sync' as const,
  hostUuid: null,
  kind: 'file' as const,
  sha256: sha(digit),
  size: content.byteLength,
  entries: [
    {
      path: '',
      content: Buffer.from(content),
      encoding: 'identity' as const,
      sha256: sha(digit),
      size: content.byteLength,
    },
  ],
});
