// Trees a state's owner can make without bound (a deep chain, a huge directory) are a failure of that unit alone: the
// store starts, lists and serves every other unit, and the unit can still be deleted.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger, MAX_LISTED_NAMES } from '@hostfiles/shared';
import { bytesReadByThisProcess, flockAvailable, holdFlock, useTestRoots, type TestRoots } from './test-roots.js';
import { MAX_HASHED_BYTES } from './stream-file.js';
import { listBudget, type ListBudget } from './units.js';
import type { StoreEvent } from './types.js';

const codeOf = (a: { status: string; error?: { code: string } }): string => a.error?.code ?? a.status;
const messageOf = (a: { status: string; error?: { message: string } }): string => a.error?.message ?? '';
const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A lock held on an inode no test file has: busy checks walk every tree, as on a host with VMs running. */
const someLockHeld = (): Promise<ReadonlySet<string>> => Promise.resolve(new Set(['1']));

interface Logged {
  readonly event: string;
  readonly path?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly listed?: number;
}

function useLimitRoots(t: TestContext): TestRoots & { readonly logged: Logged[] } {
  const logged: Logged[] = [];
  const logger = createLogger<StoreEvent>({ write: (line) => logged.push(JSON.parse(line) as Logged) });
  return { ...useTestRoots(t, { logger, readLocks: someLockHeld }), logged };
}

/** `<root>/deep/tpm2/d/d/…` (`levels` d's) and `<root>/wide/tpm2/` with `files` files, beside a normal state. */
function makeTrees(root: string, levels: number, files: number): void {
  mkdirSync(join(root, 'ok', 'tpm2'), { recursive: true });
  writeFileSync(join(root, 'ok', 'tpm2', 'tpm2-00.permall'), 'fine');
  const chain = join(root, 'deep', 'tpm2', ...Array.from({ length: levels }, () => 'd'));
  mkdirSync(chain, { recursive: true });
  writeFileSync(join(chain, 'bottom'), 'x');
  mkdirSync(join(root, 'wide', 'tpm2'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(root, 'wide', 'tpm2', `f${i}`), '');
}

test('a 200-deep chain and a 20,000-entry directory: recovery goes on, other units are listed, both can be deleted', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  const r = roots.TpmState;
  makeTrees(r, 200, 20_000);
  const fds = openFds();

  assert.deepEqual(await store.recover(), { completed: 0, restored: 0, removed: 0, quarantined: 0 });
  const failed = logged.filter((l) => l.event === 'recovery_failed');
  // In the order the root lists them (a stream of its names, never sorted).
  assert.deepEqual(
    failed.map((l) => [l.path, l.message]).sort(),
    [
      [join(r, 'deep'), 'E2BIG (deeper than 16 levels)'],
      [join(r, 'wide'), 'E2BIG (more than 10000 entries)'],
    ].sort(),
  );
  assert.deepEqual(
    (await store.list('TpmState')).map((u) => u.path),
    [join(r, 'ok')],
    'the other unit is listed',
  );
  assert.deepEqual(
    logged.filter((l) => l.event === 'unit_unlisted').map((l) => l.path),
    [join(r, 'deep'), join(r, 'wide')],
  );
  const deep = await store.stat('TpmState', ['deep']);
  assert.equal(codeOf(deep), 'io_error');
  assert.match(messageOf(deep), /deeper than 16 levels/);
  const wide = await store.stat('TpmState', ['wide']);
  assert.equal(codeOf(wide), 'io_error');
  assert.match(messageOf(wide), /more than 10000 entries/);
  assert.match(messageOf(await store.read('TpmState', ['deep'])), /deeper than 16 levels/);
  assert.equal((await store.stat('TpmState', ['ok'])).status, 'present');

  assert.deepEqual(await store.remove('TpmState', ['deep']), { status: 'deleted' });
  assert.deepEqual(await store.remove('TpmState', ['wide']), { status: 'deleted' });
  assert.deepEqual(readdirSync(r), ['ok']);
  assert.equal(openFds(), fds, 'no descriptor left open');
});

test('a sparse file over the hashing cap (its owner makes one of any size in a moment) fails its unit alone, unread', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  const r = roots.TpmState;
  mkdirSync(join(r, 'ok', 'tpm2'), { recursive: true });
  writeFileSync(join(r, 'ok', 'tpm2', 'tpm2-00.permall'), 'fine');
  // A state directory whose main file is 2 GiB (and its owner could as well make it 16 TiB), and a file unit just
  // over the cap: neither takes any disk space.
  const inDir = join(r, 'big', 'tpm2', 'tpm2-00.permall');
  mkdirSync(join(r, 'big', 'tpm2'), { recursive: true });
  writeFileSync(inDir, '');
  truncateSync(inDir, 2 * 1024 ** 3);
  const file = join(r, 'big.fd');
  writeFileSync(file, '');
  truncateSync(file, MAX_HASHED_BYTES + 1);

  const listed = (await store.list('TpmState')).map((u) => u.path);
  assert.deepEqual(listed, [join(r, 'ok')], 'the other unit is listed');
  const unlisted = logged.filter((l) => l.event === 'unit_unlisted');
  assert.deepEqual(unlisted.map((l) => l.path).sort(), [join(r, 'big'), join(r, 'big.fd')]);
  for (const line of unlisted)
    assert.match(line.message ?? '', /^EFBIG \(a (file|state) over 1073741824 bytes is not read\)$/);
  for (const unit of ['big', 'big.fd']) {
    const stat = await store.stat('TpmState', [unit]);
    assert.equal(codeOf(stat), 'io_error', unit);
    assert.match(messageOf(stat), /EFBIG/);
  }
  // Nor is it read: a read answers the same at once (zeros gzip ~1000:1, so the answer's own limit would not stop it).
  for (const unit of [['big'], ['big', 'tpm2', 'tpm2-00.permall'], ['big.fd']]) {
    const read = await store.read('TpmState', unit);
    assert.equal(codeOf(read), 'io_error', unit.join('/'));
    assert.match(messageOf(read), /^EFBIG \(a (file|state) over 1073741824 bytes is not read\)$/);
  }
  // Many files each under the cap are counted together: a state of three 400 MiB sparse files is refused whole.
  const many = join(r, 'many', 'tpm2');
  mkdirSync(many, { recursive: true });
  for (const name of ['a', 'b', 'c']) {
    writeFileSync(join(many, name), '');
    truncateSync(join(many, name), 400 * 1024 ** 2);
  }
  for (const answer of [await store.stat('TpmState', ['many']), await store.read('TpmState', ['many'])]) {
    assert.equal(codeOf(answer), 'io_error');
    assert.match(messageOf(answer), /^EFBIG \(a state over 1073741824 bytes is not read\)$/);
  }
  assert.deepEqual(await store.remove('TpmState', ['many']), { status: 'deleted' });
  // A delete that must first compare a digest cannot: it fails and changes nothing. Without one, it deletes.
  assert.equal(codeOf(await store.remove('TpmState', ['big.fd'], 'a'.repeat(64))), 'io_error');
  assert.ok(existsSync(file));
  assert.deepEqual(await store.remove('TpmState', ['big.fd']), { status: 'deleted' });
  assert.deepEqual(await store.remove('TpmState', ['big']), { status: 'deleted' });
  assert.deepEqual(readdirSync(r), ['ok']);
});

test('busy is seen at any depth: a lock at the bottom of a 300-deep chain refuses its delete', async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const { roots, store } = useTestRoots(t);
  const chain = join(roots.TpmState, 'vm', ...Array.from({ length: 300 }, () => 'd'));
  mkdirSync(chain, { recursive: true });
  writeFileSync(join(chain, '.lock'), '');
  const lock = await holdFlock(t, join(chain, '.lock'));
  assert.equal(codeOf(await store.remove('TpmState', ['vm'])), 'busy');
  assert.ok(existsSync(join(chain, '.lock')));
  await lock.release();
  assert.deepEqual(await store.remove('TpmState', ['vm']), { status: 'deleted' });
  assert.deepEqual(readdirSync(roots.TpmState), []);
});

test('a read stops as soon as the answer is full, with a clear error', async (t) => {
  const { roots, store } = useTestRoots(t);
  const dir = join(roots.TpmState, 'vm');
  mkdirSync(dir);
  for (const name of ['a', 'b', 'c']) writeFileSync(join(dir, name), randomBytes(3 * 1024 * 1024));
  const full = await store.read('TpmState', ['vm'], 5_000_000);
  assert.equal(codeOf(full), 'io_error');
  assert.match(messageOf(full), /the answer is full/);
  const file = await store.read('TpmState', ['vm', 'a'], 1_000_000);
  assert.match(messageOf(file), /the answer is full/);
  const read = await store.read('TpmState', ['vm'], 13_000_000);
  assert.ok(read.status === 'read' && read.kind === 'dir' && read.entries.length === 3);
});

test('a listing reads at most its budget of names from a root: a root of more is listed in part, and says so', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  for (let i = 0; i < 7; i++) writeFileSync(join(roots.NvRam, `vm-${i}_VARS.fd`), `vars ${i}`);
  const budget = listBudget({ names: 5 });
  const listed = await store.list('NvRam', budget);
  assert.equal(listed.length, 5, 'five of the seven names read');
  assert.ok(
    listed.every((u) => u.size > 0 && u.sha256.length === 64),
    'each one listed is described in full',
  );
  assert.equal(budget.truncated, true);
  const line = logged.find((l) => l.event === 'listing_truncated');
  assert.deepEqual([line?.reason, line?.listed], ['names', 5]);

  const whole = listBudget({ names: 7 });
  assert.equal((await store.list('NvRam', whole)).length, 7);
  assert.equal(whole.truncated, false, 'a root of exactly the budget is whole');
  assert.equal(MAX_LISTED_NAMES, 5_000);
});

test('a listing hashes at most its budget of bytes, its roots together: past it, nothing more is read', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  for (const name of ['a', 'b', 'c']) writeFileSync(join(roots.NvRam, name), Buffer.alloc(10, name));
  writeFileSync(join(roots.TpmState, 'd'), Buffer.alloc(10, 'd'));
  // 15 bytes: 'a' leaves 5, 'b' is hashed (the budget is checked before a unit, not inside one), 'c' is not.
  const budget = listBudget({ names: 100, bytes: 15 });
  const nvram = await store.list('NvRam', budget);
  assert.deepEqual(
    nvram.map((u) => u.path),
    ['a', 'b'].map((name) => join(roots.NvRam, name)),
  );
  assert.deepEqual(await store.list('TpmState', budget), [], 'the other root shares what is left: nothing');
  assert.equal(budget.truncated, true);
  assert.deepEqual(
    logged.filter((l) => l.event === 'listing_truncated').map((l) => l.reason),
    ['bytes', 'bytes'],
  );
});

/** A listing given 250 ms that listed only `first` before its time was up, marked truncated and logged so. */
function cutByTime(
  listed: readonly { path: string }[],
  budget: ListBudget,
  logged: readonly Logged[],
  first: string,
): void {
  assert.deepEqual(
    listed.map((u) => u.path),
    [first],
    'what was listed before the time was up',
  );
  assert.equal(budget.truncated, true);
  const line = logged.find((l) => l.event === 'listing_truncated') as (Logged & { limit?: number }) | undefined;
  assert.deepEqual([line?.reason, line?.listed, line?.limit], ['time', 1, 250]);
}

test('a listing given a time stops when it is up, inside the file it is hashing, and says so', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  writeFileSync(join(roots.NvRam, 'a'), 'small');
  // 1 GiB of holes, as the QEMU user makes in a moment: more than half a second to read and hash on any machine.
  closeSync(openSync(join(roots.NvRam, 'b'), 'w'));
  truncateSync(join(roots.NvRam, 'b'), MAX_HASHED_BYTES);
  writeFileSync(join(roots.NvRam, 'c'), 'small');
  const budget = listBudget({ withinMs: 250 });
  const read = bytesReadByThisProcess();
  const listed = await store.list('NvRam', budget);
  const readWhileListing = bytesReadByThisProcess() - read;
  budget.finish();
  cutByTime(listed, budget, logged, join(roots.NvRam, 'a'));
  assert.deepEqual(
    logged.filter((l) => l.event === 'unit_unlisted'),
    [],
    'the unit it was hashing is left out with the rest, not as a failure',
  );
  assert.ok(
    readWhileListing < MAX_HASHED_BYTES / 2,
    `stopped inside the file, not after it: ${readWhileListing} bytes read of its ${MAX_HASHED_BYTES}`,
  );
});

// No watchdog of its own: with the wait not cut short, the listing waits for the write held below, and the test
// fails on its timeout.
test(
  'a listing out of time while it waits for a unit an op holds stops there; the op and the next listing go on',
  { timeout: 20_000 },
  async (t) => {
    const { roots, store, logged } = useLimitRoots(t);
    for (const name of ['a', 'b', 'c']) writeFileSync(join(roots.NvRam, name), 'small');
    // A write to `b` whose journal record never becomes durable holds b's lock (it waits for the record under it).
    let recorded = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      recorded = resolve;
    });
    const write = store.write('NvRam', ['b'], Buffer.from('new'), undefined, { gate });
    // The budget's timer does not hold the process open (the agent's server does): this test's handle stands in.
    const open = setInterval(() => undefined, 1000);
    t.after(() => {
      clearInterval(open);
    });
    const budget = listBudget({ withinMs: 250 });
    const listed = await store.list('NvRam', budget);
    budget.finish();
    cutByTime(listed, budget, logged, join(roots.NvRam, 'a'));
    recorded();
    assert.equal((await write).status, 'written', 'the op that held the unit is not disturbed');
    assert.deepEqual(
      (await store.list('NvRam')).map((u) => [u.path, u.size]),
      [
        [join(roots.NvRam, 'a'), 5],
        [join(roots.NvRam, 'b'), 3],
        [join(roots.NvRam, 'c'), 5],
      ],
      'the next listing waits for nobody',
    );
  },
);

test('a listing whose budget was finished (the other root of its command failed) stops: nothing more is hashed, nothing logged as cut short', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  writeFileSync(join(roots.NvRam, 'a'), 'small');
  const budget = listBudget({ withinMs: 60_000 });
  budget.finish();
  assert.deepEqual(await store.list('NvRam', budget), []);
  assert.equal(budget.truncated, true);
  assert.deepEqual(
    logged.filter((l) => l.event === 'listing_truncated'),
    [],
    'not out of time: the request failed, and nobody reads this answer',
  );
});

test('a root of many names is read only as far as the budget: the listing stops reading there', async (t) => {
  const { roots, store } = useLimitRoots(t);
  // Empty files, as the QEMU user can make in the NvRam root (millions of them): 3,000 here, read 128 at a time.
  for (let i = 0; i < 3000; i++) closeSync(openSync(join(roots.NvRam, `junk-${i}`), 'w'));
  const budget = listBudget({ names: 500 });
  const listed = await store.list('NvRam', budget);
  assert.equal(listed.length, 500);
  assert.equal(budget.truncated, true);
});

test('a unit that fails is counted as a whole state against the bytes budget: failing units cannot make a listing hash without bound', async (t) => {
  const { roots, store, logged } = useLimitRoots(t);
  // Each refused on its size (never read); a directory of two 600 MiB files would be refused after hashing one.
  for (const name of ['a', 'b', 'c']) {
    mkdirSync(join(roots.NvRam, name));
    writeFileSync(join(roots.NvRam, name, 'vars'), '');
    truncateSync(join(roots.NvRam, name, 'vars'), MAX_HASHED_BYTES + 1);
  }
  const budget = listBudget({ bytes: MAX_HASHED_BYTES + 1 });
  assert.deepEqual(await store.list('NvRam', budget), []);
  assert.equal(budget.truncated, true);
  assert.deepEqual(
    logged.filter((l) => l.event === 'unit_unlisted').map((l) => l.path),
    ['a', 'b'].map((name) => join(roots.NvRam, name)),
    'two units tried: the budget held one state and a byte',
  );
});
