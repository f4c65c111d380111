// Log lines batched per turn of the event loop: in order, all of them, one write per turn, never a large backlog.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createLineBatch, MAX_BATCH_CHARS } from './line-batch.js';

test('the lines of one turn go out in one write, in order, at the end of the turn', async () => {
  const writes: string[] = [];
  const lines = createLineBatch((text) => writes.push(text));
  lines.write('a\n');
  lines.write('b\n');
  lines.write('c\n');
  assert.deepEqual(writes, []);
  await nextTurn();
  assert.deepEqual(writes, ['a\nb\nc\n']);
  lines.write('d\n');
  await nextTurn();
  assert.deepEqual(writes, ['a\nb\nc\n', 'd\n']);
});

test('flush writes what waits now, and a flush with nothing waiting writes nothing', async () => {
  const writes: string[] = [];
  const lines = createLineBatch((text) => writes.push(text));
  lines.flush();
  lines.write('a\n');
  lines.flush();
  assert.deepEqual(writes, ['a\n']);
  await nextTurn();
  assert.deepEqual(writes, ['a\n']);
});

test('past MAX_BATCH_CHARS the lines go out at once', () => {
  const writes: string[] = [];
  const lines = createLineBatch(
    (text) => writes.push(text),
    () => undefined, // the end of the turn never comes: only the size can flush
  );
  const line = `${'x'.repeat(1023)}\n`;
  for (let i = 0; i < MAX_BATCH_CHARS / line.length; i++) lines.write(line);
  assert.equal(writes.length, 1);
  assert.equal(writes[0], line.repeat(MAX_BATCH_CHARS / line.length));
  lines.write('y\n');
  assert.equal(writes.length, 1);
});
