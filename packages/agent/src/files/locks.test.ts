import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProcLocks } from './locks.js';

test('parseProcLocks keeps POSIX, FLOCK and OFDLCK inodes and skips waiters and leases', () => {
  const text = [
    '1: POSIX  ADVISORY  READ  5433 08:01:7864448 128 128',
    '1: -> POSIX  ADVISORY  WRITE 5999 08:01:1111111 0 EOF',
    '2: FLOCK  ADVISORY  WRITE 2001 08:01:7864554 0 EOF',
    '3: OFDLCK ADVISORY  WRITE -1 fe:00:8713209 128 191',
    '4: LEASE  ACTIVE    READ  1234 08:01:2222222 0 EOF',
    '5: POSIX  ADVISORY  WRITE 699 00:16:28457 0 EOF',
    '',
    'garbage',
  ].join('\n');
  assert.deepEqual([...parseProcLocks(text)].sort(), ['28457', '7864448', '7864554', '8713209']);
  assert.equal(parseProcLocks('').size, 0);
});
