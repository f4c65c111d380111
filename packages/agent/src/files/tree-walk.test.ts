// The walker holds a bounded number of directories and never leaves the tree, even when its owner moves part of it.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CHILD_DIR_FLAGS } from './fd-path.js';
import { useTestRoots } from './test-roots.js';
import { FULL_WALK, listEntries, walkTree, type WalkEntry } from './tree-walk.js';

const chain = (levels: number): string[] => Array.from({ length: levels }, (_, i) => `d${i}`);
const openFds = (): number => readdirSync('/proc/self/fd').length;

test('a 500-deep chain is walked whole, parents before children, with a bounded number of open directories', async (t) => {
  const { roots } = useTestRoots(t);
  const bottom = join(roots.TpmState, 'top', ...chain(500));
  mkdirSync(bottom, { recursive: true });
  writeFileSync(join(bottom, 'file'), '');
  const top = await open(join(roots.TpmState, 'top'), CHILD_DIR_FLAGS);
  t.after(() => top.close());
  const before = openFds();
  let most = 0;
  const seen: string[] = [];
  const left: string[] = [];
  await walkTree(
    top,
    {
      entry: async (entry: WalkEntry) => {
        seen.push(entry.path);
        most = Math.max(most, openFds() - before);
        return Promise.resolve(entry.isDir);
      },
      leave: async (_parent, name) => {
        left.push(name);
        return Promise.resolve();
      },
    },
    FULL_WALK,
  );
  assert.equal(seen.length, 501);
  assert.equal(seen.at(-1), [...chain(500), 'file'].join('/'));
  assert.deepEqual(left, chain(500).reverse(), 'each directory left once its entries are done, deepest first');
  assert.ok(most <= 20, `at most 20 directories open at once, saw ${most}`);
  assert.equal(openFds(), before, 'all closed');
});

test('a directory moved out of the tree mid-walk: the walk stops there and never walks where it was moved to', async (t) => {
  const { roots, outside } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'top', ...chain(40)), { recursive: true });
  writeFileSync(join(outside, 'precious'), 'outside the tree');
  const top = await open(join(roots.TpmState, 'top'), CHILD_DIR_FLAGS);
  t.after(() => top.close());
  const seen: string[] = [];
  const walk = walkTree(
    top,
    {
      entry: async (entry) => {
        seen.push(entry.name);
        // What the owner of the tree can do: move a directory above the walk into another directory it can write.
        if (entry.depth === 35) renameSync(join(roots.TpmState, 'top', ...chain(21)), join(outside, 'moved'));
        return Promise.resolve(entry.isDir);
      },
    },
    FULL_WALK,
  );
  await assert.rejects(walk, /EAGAIN \(a directory moved while the tree was walked\)/);
  assert.ok(!seen.includes('precious'), 'nothing outside the tree was visited');
});

test('listEntries: a one-block directory is listed in one call, a bigger one in batches; both stop past the budget', async (t) => {
  const { roots } = useTestRoots(t);
  const small = join(roots.TpmState, 'small');
  mkdirSync(join(small, 'sub'), { recursive: true });
  for (const name of ['a', 'b', 'c', 'd']) writeFileSync(join(small, name), '');
  const big = join(roots.TpmState, 'big');
  mkdirSync(big);
  for (let i = 0; i < 600; i++) writeFileSync(join(big, `${String(i).padStart(4, '0')}-${'x'.repeat(36)}`), '');
  const held = await Promise.all([small, big].map((dir) => open(dir, CHILD_DIR_FLAGS)));
  t.after(() => Promise.all(held.map((handle) => handle.close())));
  const [smallDir, bigDir] = held as [FileHandle, FileHandle];
  assert.ok(statSync(small).size <= 4096 && statSync(big).size > 4096, 'one directory of each kind');

  const listed = await listEntries(smallDir, { left: 10, max: 10 });
  assert.deepEqual(listed.map((e) => [e.name, e.isDir]).sort(), [
    ['a', false],
    ['b', false],
    ['c', false],
    ['d', false],
    ['sub', true],
  ]);
  const budget = { left: 10, max: 10 };
  await listEntries(smallDir, budget);
  assert.equal(budget.left, 5, 'each entry counted');
  await assert.rejects(listEntries(smallDir, { left: 4, max: 4 }), /^OpIoError: E2BIG \(more than 4 entries\)$/);

  assert.equal((await listEntries(bigDir, { left: 1000, max: 1000 })).length, 600);
  await assert.rejects(listEntries(bigDir, { left: 100, max: 100 }), /E2BIG \(more than 100 entries\)/);
});

test('visiting a huge directory lets the event loop in every 1,024 entries, however synchronous the visitor', async (t) => {
  const { roots } = useTestRoots(t);
  const wide = join(roots.TpmState, 'wide');
  mkdirSync(wide);
  for (let i = 0; i < 3000; i++) writeFileSync(join(wide, `f${i}`), '');
  const top = await open(wide, CHILD_DIR_FLAGS);
  t.after(() => top.close());
  // Turns of the event loop, counted while the walk runs; each visit notes how many had passed. The directory is
  // listed before its first visit, so turns that pass between its visits are the walk's own yields.
  let turns = 0;
  let walking = true;
  const tick = (): void => {
    turns += 1;
    if (walking) setImmediate(tick);
  };
  setImmediate(tick);
  const seenAt: number[] = [];
  await walkTree(
    top,
    {
      entry: () => {
        seenAt.push(turns);
        return Promise.resolve(false);
      },
    },
    FULL_WALK,
  );
  walking = false;
  assert.equal(seenAt.length, 3000);
  const first = seenAt[0] ?? NaN;
  const last = seenAt.at(-1) ?? NaN;
  assert.ok(last - first >= 2, `the event loop turned ${last - first} times while 3,000 entries were visited`);
});
