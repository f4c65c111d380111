import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { treeOf, useTestRoots } from './test-roots.js';

// Runs in a worker thread, truly concurrent with the store's thread-pool syscalls: turns `path`
// (a directory inside the root) into a symlink to `outside` and back, as fast as it can.
const SWAPPER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { path, outside, flag } = workerData;
const stop = new Int32Array(flag);
const real = path + '.real';
const link = path + '.link';
fs.symlinkSync(outside, link);
let swaps = 0;
// The store never makes links, so whatever directory is at path is the store's or ours.
const clear = () => {
  for (;;) {
    try {
      return fs.rmSync(path, { recursive: true, force: true });
    } catch (error) {
      if (error.code !== 'ENOTEMPTY') throw error; // the store wrote into it meanwhile
    }
  }
};
while (Atomics.load(stop, 0) === 0) {
  try {
    fs.renameSync(path, real);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    fs.mkdirSync(path, { recursive: true }); // pruned by a delete: put it back
    continue;
  }
  try {
    fs.renameSync(link, path); // path is now a symlink to outside
    swaps += 1;
    fs.renameSync(path, link);
  } catch (error) {
    if (error.code !== 'EISDIR' && error.code !== 'ENOTEMPTY') throw error;
    clear(); // the store made path while it was missing
  }
  for (;;) {
    try {
      fs.renameSync(real, path);
      break;
    } catch (error) {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      clear();
    }
  }
}
parentPort.postMessage(swaps);
`;

type Op = readonly ['write' | 'remove', readonly string[]];

/** Runs `ops` 200 times over while SWAPPER flips `swapped` (below the TpmState root) between a directory and a link. */
async function underSwaps(
  roots: { readonly TpmState: string },
  outside: string,
  store: ReturnType<typeof useTestRoots>['store'],
  swapped: string,
  ops: readonly Op[],
): Promise<Map<string, number>> {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(SWAPPER, {
    eval: true,
    workerData: { path: join(roots.TpmState, swapped), outside, flag },
  });
  const swapsReported = once(worker, 'message');
  const outcomes = new Map<string, number>();
  const count = (answer: { status: string; error?: { code: string } }): void => {
    const key = answer.error?.code ?? answer.status;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  };
  try {
    for (let i = 0; i < 200; i++) {
      for (const [op, components] of ops) {
        count(
          op === 'write'
            ? await store.write('TpmState', components, Buffer.from('inside'))
            : await store.remove('TpmState', components),
        );
      }
    }
  } finally {
    Atomics.store(new Int32Array(flag), 0, 1);
  }
  const [swaps] = (await swapsReported) as [number];
  await once(worker, 'exit');
  assert.ok(swaps > 0, 'the swapper ran');
  return outcomes;
}

function assertHeld(outside: string, outcomes: ReadonlyMap<string, number>): void {
  assert.deepEqual(treeOf(outside), ['f', 'sub', 'sub/g'], 'nothing made or removed outside');
  assert.equal(readFileSync(join(outside, 'f'), 'utf8'), 'outside-f');
  assert.equal(readFileSync(join(outside, 'sub', 'g'), 'utf8'), 'outside-g');
  assert.ok((outcomes.get('symlink') ?? 0) > 0, `the race was hit: ${JSON.stringify([...outcomes])}`);
  const expected = new Set(['written', 'deleted', 'absent', 'symlink', 'io_error']);
  assert.ok(
    [...outcomes.keys()].every((k) => expected.has(k)),
    JSON.stringify([...outcomes]),
  );
}

function outsideTree(outside: string): void {
  mkdirSync(join(outside, 'sub'));
  writeFileSync(join(outside, 'f'), 'outside-f');
  writeFileSync(join(outside, 'sub', 'g'), 'outside-g');
}

test('an intermediate directory swapped for a symlink mid-op never leads outside the root', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  outsideTree(outside);
  mkdirSync(join(roots.TpmState, 'vm', 'd'), { recursive: true });
  // Keeps `vm` from being pruned: the swapper recreates only `vm/d`.
  writeFileSync(join(roots.TpmState, 'vm', 'keep'), 'k');
  const outcomes = await underSwaps(roots, outside, store, join('vm', 'd'), [
    ['write', ['vm', 'd', 'f']],
    ['write', ['vm', 'd', 'sub', 'g']],
    ['remove', ['vm', 'd', 'sub']],
  ]);
  assertHeld(outside, outcomes);
});

// A write makes a state's directory below the root first and opens it after, unless it has lately seen it there
// (walk.ts): the name swapped between that mkdir (EEXIST) and the no-follow open, between an open-first that found it
// missing and the mkdir after, or between a delete's prune and the next write.
test('a state directory below the root swapped for a symlink mid-op never leads outside the root', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  outsideTree(outside);
  mkdirSync(join(roots.TpmState, 'unit'));
  const outcomes = await underSwaps(roots, outside, store, 'unit', [
    ['write', ['unit', 'f']],
    ['write', ['unit', 'sub', 'g']],
    ['remove', ['unit', 'sub']],
    ['remove', ['unit', 'f']],
  ]);
  assertHeld(outside, outcomes);
});
