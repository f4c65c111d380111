// The fleet's background work shared between controllers: disjoint fair shares, given back to one that joins, taken
// over from one that dies once its grace is over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addHost, ENGINES, onEngine, openStore } from '../store/test-support.js';
import { createFleetShare } from './fleet-share.js';

const settings = { leaseMs: 1000, graceMs: 500 };

for (const engine of ENGINES)
  describe(`the fleet's share (${engine})`, onEngine(engine), () => {
    it('splits the hosts fairly and disjointly, rebalances when one joins, and takes over from one that died', async (t) => {
      let now = 0;
      const store = await openStore(t, engine);
      const hosts = await Promise.all(['h1', 'h2', 'h3', 'h4', 'h5'].map((name) => addHost(store, name)));
      const register = (id: string, expiresAt: number) =>
        store.registerController({ id, host: 'test', pid: 1, startedAt: 0, expiresAt });
      await register('a', 10_000);
      const a = createFleetShare(store, { id: 'a', settings }, () => now);
      assert.deepEqual([...(await a())].sort(), [...hosts].sort(), 'alone: every host');

      await register('b', 3_000);
      const b = createFleetShare(store, { id: 'b', settings }, () => now);
      assert.equal((await b()).size, 0, 'all hosts are taken until a gives some back');
      const shareA = await a();
      assert.equal(shareA.size, 3, 'a keeps ceil(5 / 2)');
      const shareB = await b();
      assert.equal(shareB.size, 2, 'b takes what a gave back');
      assert.deepEqual([...shareA, ...shareB].sort(), [...hosts].sort(), 'disjoint, and every host is someone’s');

      // b dies (not renewed past 3 000): its hosts are free once its grace (500 ms) is over.
      now = 3_200;
      assert.equal((await a()).size, 3, 'within b’s grace its hosts stay its');
      now = 3_600;
      assert.deepEqual([...(await a())].sort(), [...hosts].sort(), 'a takes over every host');
    });
  });
