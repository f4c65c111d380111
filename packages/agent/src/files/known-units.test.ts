import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KnownUnits } from './known-units.js';

test('known units: remembered until deleted; when full, the oldest name is forgotten first', () => {
  const known = new KnownUnits(3);
  for (const name of ['a', 'b', 'c']) known.add(name);
  known.add('a'); // already there: not moved, nothing forgotten
  assert.deepEqual(
    ['a', 'b', 'c'].map((n) => known.has(n)),
    [true, true, true],
  );
  known.add('d');
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((n) => known.has(n)),
    [false, true, true, true],
  );
  known.delete('c');
  known.add('e');
  assert.deepEqual(
    ['b', 'c', 'd', 'e'].map((n) => known.has(n)),
    [true, false, true, true],
  );
});
