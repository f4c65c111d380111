import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { closeAll } from './fd-path.js';
import { KnownUnits } from './known-units.js';
import type { OpContext } from './op-context.js';
import { AGENT_OWNERSHIP } from './ownership.js';
import { removeFile } from './remove-file.js';
import { openRootDir } from './root-dir.js';
import type { StoreEvent } from './types.js';
import { unmakeDirs, walkDirs, type MakeDirs } from './walk.js';

test('known units: remembered until deleted; when full, all forgotten at once and the new name kept', () => {
  const known = new KnownUnits(3);
  for (const name of ['a', 'b', 'c']) known.add(name);
  known.add('a'); // already there: nothing forgotten
  assert.deepEqual(
    ['a', 'b', 'c'].map((n) => known.has(n)),
    [true, true, true],
  );
  known.delete('b');
  known.add('d'); // room again after the delete
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((n) => known.has(n)),
    [true, false, true, true],
  );
  known.add('e');
  assert.deepEqual(
    ['a', 'c', 'd', 'e'].map((n) => known.has(n)),
    [false, false, false, true],
  );
});

test('walks note the state directories they open and forget those they do not find; unmaking and pruning forget them', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-known-'));
  t.after(() => {
    rmSync(base, { recursive: true, force: true });
  });
  const root = openRootDir(base);
  t.after(() => {
    closeSync(root.fd);
  });
  const ctx: OpContext = {
    ownership: AGENT_OWNERSHIP,
    readLocks: () => Promise.resolve(new Set()),
    logger: silentLogger<StoreEvent>(),
    now: Date.now,
    hooks: {},
  };
  const walk = async (names: string[], make?: MakeDirs): Promise<{ end: string; held: DirHandle[] }> => {
    const held: DirHandle[] = [];
    const end = await walkDirs(root, names, held, make);
    t.after(() => closeAll(held));
    return { end, held };
  };
  const newMake = (): MakeDirs => ({ ownership: AGENT_OWNERSHIP, grown: [] });

  // Made by a write's walk: noted; unmade again: forgotten.
  const make = newMake();
  const made = await walk(['a'], make);
  assert.equal(made.end, 'ok');
  assert.equal(make.grown.length, 1, 'made');
  assert.equal(root.known.has('a'), true);
  await unmakeDirs(root, made.held, ['a', 'f'], make);
  assert.equal(existsSync(join(base, 'a')), false);
  assert.equal(root.known.has('a'), false);

  // Opened by a walk that makes nothing (a read's, a delete's): noted.
  mkdirSync(join(base, 'b'));
  assert.equal((await walk(['b'])).end, 'ok');
  assert.equal(root.known.has('b'), true);
  // Removed behind the store: the next write's walk tries the open first, finds it missing, makes it.
  rmSync(join(base, 'b'), { recursive: true });
  const again = newMake();
  assert.equal((await walk(['b'], again)).end, 'ok');
  assert.equal(again.grown.length, 1, 'made again');
  assert.equal(root.known.has('b'), true);

  // A link or a file where a state directory was: forgotten, and nothing made.
  root.known.add('c');
  symlinkSync(base, join(base, 'c'));
  assert.equal((await walk(['c'], newMake())).end, 'symlink');
  assert.equal(root.known.has('c'), false);

  // A delete that prunes the state forgets it; one that leaves it standing (another file in it) does not.
  for (const unit of ['d', 'e']) {
    mkdirSync(join(base, unit));
    writeFileSync(join(base, unit, 'f'), 'x');
    assert.equal((await walk([unit])).end, 'ok');
  }
  writeFileSync(join(base, 'e', 'other'), 'y');
  assert.equal((await removeFile(root, ['d', 'f'], undefined, ctx)).status, 'deleted');
  assert.equal((await removeFile(root, ['e', 'f'], undefined, ctx)).status, 'deleted');
  assert.equal(existsSync(join(base, 'd')), false);
  assert.deepEqual([root.known.has('d'), root.known.has('e')], [false, true]);
});
