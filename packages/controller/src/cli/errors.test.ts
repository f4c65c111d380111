// How a failure reaches the operator: one line, as a terminal shows it; a bug's stack with its lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CliError, failureOf } from './errors.js';

test('a failure is one line with its control characters shown; an internal error keeps its stack lines', () => {
  assert.deepEqual(failureOf(new CliError('no VM a\nb\x1b[31m')), {
    exitCode: 1,
    text: 'hostfiles: no VM a\\x0ab\\x1b[31m\n',
  });
  const bug = failureOf(new Error('boom'));
  assert.equal(bug.exitCode, 1);
  assert.match(bug.text, /^hostfiles: internal error: Error: boom\n {4}at /);
});
