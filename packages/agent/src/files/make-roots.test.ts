import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeMissingRoots } from './make-roots.js';
import type { Ownerships } from './types.js';

const OWNERSHIP: Ownerships = {
  TpmState: { fileMode: 0o600, dirMode: 0o700, topDirMode: 0o711 },
  NvRam: { fileMode: 0o600, dirMode: 0o700, topDirMode: 0o700 },
};

test('a root made by someone else between the look and the mkdir is left as it is; the other root is still made', (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-make-roots-'));
  t.after(() => {
    rmSync(base, { recursive: true, force: true });
  });
  const roots = { TpmState: join(base, 'swtpm'), NvRam: join(base, 'nvram') };
  const made: string[] = [];
  const outcomes = makeMissingRoots(roots, OWNERSHIP, (path, mode) => {
    // libvirtd wins the race for the TpmState root, with a mode of its own: the real mkdir then fails EEXIST.
    if (made.length === 0) mkdirSync(path, { mode: 0o750 });
    made.push(path);
    mkdirSync(path, { mode });
  });
  assert.equal(made.length, 2, 'both roots were missing at the look');
  assert.deepEqual(
    outcomes.map((o) => [o.type, o.made]),
    [['NvRam', true]],
  );
  assert.equal(statSync(roots.TpmState).mode & 0o777, 0o750, 'the root made meanwhile is untouched');
  assert.equal(statSync(roots.NvRam).mode & 0o777, 0o755);
});
