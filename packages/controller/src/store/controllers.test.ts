// Several controllers on one database, at the store: leases (shared, exclusive, all or nothing), a dead controller's
// grace, orphan operations claimed once, and the fence that stops a controller the others took for dead.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError } from './errors.js';
import { createPgStore } from './pg-store.js';
import { addHost, ENGINES, onEngine, openStore, PG_TEST_URL, tempSchema } from './test-support.js';
import type { LeaseKey, Store } from './types.js';

const ex = (key: string): LeaseKey => ({ key, mode: 'exclusive' });
const sh = (key: string): LeaseKey => ({ key, mode: 'shared' });

async function register(store: Store, id: string, expiresAt: number): Promise<void> {
  await store.registerController({ id, host: 'test', pid: 1, startedAt: 0, expiresAt });
}

for (const engine of ENGINES)
  describe(`controllers and leases (${engine})`, onEngine(engine), () => {
    it('grants keys all or nothing: exclusive against anything, shared beside shared', async (t) => {
      const store = await openStore(t, engine);
      await register(store, 'a', 1000);
      await register(store, 'b', 1000);
      assert.equal(await store.tryAcquireLeases('a1', 'a', [ex('vm:1'), sh('host:1')], 10, 0), true);
      assert.equal(await store.tryAcquireLeases('b1', 'b', [sh('host:1')], 10, 0), true, 'shared beside shared');
      assert.equal(await store.tryAcquireLeases('b2', 'b', [ex('host:1')], 10, 0), false, 'exclusive against shared');
      assert.equal(await store.tryAcquireLeases('b3', 'b', [ex('vm:2'), sh('vm:1')], 10, 0), false);
      assert.deepEqual(
        (await store.listLeaseHolders(['vm:2'])).map((h) => h.key),
        [],
        'a refused claim took nothing, not even its free keys',
      );
      assert.equal(
        await store.tryAcquireLeases('a2', 'a', [ex('vm:1')], 10, 0),
        true,
        "its own controller's flows are ordered in-process",
      );
      assert.equal(await store.releaseLeases('a1'), 2);
      assert.equal(await store.releaseLeases('a2'), 1);
      assert.equal(await store.tryAcquireLeases('b3', 'b', [ex('vm:2'), sh('vm:1')], 10, 0), true);
    });

    it("keeps a dead controller's leases through its grace, then drops them; it is never revived", async (t) => {
      const store = await openStore(t, engine);
      await register(store, 'dead', 100);
      await register(store, 'alive', 10_000);
      assert.equal(await store.tryAcquireLeases('d1', 'dead', [ex('vm:1')], 50, 0), true);
      assert.equal(await store.tryAcquireLeases('x', 'alive', [ex('vm:1')], 150, 100), false, 'within its grace');
      assert.deepEqual(
        (await store.listLiveControllers(150, 100)).map((c) => c.id),
        ['alive', 'dead'],
      );
      assert.equal(await store.tryAcquireLeases('x', 'alive', [ex('vm:1')], 201, 100), true, 'past its grace');
      assert.deepEqual(
        (await store.listLiveControllers(201, 100)).map((c) => c.id),
        ['alive'],
      );
      assert.equal(await store.renewController('dead', 300, 10_000), false, 'an expired controller stays dead');
      assert.equal(await store.renewController('alive', 300, 20_000), true);
    });

    it('hands each orphan operation to exactly one controller, and only once its runner is dead', async (t) => {
      const store = await openStore(t, engine, { now: () => 5 });
      await register(store, 'a', 100);
      await register(store, 'b', 10_000);
      await register(store, 'c', 10_000);
      store.actAs('a');
      await store.startOperation({ id: 'op-a', kind: 'vm.sync', subject: 's', step: 'one', input: {} });
      store.actAs(null);
      await store.startOperation({ id: 'op-none', kind: 'vm.sync', subject: 's', step: 'one', input: {} });
      store.actAs('b');
      await store.startOperation({ id: 'op-b', kind: 'vm.sync', subject: 's', step: 'one', input: {} });
      store.actAs(null);
      assert.deepEqual(
        (await store.claimOrphanOperations('c', 50, 0)).map((o) => o.id),
        ['op-none'],
      );
      assert.deepEqual(await store.claimOrphanOperations('b', 50, 0), [], 'a is alive: its operation is its own');
      assert.deepEqual(await store.claimOrphanOperations('b', 150, 100), [], 'a is within its grace');
      assert.deepEqual(
        (await store.claimOrphanOperations('b', 201, 100)).map((o) => o.id),
        ['op-a'],
      );
      assert.deepEqual(await store.claimOrphanOperations('c', 202, 100), [], 'already claimed');
    });

    it('refuses every write of a controller once it has expired (the fence), and lets it retire', async (t) => {
      let now = 10;
      const store = await openStore(t, engine, { now: () => now });
      await register(store, 'me', 100);
      store.actAs('me');
      await addHost(store, 'h1');
      now = 100;
      const fenced = (error: unknown) => isStoreError(error, 'conflict') && /has expired/.test(error.message);
      await assert.rejects(addHost(store, 'h2'), fenced);
      await assert.rejects(
        store.transaction((tx) => addHost(tx, 'h3')),
        fenced,
      );
      await assert.rejects(store.tryAcquireLeases('h', 'me', [ex('vm:1')], 100, 0), fenced);
      assert.deepEqual(
        (await store.listHosts()).map((h) => h.name),
        ['h1'],
      );
      await store.retireController('me');
      store.actAs(null);
      assert.deepEqual(await store.listLiveControllers(0), []);
    });
  });

describe('heartbeats beside a long transaction (postgres)', onEngine('postgres'), () => {
  it(
    'renews a controller while another holds the write lock: a busy fleet never expires its live controllers',
    { timeout: 10_000 },
    async (t) => {
      const schema = tempSchema(t);
      const busy = await createPgStore(PG_TEST_URL, { schema });
      t.after(() => busy.close());
      const beating = await createPgStore(PG_TEST_URL, { schema });
      t.after(() => beating.close());
      await register(beating, 'b', 1000);
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      let inside = (): void => undefined;
      const entered = new Promise<void>((resolve) => (inside = resolve));
      const holder = busy.transaction(async (tx) => {
        await addHost(tx, 'h1');
        inside();
        await held;
      });
      await entered;
      // The write lock is held for as long as the test wants; the renewal does not wait for it.
      assert.equal(await beating.renewController('b', 500, 2000), true);
      release();
      await holder;
      assert.deepEqual(
        (await beating.listLiveControllers(1500)).map((c) => c.expiresAt),
        [2000],
      );
    },
  );
});
