import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { lockPath, lockStateDir } from './state-lock.js';

function stateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-lock-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

test('a lock left by a dead holder (a file nobody listens on) is removed and taken', async (t) => {
  const dir = stateDir(t);
  writeFileSync(lockPath(dir), 'left behind');
  const locked = await lockStateDir(dir, 4242);
  assert.ok(locked.ok, locked.ok ? '' : locked.error);
  t.after(() => {
    locked.lock.release();
  });
  assert.ok(statSync(lockPath(dir)).isSocket());
  const second = await lockStateDir(dir, 4343);
  assert.deepEqual(second.ok ? {} : { inUse: second.inUse, holderPid: second.holderPid }, {
    inUse: true,
    holderPid: 4242,
  });
});

test('a failure to lock other than "in use" is not reported as in use (the agent exits 1, not 2)', async (t) => {
  const locked = await lockStateDir(join(stateDir(t), 'missing'), 4242);
  if (locked.ok) assert.fail('locked a directory that does not exist');
  assert.equal(locked.inUse, false);
  assert.match(locked.error, /^cannot lock the stateDir .*missing: E[A-Z]+$/);
});
