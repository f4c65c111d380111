// The rate limit of refusal lines: a few a second, and the count of those left out on the next one logged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogLimit } from './log-limit.js';

test('logs the first few each second and counts the rest into the next line logged', () => {
  let time = 0;
  const limit = createLogLimit(3, () => time);
  const first = Array.from({ length: 10 }, () => limit.admit());
  assert.deepEqual(first, [0, 0, 0, undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
  time = 1500;
  assert.equal(limit.admit(), 7);
  assert.equal(limit.admit(), 0);
});
