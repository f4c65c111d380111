import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileType } from '@hostfiles/shared';
import { independent } from './files.js';

const unit = (path: string, type: FileType = 'TpmState') => ({ type, components: path.split('/') });

test('ops on distinct units may run at once, whatever their kinds and depths', () => {
  assert.equal(independent([unit('vm1'), unit('vm2'), unit('vm3')]), true, 'states directly below one root');
  assert.equal(independent([unit('vm1/tpm2/x'), unit('vm2'), unit('vm1', 'NvRam')]), true);
});

test('two ops on one unit run in order', () => {
  assert.equal(independent([unit('vm1'), unit('vm1')]), false, 'one path twice');
  assert.equal(independent([unit('vm1'), unit('vm1/tpm2/state')]), false, 'a tree and a path inside it');
  assert.equal(independent([unit('vm1/a'), unit('vm1/b')]), false, 'two paths in one unit');
});
