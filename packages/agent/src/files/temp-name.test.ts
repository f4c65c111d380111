import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRoleName, randomTempName, roleName, tempNameFor, TEMP_PREFIX } from './temp-name.js';

test('role names round-trip; random temp names never read as a role, whatever the target is called', () => {
  for (const role of ['new', 'old', 'del'] as const) {
    const name = roleName(role, 'vm-uuid');
    assert.equal(name, `${TEMP_PREFIX}${role}.vm-uuid`);
    assert.deepEqual(parseRoleName(name), { role, target: 'vm-uuid' });
  }
  for (let i = 0; i < 200; i++) {
    assert.equal(parseRoleName(tempNameFor('new.x')), undefined);
    assert.equal(parseRoleName(randomTempName()), undefined);
  }
  assert.equal(parseRoleName('new.x'), undefined, 'no prefix');
  assert.equal(parseRoleName(`${TEMP_PREFIX}new.`), undefined, 'no target');
  assert.equal(parseRoleName(`${TEMP_PREFIX}old.${TEMP_PREFIX}x`), undefined, 'a temp target');
  assert.equal(roleName('new', 'n'.repeat(240)), undefined, 'too long for NAME_MAX');
  assert.ok(Buffer.byteLength(tempNameFor('n'.repeat(250))) <= 255);
});
