// The walker holds a bounded number of directories and never leaves the tree, even when its owner moves part of it.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CHILD_DIR_FLAGS } from './fd-path.js';
import { useTestRoots } from './test-roots.js';
import { FULL_WALK, walkTree, type WalkEntry } from './tree-walk.js';

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
