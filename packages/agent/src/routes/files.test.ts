import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deleteOp, writeOp } from '@hostfiles/shared';
import { independent } from './files.js';

const w = (path: string) => writeOp('TpmState', path, Buffer.from('x'));
const d = (path: string) => deleteOp('TpmState', path);

test('ops in separate directories, all of one kind, may run at once', () => {
  assert.equal(independent([d('/r/vm1/state'), d('/r/vm2/state'), d('/r/vm3/state')]), true);
  assert.equal(independent([w('/r/vm1/state'), w('/r/vm2/state')]), true);
});

test('anything that could see another op runs in order', () => {
  assert.equal(independent([d('/r/vm1/state'), w('/r/vm2/state')]), false, 'mixed kinds');
  assert.equal(independent([w('/r/vm1/a'), w('/r/vm1/b')]), false, 'one directory');
  assert.equal(independent([w('/r/vm1/a'), w('/r/vm1/a')]), false, 'one path twice');
  assert.equal(independent([d('/r/vm1'), d('/r/vm1/x/state')]), false, 'a tree and a path inside it');
});
