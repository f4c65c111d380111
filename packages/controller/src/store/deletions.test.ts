// The outbox: what is due, backoff after a failed attempt, merging a repeated deletion, and the retry pass's settle.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { retryPendingDeletions } from '../flows/index.js';
import { flowHosts, RETRY_BASE_MS } from './flow-support.js';
import { addHost, manualClock, ENGINES, onEngine, openStore, pendingRow, sha } from './test-support.js';

for (const engine of ENGINES)
  describe(`pending deletions (${engine})`, onEngine(engine), () => {
    it('lists what is due (nextAttemptAt ≤ now), by host, earliest first, and backs off a failed attempt', async (t) => {
      const store = await openStore(t, engine);
      const h1 = await addHost(store, 'h1');
      const h2 = await addHost(store, 'h2');
      const [a, b, c] = await store.addPendingDeletions([
        pendingRow(h1, '/tpm/a', 200),
        pendingRow(h1, '/tpm/b', 100),
        pendingRow(h2, '/tpm/c', 150),
        pendingRow(h2, '/tpm/later', 1000),
      ]);
      const paths = async (now: number, options?: { hostUuid?: string; limit?: number }) =>
        (await store.listDueDeletions(now, options)).map((p) => p.path);

      assert.deepEqual(await paths(99), []);
      assert.deepEqual(await paths(200), ['/tpm/b', '/tpm/a', '/tpm/c']);
      assert.deepEqual(await paths(200, { hostUuid: h2 }), ['/tpm/c']);
      assert.deepEqual(await paths(200, { limit: 1 }), ['/tpm/b']);
      assert.equal(await store.nextDeletionDueAt(), 100);
      assert.equal(await store.nextDeletionDueAt(h2), 150);

      assert.ok(b && a && c);
      assert.equal(await store.markDeletionFailed(b.id, { nextAttemptAt: 400, lastError: 'unreachable' }), true);
      assert.deepEqual(await paths(200), ['/tpm/a', '/tpm/c']);
      assert.deepEqual(await paths(400), ['/tpm/a', '/tpm/b', '/tpm/c']);
      const [failed] = await store.listPendingDeletions({ hostUuid: h1 });
      assert.equal(failed?.path, '/tpm/a');
      const retried = (await store.listPendingDeletions({ hostUuid: h1 })).find((p) => p.id === b.id);
      assert.deepEqual([retried?.attempts, retried?.nextAttemptAt, retried?.lastError], [1, 400, 'unreachable']);
      assert.equal(await store.nextDeletionDueAt(), 150);

      assert.equal(await store.deletePendingDeletions([a.id, c.id, 12345]), 2);
      assert.equal(await store.markDeletionFailed(a.id, { nextAttemptAt: 1, lastError: 'late' }), false);
      assert.deepEqual(await paths(10_000), ['/tpm/b', '/tpm/later']);
    });

    it('deletionStats: how many are pending and when the oldest was made, in one aggregate', async (t) => {
      const clock = manualClock(1000);
      const store = await openStore(t, engine, { now: clock.now });
      assert.deepEqual(await store.deletionStats(), { count: 0, oldestCreatedAt: null });
      const h1 = await addHost(store, 'h1');
      const [oldest] = await store.addPendingDeletions([pendingRow(h1, '/tpm/a', 5000)]);
      clock.set(3000);
      await store.addPendingDeletions([pendingRow(h1, '/tpm/b', 100), pendingRow(h1, '/tpm/c', 100)]);
      assert.deepEqual(await store.deletionStats(), { count: 3, oldestCreatedAt: 1000 });
      assert.ok(oldest);
      await store.deletePendingDeletions([oldest.id]);
      assert.deepEqual(await store.deletionStats(), { count: 2, oldestCreatedAt: 3000 });
    });

    it('merges a deletion repeated at the same (host, path): one row, attempts kept, the earlier attempt', async (t) => {
      const clock = manualClock(10);
      const store = await openStore(t, engine, { now: clock.now });
      const h1 = await addHost(store, 'h1');
      const [first] = await store.addPendingDeletions([pendingRow(h1, '/tpm/a', 500, 'tpm1')]);
      assert.ok(first);
      await store.markDeletionFailed(first.id, { nextAttemptAt: 900, lastError: 'timeout' });
      clock.set(20);
      const [merged] = await store.addPendingDeletions([
        { ...pendingRow(h1, '/tpm/a', 700, null), vmUuid: 'vm-again' },
      ]);
      assert.deepEqual(merged, {
        ...first,
        vmUuid: 'vm-again',
        attempts: 1,
        nextAttemptAt: 700,
        lastError: 'timeout',
        tpmUuid: 'tpm1',
      });
      assert.equal((await store.listPendingDeletions()).length, 1);
      const [later] = await store.addPendingDeletions([pendingRow(h1, '/tpm/a', 5000, 'tpm1')]);
      assert.equal(later?.nextAttemptAt, 700);
    });

    // The settle is the retry pass's own transaction (retryPendingDeletions), run here against real agents.
    it('counts what a removed TPM still waits for; the retry pass settles it: backoff, drop, then detach', async (t) => {
      const clock = manualClock();
      const store = await openStore(t, engine, { now: clock.now });
      const { deps, hosts } = await flowHosts(t, store, ['h1', 'h2'], clock.now);
      const [one, two] = hosts;
      assert.ok(one !== undefined && two !== undefined);
      const vm = randomUUID();
      await store.addVm({ uuid: vm, name: 'vm1', hostUuid: one.uuid, bootMode: 'UEFI', secureBoot: false });
      await store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' });
      const state1 = join(one.agent.roots.TpmState, 'vm1');
      const state2 = join(two.agent.roots.TpmState, 'vm1');
      // A guard: delete only while the path holds these bytes. Something else is there now: never this guard's.
      const guarded = join(two.agent.roots.NvRam, 'vm1_VARS.fd');
      writeFileSync(guarded, 'firmware written since');
      mkdirSync(state1);
      writeFileSync(join(state1, 'permall'), 'seeds');
      const [first, second] = await store.addPendingDeletions([
        pendingRow(one.uuid, state1, 0, 'tpm1'),
        pendingRow(two.uuid, state2, 0, 'tpm1'),
        { ...pendingRow(two.uuid, guarded, 0), type: 'NvRam', expectSha256: sha('e') },
      ]);
      assert.ok(first !== undefined && second !== undefined);
      await store.transaction(async (tx) => {
        await tx.removeTpm('tpm1');
        await tx.setKeyBindingState('tpm1', 'detaching');
      });
      assert.equal(await store.countPendingDeletionsForTpm('tpm1'), 2);
      assert.deepEqual(
        (await store.listPendingDeletions({ tpmUuid: 'tpm1' })).map((p) => p.hostUuid),
        [one.uuid, two.uuid].sort(),
        'by host',
      );

      await two.agent.stop();
      const partial = await retryPendingDeletions(deps);
      assert.deepEqual(
        [partial.attempted, partial.confirmed, partial.dropped, partial.stillPending, partial.detached],
        [3, 1, 0, 2, []],
      );
      assert.equal(existsSync(state1), false, "h1's agent deleted it");
      assert.equal((await store.getKeyBinding('tpm1'))?.state, 'detaching', 'h2 still holds the binding back');
      const left = await store.listPendingDeletions({ hostUuid: two.uuid });
      assert.deepEqual(
        left.map((p) => [p.path, p.attempts, p.nextAttemptAt, p.lastError?.split(':')[0]]),
        [
          [guarded, 1, clock.now() + (RETRY_BASE_MS * 3) / 4, 'unreachable'],
          [state2, 1, clock.now() + (RETRY_BASE_MS * 3) / 4, 'unreachable'],
        ],
        'backed off: base · 2⁰, half of it fixed and half jitter (0.5)',
      );
      assert.deepEqual(await store.listPendingDeletions({ hostUuid: one.uuid }), []);

      await two.agent.start();
      clock.set(clock.now() + RETRY_BASE_MS);
      const rest = await retryPendingDeletions(deps);
      assert.deepEqual(
        [rest.attempted, rest.confirmed, rest.dropped, rest.stillPending, rest.detached],
        [2, 1, 1, 0, ['tpm1']],
      );
      assert.equal(await store.getKeyBinding('tpm1'), null, 'the last confirmation detached it');
      assert.deepEqual(await store.listKeyBindings(), []);
      assert.deepEqual(await store.listPendingDeletions(), []);
      assert.equal(existsSync(guarded), true, 'the guard found other bytes: dropped, the file left alone');
    });
  });
