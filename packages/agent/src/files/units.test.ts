import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stateDigest } from '@hostfiles/shared';
import { MAX_HASHED_BYTES } from './stream-file.js';
import { TEMP_PREFIX } from './temp-name.js';
import { flockAvailable, holdFlock, useTestRoots } from './test-roots.js';

const sha = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');
/** DESIGN.md's pipeline for a state's digest. */
const PIPELINE =
  "find . \\( -name .lock -o -name '.hostfiles-tmp-*' \\) -prune -o -type f -links 1 -printf '%P\\0' | " +
  'LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum';

/** A vTPM state directory as swtpm leaves it: `tpm2/` with state files and the lock. */
function makeState(dir: string, seed: string): Record<string, Buffer> {
  const files = {
    'tpm2/tpm2-00.permall': Buffer.from(`${seed}-permall`.repeat(200)),
    'tpm2/tpm2-00.volatilestate': Buffer.from(`${seed}-volatile`),
  };
  mkdirSync(join(dir, 'tpm2'), { recursive: true });
  for (const [path, bytes] of Object.entries(files)) writeFileSync(join(dir, path), bytes);
  writeFileSync(join(dir, 'tpm2', '.lock'), '');
  return files;
}

test('list answers one unit per entry below the root: files and state directories, sorted, digests as documented', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  const files = makeState(join(roots.TpmState, 'b-uuid'), 'b');
  makeState(join(roots.TpmState, 'a-uuid'), 'a');
  writeFileSync(join(roots.TpmState, 'c-file'), 'plain');
  utimesSync(join(roots.TpmState, 'b-uuid', 'tpm2', 'tpm2-00.permall'), 1_700_000_000, 1_700_000_000);
  utimesSync(join(roots.TpmState, 'b-uuid', 'tpm2', 'tpm2-00.volatilestate'), 1_700_000_100, 1_700_000_100);
  writeFileSync(join(outside, 'secret'), 'outside');
  symlinkSync(outside, join(roots.TpmState, 'link-dir'));
  symlinkSync(join(outside, 'secret'), join(roots.TpmState, 'link-file'));
  execFileSync('mkfifo', [join(roots.TpmState, 'fifo')]);
  writeFileSync(join(roots.TpmState, `${TEMP_PREFIX}0123-x`), 'partial');
  mkdirSync(join(roots.TpmState, `${TEMP_PREFIX}4567`));
  linkSync(join(outside, 'secret'), join(roots.TpmState, 'hard-linked'));
  // Inside a state, none of these is part of it: a file linked from outside, a replace's temp tree, a lock directory.
  linkSync(join(outside, 'secret'), join(roots.TpmState, 'b-uuid', 'tpm2', 'linked'));
  mkdirSync(join(roots.TpmState, 'b-uuid', `${TEMP_PREFIX}new.tpm2`, 'inner'), { recursive: true });
  writeFileSync(join(roots.TpmState, 'b-uuid', `${TEMP_PREFIX}new.tpm2`, 'inner', 'staged'), 'staged');
  utimesSync(join(roots.TpmState, 'b-uuid', `${TEMP_PREFIX}new.tpm2`, 'inner', 'staged'), 1_800_000_000, 1_800_000_000);

  const units = await store.list('TpmState');
  assert.deepEqual(
    units.map((u) => u.path),
    ['a-uuid', 'b-uuid', 'c-file'].map((name) => join(roots.TpmState, name)),
  );
  const b = units[1];
  const expected = execFileSync('bash', ['-c', PIPELINE], { cwd: join(roots.TpmState, 'b-uuid'), encoding: 'utf8' });
  assert.deepEqual(b, {
    type: 'TpmState',
    path: join(roots.TpmState, 'b-uuid'),
    kind: 'dir',
    size: Object.values(files).reduce((sum, bytes) => sum + bytes.length, 0),
    sha256: stateDigest(Object.entries(files).map(([path, bytes]) => ({ path, sha256: sha(bytes) }))),
    mtime: 1_700_000_100_000,
    files: 2,
    busy: false,
  });
  assert.equal(b.sha256, expected.split(' ')[0], 'the sha256sum pipeline of stateDigest');
  const file = join(roots.TpmState, 'c-file');
  assert.deepEqual(units[2], {
    type: 'TpmState',
    path: file,
    kind: 'file',
    size: 5,
    sha256: sha('plain'),
    mtime: Math.floor(statSync(file).mtimeMs),
    files: 1,
    busy: false,
  });
  assert.deepEqual(await store.list('NvRam'), []);
});

test('a unit is busy while a lock is held on it or on any file below it, the lock file included', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  makeState(join(roots.TpmState, 'uuid'), 'x');
  writeFileSync(join(roots.NvRam, 'vm_VARS.fd'), 'vars');
  const busyOf = async (): Promise<boolean[]> =>
    [...(await store.list('TpmState')), ...(await store.list('NvRam'))].map((u) => u.busy);
  assert.deepEqual(await busyOf(), [false, false]);
  const lock = await holdFlock(t, join(roots.TpmState, 'uuid', 'tpm2', '.lock'));
  const vars = await holdFlock(t, join(roots.NvRam, 'vm_VARS.fd'));
  assert.deepEqual(await busyOf(), [true, true]);
  const stat = await store.stat('TpmState', ['uuid']);
  assert.ok(stat.status === 'present' && stat.busy && stat.files === 2, 'the lock is no file of the state');
  await lock.release();
  await vars.release();
  assert.deepEqual(await busyOf(), [false, false]);
});

test('stat answers present with the facts list gives, absent, or failed for a link or a hard-linked file', async (t) => {
  const { roots, outside, store } = useTestRoots(t);
  makeState(join(roots.TpmState, 'uuid'), 's');
  writeFileSync(join(outside, 'secret'), 'x');
  symlinkSync(outside, join(roots.TpmState, 'link'));
  linkSync(join(outside, 'secret'), join(roots.TpmState, 'hard'));
  const [listed] = await store.list('TpmState');
  assert.ok(listed);
  const facts = Object.fromEntries(Object.entries(listed).filter(([key]) => key !== 'type' && key !== 'path'));
  assert.deepEqual(await store.stat('TpmState', ['uuid']), { status: 'present', ...facts });
  assert.deepEqual(await store.stat('TpmState', ['missing']), { status: 'absent' });
  assert.deepEqual(await store.stat('TpmState', ['uuid', 'tpm2', 'none', 'deeper']), { status: 'absent' });
  const link = await store.stat('TpmState', ['link']);
  assert.equal(link.status === 'failed' && link.error.code, 'symlink');
  const below = await store.stat('TpmState', ['link', 'secret']);
  assert.equal(below.status === 'failed' && below.error.code, 'symlink');
  const hard = await store.stat('TpmState', ['hard']);
  assert.equal(hard.status === 'failed' && hard.error.code, 'not_regular_file');
  assert.match(hard.status === 'failed' ? hard.error.message : '', /hard links/);
  // busy tells no more of a hard-linked file than stat does.
  assert.deepEqual(await store.busy('TpmState', ['hard']), hard);
  const file = await store.stat('TpmState', ['uuid', 'tpm2', 'tpm2-00.volatilestate']);
  assert.ok(file.status === 'present' && file.kind === 'file' && file.files === 1);
});

test('a file as big as may be hashed (1 GiB) is hashed as a stream, in bounded memory; one byte more fails its unit alone', async (t) => {
  const { roots, store } = useTestRoots(t);
  const path = join(roots.NvRam, 'huge_VARS.fd');
  writeFileSync(path, '');
  truncateSync(path, MAX_HASHED_BYTES); // sparse: no disk used
  const peakBefore = process.resourceUsage().maxRSS; // KiB
  const [unit] = await store.list('NvRam');
  assert.equal(unit?.size, MAX_HASHED_BYTES);
  // `head -c 1073741824 /dev/zero | sha256sum`
  assert.equal(unit.sha256, '49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14');
  const grewMiB = (process.resourceUsage().maxRSS - peakBefore) / 1024;
  assert.ok(
    grewMiB < 256,
    `the peak RSS grew by ${grewMiB.toFixed(0)} MiB hashing 1 GiB: never the whole file at once`,
  );
  // Past the cap it is never read (limits.test.ts: a sparse file of any size): the listing goes on without it.
  truncateSync(path, MAX_HASHED_BYTES + 1);
  writeFileSync(join(roots.NvRam, 'small_VARS.fd'), 'vars');
  assert.deepEqual(
    (await store.list('NvRam')).map((u) => u.path),
    [join(roots.NvRam, 'small_VARS.fd')],
  );
});

test('a directory without files has the digest of nothing and its own mtime', async (t) => {
  const { roots, store } = useTestRoots(t);
  mkdirSync(join(roots.TpmState, 'empty', 'tpm2'), { recursive: true });
  const stat = await store.stat('TpmState', ['empty']);
  assert.ok(stat.status === 'present');
  assert.equal(stat.sha256, sha(''));
  assert.equal(stat.files, 0);
  assert.equal(stat.mtime, Math.floor(statSync(join(roots.TpmState, 'empty')).mtimeMs));
});
