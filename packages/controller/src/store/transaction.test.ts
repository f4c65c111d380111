// The store keeps every transaction whole on its one connection, rolls back on a throw, and waits for locks.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { isStoreError } from './errors.js';
import { createSqliteStore } from './sqlite-store.js';
import pg from 'pg';
import { createPgStore } from './pg-store.js';
import { addHost, ENGINES, onEngine, openStore, openTempStore, PG_TEST_URL, tempSchema } from './test-support.js';
import type { Host } from './types.js';

/**
 * A promise and the function that resolves it, to hold a transaction open until the test lets it go.
 * It also opens when the test is aborted (timed out), so a failing test cannot leave the store's queue stuck.
 */
function gate(signal: AbortSignal): { wait: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const wait = new Promise<void>((resolve) => (open = resolve));
  signal.addEventListener('abort', open, { once: true });
  return { wait, open };
}

/**
 * Has the server cut every connection of the store on `schema`; answers how many. psql runs as a process of its own
 * and blocks this one meanwhile, so the store's pool cannot have heard of the cut before its next statement is sent.
 */
function cutConnections(schema: string): string {
  const sql = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'hostfiles:${schema}'`;
  return execFileSync('psql', ['-X', '-q', '-t', '-A', '-d', PG_TEST_URL, '-c', sql], { encoding: 'utf8' }).trim();
}

/** A bound on tests that wait on another party: a missing feature fails them instead of hanging the run. */
const HANG_MS = 10_000;

for (const engine of ENGINES)
  describe(`transactions (${engine})`, onEngine(engine), () => {
    it('serializes concurrent read-modify-write transactions: no update is lost', async (t) => {
      const store = await openStore(t, engine);
      await store.startOperation({ id: 'counter', kind: 'vm.sync', subject: '-', step: 'count', input: null });
      const N = 40;
      await Promise.all(
        Array.from({ length: N }, () =>
          store.transaction(async (tx) => {
            const before = (await tx.getOperation('counter'))?.report;
            const n = typeof before === 'number' ? before : 0;
            await nextTurn(); // give every other caller the chance to interleave, were they not queued
            await tx.setOperationStep('counter', 'count', n + 1);
          }),
        ),
      );
      assert.equal((await store.getOperation('counter'))?.report, N);
    });
    it('rolls back a transaction that throws, and rethrows its error', async (t) => {
      const store = await openStore(t, engine);
      const boom = new Error('boom');
      const attempt = store.transaction(async (tx) => {
        await tx.addHost({
          uuid: 'h',
          name: 'h',
          url: 'u',
          publicKey: 'p',
          keyId: 'k',
          certificate: null,
          state: 'Connected',
          lastSeenAt: 1,
        });
        assert.notEqual(await tx.getHost('h'), null);
        throw boom;
      });
      await assert.rejects(attempt, (error) => error === boom);
      assert.equal(await store.getHost('h'), null);
      await addHost(store, 'h'); // the connection is usable again
    });
    it(
      'refuses the store itself inside its own transaction instead of waiting forever',
      { timeout: HANG_MS },
      async (t) => {
        const store = await openStore(t, engine);
        await store.transaction(async (tx) => {
          await assert.rejects(store.listHosts(), /inside one of its own transactions/);
          await assert.rejects(
            store.transaction(() => Promise.resolve()),
            /inside one of its own transactions/,
          );
          await addHost(tx, 'still-fine');
        });
        assert.notEqual(await store.getHostByName('still-fine'), null);
      },
    );
    it('lets work started inside a transaction use the store once the transaction is over', async (t) => {
      const store = await openStore(t, engine);
      let later: Promise<Host[]> = Promise.resolve([]);
      const ended = gate(t.signal);
      await store.transaction(async (tx) => {
        await addHost(tx, 'h1');
        later = ended.wait.then(() => store.listHosts()); // e.g. a retry kicked off from inside a flow
      });
      ended.open();
      assert.deepEqual(
        (await later).map((h) => h.name),
        ['h1'],
      );
    });
    it('refuses a tx used after its transaction ended', async (t) => {
      const store = await openStore(t, engine);
      const kept = await store.transaction((tx) => Promise.resolve(tx));
      await assert.rejects(kept.listHosts(), /after its transaction or job ended/);
    });
  });

describe('transactions (sqlite)', () => {
  it(
    'queues a read issued outside behind a running transaction: it never sees uncommitted rows',
    { timeout: HANG_MS },
    async (t) => {
      const { store } = await openTempStore(t);
      const inserted = gate(t.signal);
      const release = gate(t.signal);
      const order: string[] = [];
      const tx = store.transaction(async (tx) => {
        await addHost(tx, 'uncommitted');
        inserted.open();
        await release.wait;
        order.push('tx ends');
        throw new Error('roll back');
      });
      await inserted.wait;
      const read = store.getHostByName('uncommitted').then((host) => {
        order.push('read');
        return host;
      });
      await nextTurn();
      release.open();
      await assert.rejects(tx, /roll back/);
      assert.equal(await read, null);
      assert.deepEqual(order, ['tx ends', 'read']);
    },
  );
  it('waits up to busy_timeout for another connection holding the write lock', { timeout: HANG_MS }, async (t) => {
    const { store: first, path } = await openTempStore(t);
    const held = gate(t.signal);
    const release = gate(t.signal);
    let armed = false;
    // The first connection lets go only once the second's BEGIN IMMEDIATE has started, against the held lock.
    const second = await createSqliteStore(path, {
      onTrace: (sql) => {
        if (armed && sql === 'BEGIN IMMEDIATE') release.open();
      },
    });
    t.after(() => second.close());
    const holder = first.transaction(async (tx) => {
      await addHost(tx, 'first');
      held.open();
      await release.wait;
    });
    await held.wait;
    armed = true;
    await second.transaction((tx) => addHost(tx, 'second'));
    await holder;
    assert.deepEqual(
      (await second.listHosts()).map((h) => h.name),
      ['first', 'second'],
    );
  });
  it(
    'fails with io when another connection holds the lock and there is no busy timeout',
    { timeout: HANG_MS },
    async (t) => {
      const { store: first, path } = await openTempStore(t);
      const second = await createSqliteStore(path, { busyTimeoutMs: 0 });
      t.after(() => second.close());
      const held = gate(t.signal);
      const release = gate(t.signal);
      const holder = first.transaction(async () => {
        held.open();
        await release.wait;
      });
      await held.wait;
      await assert.rejects(
        second.transaction((tx) => addHost(tx, 'second')),
        (error) => isStoreError(error, 'io') && /locked|busy/i.test(error.message),
      );
      release.open();
      await holder;
      await second.transaction((tx) => addHost(tx, 'second')); // free again once the lock is gone
    },
  );
});

/** Waits until `count` sessions of the test database wait on an advisory lock (the write lock), or the test ends. */
async function advisoryWaiters(signal: AbortSignal, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: PG_TEST_URL });
  await client.connect();
  try {
    for (;;) {
      signal.throwIfAborted();
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
      );
      if ((rows[0]?.n ?? 0) >= count) return;
      await nextTurn();
    }
  } finally {
    await client.end();
  }
}

describe('transactions (postgres)', onEngine('postgres'), () => {
  it(
    'serializes the write transactions of two stores (two controllers) on one database',
    { timeout: HANG_MS },
    async (t) => {
      const schema = tempSchema(t);
      const first = await createPgStore(PG_TEST_URL, { schema });
      t.after(() => first.close());
      const second = await createPgStore(PG_TEST_URL, { schema });
      t.after(() => second.close());
      await first.startOperation({ id: 'counter', kind: 'vm.sync', subject: '-', step: 'count', input: null });

      const held = gate(t.signal);
      const release = gate(t.signal);
      const order: string[] = [];
      const holder = first.transaction(async (tx) => {
        await tx.setOperationStep('counter', 'count', 1);
        held.open();
        await release.wait;
        order.push('first commits');
      });
      await held.wait;
      const waiter = second.transaction(async (tx) => {
        order.push('second runs');
        const n = (await tx.getOperation('counter'))?.report;
        await tx.setOperationStep('counter', 'count', typeof n === 'number' ? n + 1 : -1);
      });
      // The second store's transaction is parked on the write lock, not running beside the first.
      await advisoryWaiters(t.signal, 1);
      assert.deepEqual(order, []);
      release.open();
      await Promise.all([holder, waiter]);
      assert.deepEqual(order, ['first commits', 'second runs']);
      assert.equal((await second.getOperation('counter'))?.report, 2, 'the second saw the first one committed');
    },
  );

  it('never shows a read outside a transaction the rows of one not yet committed', { timeout: HANG_MS }, async (t) => {
    const store = await openStore(t, 'postgres');
    const inserted = gate(t.signal);
    const release = gate(t.signal);
    const tx = store.transaction(async (tx) => {
      await addHost(tx, 'uncommitted');
      inserted.open();
      await release.wait;
    });
    await inserted.wait;
    assert.equal(await store.getHostByName('uncommitted'), null);
    release.open();
    await tx;
    assert.notEqual(await store.getHostByName('uncommitted'), null);
  });

  it('a connection the server dropped while idle in the pool fails nothing: a read and a write go on', async (t) => {
    const schema = tempSchema(t);
    const store = await createPgStore(PG_TEST_URL, { schema, poolSize: 1 });
    t.after(() => store.close());
    const hostUuid = await addHost(store, 'h0');
    // The pool's one connection, idle now, is cut by the server.
    const cut = (): string => cutConnections(schema);
    assert.equal(cut(), '1', 'the store had its connection');
    assert.equal((await store.getHost(hostUuid))?.name, 'h0', 'a read on the dropped connection is made again');
    assert.equal(cut(), '1');
    await addHost(store, 'h1'); // a write transaction: its BEGIN failed, made again on a fresh connection
    assert.deepEqual((await store.listHosts()).map((h) => h.name).sort(), ['h0', 'h1']);
  });

  it('every idle connection of the pool dropped at once: still no statement fails', async (t) => {
    const schema = tempSchema(t);
    const store = await createPgStore(PG_TEST_URL, { schema, poolSize: 3 });
    t.after(() => store.close());
    const hostUuid = await addHost(store, 'h0');
    // Three reads at once: the pool opens its three connections, idle again after.
    await Promise.all([store.listHosts(), store.listHosts(), store.listHosts()]);
    assert.equal(cutConnections(schema), '3');
    assert.equal((await store.getHost(hostUuid))?.name, 'h0');
  });

  it('fails with io when the server cannot be reached, and names it', async () => {
    await assert.rejects(
      createPgStore('postgres://postgres@127.0.0.1:1/test', { connectTimeoutMs: 2000 }),
      (error) => isStoreError(error, 'io') && /cannot connect to PostgreSQL/.test(error.message),
    );
  });
});
