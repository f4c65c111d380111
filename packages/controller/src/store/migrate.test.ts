// Migrations apply once, in order, each whole; a database newer than the code is refused.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import sqlite3 from 'sqlite3';
import { openConnection, type Connection } from './connection.js';
import { openPgConnection } from './pg-connection.js';
import { isStoreError } from './errors.js';
import { migrate, MIGRATIONS_TABLE } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { PG_MIGRATIONS } from './migrations/pg/index.js';
import { createPgStore } from './pg-store.js';
import { createSqliteStore } from './sqlite-store.js';
import { addHost, onEngine, openTempStore, PG_TEST_URL, tempDir, tempSchema } from './test-support.js';

/** Runs one statement on its own connection, outside the store, and closes it. */
function rawAll(path: string, sql: string): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path);
    db.all(sql, (error: Error | null, rows: unknown[]) => {
      db.close((closeError) => {
        const failure = error ?? closeError;
        if (failure) reject(failure);
        else resolve(rows);
      });
    });
  });
}

const tables = async (path: string): Promise<string[]> =>
  (
    await rawAll(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
  ).map((row) => (row as { name: string }).name);

const versions = async (path: string): Promise<unknown[]> =>
  rawAll(path, 'SELECT version, name, applied_at FROM schema_migrations ORDER BY version');

async function connect(t: { after: (fn: () => Promise<void>) => void }, path: string): Promise<Connection> {
  const connection = await openConnection(path, { busyTimeoutMs: 1000, synchronous: 'FULL' });
  t.after(() => connection.close());
  return connection;
}

describe('migrations', () => {
  it('creates every table at first open and records each version once', async (t) => {
    const { path } = await openTempStore(t, { now: () => 42 });
    assert.deepEqual(await tables(path), [
      'controllers',
      'hosts',
      'key_bindings',
      'leases',
      'operations',
      'owned_paths',
      'pending_deletions',
      'schema_migrations',
      'settings',
      'tpms',
      'vm_generation_counters',
      'vm_host_backup_entries',
      'vm_host_backup_files',
      'vm_host_files',
      'vms',
    ]);
    assert.deepEqual(await versions(path), [
      { version: 1, name: 'initial', applied_at: 42 },
      { version: 2, name: 'real-hosts', applied_at: 42 },
      { version: 3, name: 'pinned-certificates', applied_at: 42 },
      { version: 4, name: 'controllers', applied_at: 42 },
      { version: 5, name: 'generations', applied_at: 42 },
      { version: 6, name: 'settings', applied_at: 42 },
      { version: 7, name: 'pending-vm-name', applied_at: 42 },
    ]);
  });

  it('brings a version-1 database to version 2 with its data: files, backups as entries, owned paths', async (t) => {
    const path = join(await tempDir(t), 'v1.db');
    const connection = await connect(t, path);
    assert.equal(await migrate(connection, MIGRATIONS.slice(0, 1), () => 1), 1);
    const sha = (c: string): string => c.repeat(64);
    await connection.transaction(async (sql) => {
      await sql.exec(`INSERT INTO hosts VALUES ('h1', 'h1', 'http://h1', 'pk', '0011223344556677', 'Connected', NULL, 1);
        INSERT INTO vms VALUES ('vm1', 'vm1', 'h1', 'UEFI', 0, 1);
        INSERT INTO vm_host_files VALUES ('f1', 'vm1', 'h1', 'NvRam', '/nvram/vm1_VARS.fd', '${sha('a')}', 3, 5);
        INSERT INTO vm_host_backup_files VALUES ('b1', 'vm1', 'NvRam', X'010203', '${sha('a')}', 6);
        INSERT INTO pending_deletions (host_uuid, type, path, vm_uuid, tpm_uuid, next_attempt_at, created_at)
          VALUES ('h1', 'TpmState', '/tpm/old', 'vm0', NULL, 0, 7);`);
    });
    assert.equal(await migrate(connection, MIGRATIONS, () => 2), MIGRATIONS.length);
    await connection.close();
    const store = await createSqliteStore(path);
    t.after(() => store.close());
    const [file] = await store.listFilesByVm('vm1');
    assert.equal(file?.kind, 'file', 'an existing row is a file state');
    const [backup] = await store.listBackupsByVm('vm1');
    assert.deepEqual(backup, {
      uuid: 'b1',
      vmUuid: 'vm1',
      type: 'NvRam',
      generation: 1,
      kind: 'file',
      sha256: sha('a'),
      size: 3,
      source: 'migrated',
      hostUuid: null,
      capturedAt: 6,
    });
    assert.deepEqual(
      (await store.listBackupEntries('b1')).map((e) => ({ ...e, content: [...e.content] })),
      [{ path: '', content: [1, 2, 3], encoding: 'identity', sha256: sha('a'), size: 3 }],
    );
    assert.deepEqual(
      (await store.listOwnedPaths('h1')).map((o) => [o.path, o.vmUuid]),
      [
        ['/nvram/vm1_VARS.fd', 'vm1'],
        ['/tpm/old', 'vm0'],
      ],
      "rows and pending deletions are hostfiles' own",
    );
    assert.equal((await store.listPendingDeletions())[0]?.expectSha256, null);
  });

  it('brings a version-2 database to version 3: its hosts keep their pin, with no certificate (plain HTTP)', async (t) => {
    const path = join(await tempDir(t), 'v2.db');
    const connection = await connect(t, path);
    assert.equal(await migrate(connection, MIGRATIONS.slice(0, 2), () => 1), 2);
    await connection.transaction(async (sql) => {
      await sql.exec(
        `INSERT INTO hosts VALUES ('h1', 'h1', 'http://h1:7441', 'pk', '0011223344556677', 'Connected', 5, 1);`,
      );
    });
    const reported: { from: number; to: number }[] = [];
    assert.equal(
      await migrate(
        connection,
        MIGRATIONS.slice(0, 3),
        () => 2,
        MIGRATIONS_TABLE.sqlite,
        (change) => {
          reported.push(change);
        },
      ),
      3,
    );
    assert.deepEqual(reported, [{ from: 2, to: 3 }], 'what `init` prints: brought from version 2 to 3');
    await connection.close();
    const store = await createSqliteStore(path);
    t.after(() => store.close());
    assert.deepEqual(await store.getHost('h1'), {
      uuid: 'h1',
      name: 'h1',
      url: 'http://h1:7441',
      publicKey: 'pk',
      keyId: '0011223344556677',
      certificate: null,
      state: 'Connected',
      lastSeenAt: 5,
      createdAt: 1,
    });
  });

  it('reopens cleanly: nothing applied twice, data kept', async (t) => {
    const { store, path } = await openTempStore(t, { now: () => 42 });
    await addHost(store, 'kept');
    await store.close();
    const again = await createSqliteStore(path, { now: () => 99 });
    t.after(() => again.close());
    assert.equal((await again.getHostByName('kept'))?.uuid, 'host-kept');
    assert.deepEqual(
      (await versions(path)).map((v) => (v as { applied_at: number }).applied_at),
      MIGRATIONS.map(() => 42),
    );
  });

  it('refuses a database whose schema is newer than the code, with a clear error', async (t) => {
    const { store, path } = await openTempStore(t);
    await store.close();
    await rawAll(path, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
    await assert.rejects(
      createSqliteStore(path),
      (error) =>
        isStoreError(error, 'schema_too_new') &&
        new RegExp(`version 99.*knows \\(${MIGRATIONS.length}\\)`).test(error.message),
    );
  });

  it('applies only the missing ones, in order, on an older database', async (t) => {
    const path = join(await tempDir(t), 'old.db');
    const connection = await connect(t, path);
    const next = { version: MIGRATIONS.length + 1, name: 'next', sql: 'CREATE TABLE second (x INTEGER) STRICT;' };
    assert.equal(await migrate(connection, MIGRATIONS.slice(0, 1), () => 1), 1);
    assert.equal(await migrate(connection, [...MIGRATIONS, next], () => 2), MIGRATIONS.length + 1);
    assert.deepEqual(
      (await versions(path)).map((row) => (row as { version: number }).version),
      [...MIGRATIONS, next].map((m) => m.version),
    );
    assert.ok((await tables(path)).includes('second'));
  });

  it('rolls a failing migration back whole and leaves the version where it was', async (t) => {
    const path = join(await tempDir(t), 'failing.db');
    const connection = await connect(t, path);
    const broken = {
      version: MIGRATIONS.length + 1,
      name: 'broken',
      sql: 'CREATE TABLE half (x INTEGER) STRICT; INSERT INTO nowhere VALUES (1);',
    };
    await assert.rejects(
      migrate(connection, [...MIGRATIONS, broken], () => 1),
      (error) => isStoreError(error, 'io'),
    );
    assert.deepEqual(
      (await versions(path)).map((row) => (row as { version: number }).version),
      MIGRATIONS.map((m) => m.version),
    );
    assert.ok(!(await tables(path)).includes('half'));
  });

  it('refuses a list of migrations with a gap before touching the database', async (t) => {
    const path = join(await tempDir(t), 'gap.db');
    const connection = await connect(t, path);
    const gap = { version: MIGRATIONS.length + 2, name: 'gap', sql: 'SELECT 1;' };
    await assert.rejects(
      migrate(connection, [...MIGRATIONS, gap], () => 1),
      new RegExp(`has version ${MIGRATIONS.length + 2}, expected ${MIGRATIONS.length + 1}`),
    );
    assert.deepEqual(await tables(path), []);
  });
});

describe('migrations (postgres)', onEngine('postgres'), () => {
  const open = (schema: string, now = () => 42) => createPgStore(PG_TEST_URL, { schema, now });

  it('brings a fresh schema to the newest version, even from two controllers opening it at once', async (t) => {
    const schema = tempSchema(t);
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    t.after(() => Promise.all([a.close(), b.close()]));
    await addHost(a, 'seen-by-both');
    assert.equal((await b.getHostByName('seen-by-both'))?.uuid, 'host-seen-by-both');
    const { raw } = await rawPg(t, schema);
    assert.deepEqual(
      await raw('SELECT version, name, applied_at::int AS applied_at FROM schema_migrations ORDER BY version'),
      PG_MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: 42 })),
    );
  });

  it('refuses a schema newer than the code, with a clear error', async (t) => {
    const schema = tempSchema(t);
    await (await open(schema)).close();
    const { raw } = await rawPg(t, schema);
    await raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
    await assert.rejects(
      open(schema),
      (error) =>
        isStoreError(error, 'schema_too_new') &&
        new RegExp(`version 99.*knows \\(${PG_MIGRATIONS.length}\\)`).test(error.message),
    );
  });

  it('refuses a schema name that is not a plain identifier before connecting', async () => {
    await assert.rejects(open('x; DROP TABLE hosts'), /schema must match/);
  });
});

/** Statements on the schema, past the store. */
async function rawPg(t: TestContext, schema: string): Promise<{ raw: (sql: string) => Promise<unknown[]> }> {
  const client = new pg.Client({ connectionString: PG_TEST_URL, options: `-c search_path=${schema}` });
  await client.connect();
  t.after(() => client.end());
  return { raw: async (sql) => (await client.query(sql)).rows as unknown[] };
}

describe('migration 4 (controllers)', () => {
  it('keeps running operations of a version-3 database as orphans any controller may resume', async (t) => {
    const path = join(await tempDir(t), 'v3.db');
    const connection = await connect(t, path);
    assert.equal(await migrate(connection, MIGRATIONS.slice(0, 3), () => 1), 3);
    await connection.transaction(async (sql) => {
      await sql.exec(
        `INSERT INTO operations VALUES ('op1', 'tpm.remove', 's', 'collect', 'running', '{}', NULL, 1, 1);`,
      );
    });
    assert.equal(await migrate(connection, MIGRATIONS, () => 2), MIGRATIONS.length);
    await connection.close();
    const store = await createSqliteStore(path);
    t.after(() => store.close());
    await store.registerController({ id: 'c1', host: 'h', pid: 1, startedAt: 1, expiresAt: 1000 });
    assert.deepEqual(
      (await store.claimOrphanOperations('c1', 10, 0)).map((o) => o.id),
      ['op1'],
      'an operation of no controller is an orphan',
    );
  });
});

/** A version-4 database's one backup of (vm1, NvRam), with one entry: what migration 5 turns into generation 1. */
const V4_BACKUP = (content: string) => `
  INSERT INTO hosts (uuid, name, url, public_key, key_id, state, last_seen_at, created_at)
    VALUES ('h1', 'h1', 'http://h1', 'pk', '0011223344556677', 'Connected', NULL, 1);
  INSERT INTO vms (uuid, name, host_uuid, boot_mode, secure_boot, created_at) VALUES ('vm1', 'vm1', 'h1', 'UEFI', 0, 1);
  INSERT INTO vm_host_backup_files (uuid, vm_uuid, type, kind, sha256, size, updated_at)
    VALUES ('b1', 'vm1', 'NvRam', 'file', '${'a'.repeat(64)}', 3, 6);
  INSERT INTO vm_host_backup_entries (backup_uuid, path, content, encoding, sha256, size)
    VALUES ('b1', '', ${content}, 'identity', '${'a'.repeat(64)}', 3);`;

/** After migration 5: b1 is generation 1 of its (vm, type), and the next capture is generation 2. */
async function assertMigratedGenerations(store: Awaited<ReturnType<typeof createSqliteStore>>): Promise<void> {
  assert.deepEqual(
    (await store.listGenerations('vm1')).map((b) => [b.uuid, b.generation, b.source, b.hostUuid, b.capturedAt]),
    [['b1', 1, 'migrated', null, 6]],
  );
  assert.deepEqual(
    (await store.listBackupEntries('b1')).map((e) => [...e.content]),
    [[1, 2, 3]],
  );
  assert.equal((await store.getVm('vm1'))?.hostUuid, 'h1');
  const next = await store.recordGeneration({
    uuid: 'b2',
    vmUuid: 'vm1',
    type: 'NvRam',
    kind: 'file',
    sha256: 'b'.repeat(64),
    size: 1,
    source: 'sync',
    hostUuid: 'h1',
    entries: [{ path: '', content: Buffer.of(9), encoding: 'identity', sha256: 'c'.repeat(64), size: 1 }],
  });
  assert.deepEqual([next.created, next.backup.generation], [true, 2]);
}

describe('migration 5 (generations)', () => {
  it("makes a version-4 database's backup generation 1, its entries kept, numbering on from it", async (t) => {
    const path = join(await tempDir(t), 'v4.db');
    const connection = await connect(t, path);
    assert.equal(await migrate(connection, MIGRATIONS.slice(0, 4), () => 1), 4);
    await connection.transaction((sql) => sql.exec(V4_BACKUP("X'010203'")));
    assert.equal(await migrate(connection, MIGRATIONS, () => 2), MIGRATIONS.length);
    await connection.close();
    const store = await createSqliteStore(path);
    t.after(() => store.close());
    await assertMigratedGenerations(store);
  });
});

describe('migration 3 (generations, postgres)', onEngine('postgres'), () => {
  it("makes a version-2 schema's backup generation 1, its entries kept, numbering on from it", async (t) => {
    const schema = tempSchema(t);
    const connection = openPgConnection({ url: PG_TEST_URL, schema });
    await connection.transaction((sql) => sql.exec(`CREATE SCHEMA ${schema}`));
    assert.equal(await migrate(connection, PG_MIGRATIONS.slice(0, 2), () => 1, MIGRATIONS_TABLE.postgres), 2);
    await connection.transaction((sql) => sql.exec(V4_BACKUP(`'\\x010203'::bytea`)));
    await connection.close();
    const store = await createPgStore(PG_TEST_URL, { schema });
    t.after(() => store.close());
    await assertMigratedGenerations(store);
  });
});

/** A version-5 (PostgreSQL: 3) database whose vm1 holds `counts[i]` generations of NvRam (i = 0) and TpmState. */
const V5_GENERATIONS = (counts: readonly number[]) => {
  const rows = counts.flatMap((count, i) =>
    Array.from(
      { length: count },
      (_, g) => `('${i === 0 ? 'n' : 't'}${g + 1}', 'vm1', '${i === 0 ? 'NvRam' : 'TpmState'}', ${g + 1}, 'file',
        '${'a'.repeat(64)}', 0, 'sync', NULL, ${g + 1})`,
    ),
  );
  const vm = `INSERT INTO vms (uuid, name, host_uuid, boot_mode, secure_boot, created_at)
    VALUES ('vm1', 'vm1', NULL, 'UEFI', 0, 1);`;
  if (rows.length === 0) return vm;
  return `${vm}
  INSERT INTO vm_host_backup_files (uuid, vm_uuid, type, generation, kind, sha256, size, source, host_uuid, captured_at)
    VALUES ${rows.join(', ')};`;
};

/** Migrates a database holding those generations to the newest version; answers the database's keep. */
async function keepAfterMigration(t: TestContext, engine: 'sqlite' | 'postgres', counts: number[]): Promise<number> {
  const store = await migratedWith(t, engine, counts);
  const total = counts.reduce((sum, count) => sum + count, 0);
  assert.equal((await store.listGenerations('vm1')).length, total, 'none dropped');
  return store.getKeepGenerations();
}

async function migratedWith(t: TestContext, engine: 'sqlite' | 'postgres', counts: number[]) {
  return migratedFrom(t, engine, { sqlite: 5, postgres: 3 }, V5_GENERATIONS(counts));
}

/** A database of that version on that engine, seeded with `seed`, then opened as a store (migrated to the newest). */
async function migratedFrom(
  t: TestContext,
  engine: 'sqlite' | 'postgres',
  version: { readonly sqlite: number; readonly postgres: number },
  seed: string,
) {
  if (engine === 'sqlite') {
    const path = join(await tempDir(t), `v${String(version.sqlite)}.db`);
    const connection = await connect(t, path);
    assert.equal(await migrate(connection, MIGRATIONS.slice(0, version.sqlite), () => 1), version.sqlite);
    await connection.transaction((sql) => sql.exec(seed));
    await connection.close();
    const store = await createSqliteStore(path);
    t.after(() => store.close());
    return store;
  }
  const schema = tempSchema(t);
  const connection = openPgConnection({ url: PG_TEST_URL, schema });
  await connection.transaction((sql) => sql.exec(`CREATE SCHEMA ${schema}`));
  const migrated = await migrate(
    connection,
    PG_MIGRATIONS.slice(0, version.postgres),
    () => 1,
    MIGRATIONS_TABLE.postgres,
  );
  assert.equal(migrated, version.postgres);
  await connection.transaction((sql) => sql.exec(seed));
  await connection.close();
  const store = await createPgStore(PG_TEST_URL, { schema });
  t.after(() => store.close());
  return store;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`migration ${engine === 'sqlite' ? 6 : 4} (settings, ${engine})`, onEngine(engine), () => {
    it('keeps as many generations as the most a (vm, type) holds, when more than the default', async (t) => {
      // A database a `serve --keep-generations 30` kept 8 of: its next capture must not drop 3 of them.
      assert.equal(await keepAfterMigration(t, engine, [8, 2]), 8);
    });

    it('leaves the default when no (vm, type) holds more than it', async (t) => {
      assert.equal(await keepAfterMigration(t, engine, [5, 3]), 5);
      assert.equal(await keepAfterMigration(t, engine, []), 5);
    });
  });
}

/** A host, a VM, and two pending deletions: one of that VM, one of a VM no row names (an orphan reconcile found). */
const PENDING_BEFORE_NAMES = `
  INSERT INTO hosts (uuid, name, url, public_key, key_id, state, last_seen_at, created_at)
    VALUES ('h1', 'h1', 'http://h1', 'pk', '0011223344556677', 'Connected', NULL, 1);
  INSERT INTO vms (uuid, name, host_uuid, boot_mode, secure_boot, created_at) VALUES ('vm1', 'vm1', 'h1', 'UEFI', 0, 1);
  INSERT INTO pending_deletions (host_uuid, type, path, vm_uuid, tpm_uuid, attempts, next_attempt_at, last_error,
      created_at, expect_sha256)
    VALUES ('h1', 'NvRam', '/n/vm1_VARS.fd', 'vm1', NULL, 0, 1, NULL, 1, NULL),
           ('h1', 'NvRam', '/n/other_VARS.fd', '00000000-0000-0000-0000-000000000000', NULL, 0, 1, NULL, 1, NULL);`;

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`migration ${engine === 'sqlite' ? 7 : 5} (pending-vm-name, ${engine})`, onEngine(engine), () => {
    it("names a pending deletion's VM where its row exists; a new deletion keeps its VM's name past the VM", async (t) => {
      const store = await migratedFrom(t, engine, { sqlite: 6, postgres: 4 }, PENDING_BEFORE_NAMES);
      assert.deepEqual((await store.listPendingDeletions()).map((p) => [p.path, p.vmName]).sort(), [
        ['/n/other_VARS.fd', null],
        ['/n/vm1_VARS.fd', 'vm1'],
      ]);
      await store.transaction(async (tx) => {
        await tx.addPendingDeletions([
          {
            hostUuid: 'h1',
            type: 'TpmState',
            path: '/t/vm1',
            vmUuid: 'vm1',
            tpmUuid: null,
            nextAttemptAt: 1,
            lastError: null,
          },
        ]);
        await tx.removeVm('vm1');
      });
      assert.deepEqual(
        (await store.listPendingDeletions({ vmUuid: 'vm1' })).map((p) => [p.path, p.vmName]),
        [
          ['/n/vm1_VARS.fd', 'vm1'],
          ['/t/vm1', 'vm1'],
        ],
        'the VM gone, its name kept',
      );
    });
  });
}
