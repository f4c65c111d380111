import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGroupCommit } from './group-commit.js';

test('lines appended in one turn share a write and a sync; a failure after the sync fails that group only', async () => {
  const written: string[] = [];
  let syncs = 0;
  let failNext = true;
  const group = createGroupCommit({
    write: (text) => {
      written.push(text);
      return Promise.resolve();
    },
    sync: () => {
      syncs += 1;
      return Promise.resolve();
    },
    afterSync: () => {
      if (!failNext) return Promise.resolve();
      failNext = false;
      return Promise.reject(new Error('compaction failed'));
    },
  });
  const first = await Promise.allSettled([group.append('1'), group.append('2')]);
  assert.deepEqual(
    first.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  await Promise.all([group.append('3'), group.append('4'), group.append('5')]);
  await group.drain();
  // After a failed group the next starts with a newline: a torn line of the failed one never swallows it.
  assert.deepEqual(written, ['1\n2\n', '\n3\n4\n5\n']);
  assert.equal(syncs, 2);
});
