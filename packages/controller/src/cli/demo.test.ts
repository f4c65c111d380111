import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resumeText } from './demo.js';

test('resume says which operations failed or could not be resumed, and why, not only how many', () => {
  const text = resumeText({
    resumed: ['op-1', 'op-2'],
    failed: ['op-2'],
    unknown: ['op-3'],
    errors: [{ id: 'op-4', message: 'database is locked' }],
    detached: [],
  });
  assert.equal(
    text,
    [
      'resumed: 2',
      'ended as failed: 1',
      '  op-2',
      'unknown kinds left running: 1',
      '  op-3',
      'errors: 1',
      '  op-4: database is locked',
      'key bindings detached: 0',
    ].join('\n'),
  );
});
