// Which files running swtpms keep their state in, read from command lines under a /proc made for the test; and the
// store's ops and looks on a file unit a swtpm runs on. The real swtpm is in test/src/agent-swtpm.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  openSync,
  renameSync,
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  type BigIntStats,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  RESCAN_MS,
  swtpmFileState,
  swtpmStates,
  withSwtpmStates,
  type LookAtSwtpms,
  type LookedAt,
  type SwtpmStates,
} from './swtpm-open.js';
import { roleName } from './temp-name.js';
import { treeOf, useTestRoots } from './test-roots.js';

const argv = (...args: string[]): Buffer => Buffer.from(`${args.join('\0')}\0`);

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-swtpm-open-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Process `pid` of a /proc made for a test runs `cmdline` (after an exec): its command line, and its name in its `stat`. */
function runs(proc: string, pid: string, cmdline: Buffer): void {
  mkdirSync(join(proc, pid), { recursive: true });
  writeFileSync(join(proc, pid, 'cmdline'), cmdline);
  const name = basename(cmdline.toString().split('\0')[0] ?? '').slice(0, 15);
  // As the kernel writes it: `pid (name) state ppid pgrp session tty tpgid flags …`, flags without PF_KTHREAD.
  writeFileSync(
    join(proc, pid, 'stat'),
    `${pid} (${name}) S 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1\n`,
  );
}

/** A /proc of the given processes' command lines (a process without one has ended). */
function fakeProc(dir: string, processes: Record<string, Buffer | undefined>): string {
  const proc = join(dir, 'proc');
  mkdirSync(proc, { recursive: true });
  writeFileSync(join(proc, 'locks'), '');
  for (const [pid, cmdline] of Object.entries(processes)) {
    mkdirSync(join(proc, pid));
    if (cmdline !== undefined) runs(proc, pid, cmdline);
  }
  return proc;
}

/** A look that finds swtpms by path only, as `runsOn` says: no inode counted as locked. */
const byPath = (runsOn: SwtpmStates['runsOn']): SwtpmStates => ({ inodes: new Set(), runsOn });

const looked = (path: string): LookedAt => {
  const stats: BigIntStats = statSync(path, { bigint: true });
  return { stats, path };
};

test('swtpmFileState: the file of a file:// state, nothing for a directory state or another program', () => {
  assert.equal(
    swtpmFileState(argv('swtpm', 'socket', '--tpmstate', 'backend-uri=file:///s/vm.tpm,mode=0600')),
    '/s/vm.tpm',
  );
  assert.equal(
    swtpmFileState(argv('/usr/bin/swtpm', 'chardev', '--tpm2', '--tpmstate=backend-uri=file://rel.tpm')),
    'rel.tpm',
  );
  assert.equal(swtpmFileState(argv('swtpm', 'socket', '--tpmstate', 'dir=/s/uuid/tpm2,mode=0600')), undefined);
  assert.equal(swtpmFileState(argv('swtpm', 'socket', '--tpmstate', 'backend-uri=dir:///s/uuid/tpm2')), undefined);
  assert.equal(swtpmFileState(argv('qemu-system-x86_64', '--tpmstate', 'backend-uri=file:///s/vm.tpm')), undefined);
  assert.equal(swtpmFileState(argv('swtpm', 'socket', '--tpmstate')), undefined, 'no value: nothing');
  assert.equal(swtpmFileState(Buffer.alloc(0)), undefined, 'a kernel thread has no command line');
});

test('swtpmStates: a file is a swtpm state by its path, in any form, or by its device and inode', async (t) => {
  const dir = tempDir(t);
  const state = join(dir, 'vm.tpm');
  const other = join(dir, 'other.tpm');
  const linked = join(dir, 'linked.tpm');
  for (const path of [state, other, linked]) writeFileSync(path, 'state');
  const sameInode = join(dir, 'hard-link.tpm');
  linkSync(linked, sameInode);
  const proc = fakeProc(dir, {
    '100': argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${dir}//./vm.tpm,mode=0600`),
    '101': argv('/usr/bin/swtpm', 'socket', `--tpmstate=backend-uri=file://${sameInode}`),
    '102': argv('swtpm', 'socket', '--tpmstate', `dir=${dir}`),
    '103': argv('sleep', '100'),
    '104': undefined,
    '105': argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${join(dir, 'gone.tpm')}`),
  });
  const { runsOn: states } = await swtpmStates(proc)();
  assert.equal(states(looked(state)), true, 'named, in another form');
  assert.equal(states(looked(linked)), true, 'the same inode under another name');
  assert.equal(states(looked(other)), false, 'no swtpm runs on it (a directory state names no file)');
  assert.equal(states({ stats: looked(other).stats, path: join(dir, 'gone.tpm') }), true, 'named, though not there');
  // As locked inodes: the two files found at the paths named, not the one no swtpm names, nor the missing one.
  const { inodes } = await swtpmStates(proc)();
  assert.deepEqual([...inodes].sort(), [state, linked].map((path) => String(statSync(path).ino)).sort());
});

test('swtpmStates: none running answers free; a look that cannot be made rejects; an unseen relative path is busy', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state');
  const none = await swtpmStates(fakeProc(dir, { '7': argv('bash') }))();
  assert.equal(none.runsOn(looked(file)), false);
  assert.equal(none.inodes.size, 0);
  // /proc not a directory (unreadable as one): no proof of free, and the op that asked fails (io_error).
  await assert.rejects(swtpmStates(file)(), {
    name: 'OpIoError',
    message: `cannot tell which files running swtpms keep their state in: ENOTDIR reading ${file}`,
  });
  // A relative state file is looked for in swtpm's working directory: one the look cannot resolve (a loop here;
  // EACCES without ptrace access on a host) answers busy; one it can, by what is there.
  const relative = argv('swtpm', 'socket', '--tpmstate', 'backend-uri=file://vm.tpm');
  const looping = fakeProc(join(dir, 'p2'), { '9': relative });
  symlinkSync(join(looping, '9', 'cwd'), join(looping, '9', 'cwd'));
  assert.equal((await swtpmStates(looping)()).runsOn(looked(file)), true, 'cannot tell: busy');
  const resolved = fakeProc(join(dir, 'p3'), { '9': relative });
  symlinkSync(dir, join(resolved, '9', 'cwd'));
  assert.equal(
    (await swtpmStates(resolved)()).runsOn(looked(file)),
    true,
    'its working directory holds this very file',
  );
  writeFileSync(join(dir, 'elsewhere.tpm'), 'state');
  assert.equal((await swtpmStates(resolved)()).runsOn(looked(join(dir, 'elsewhere.tpm'))), false, 'another file');
});

test('swtpmStates: only a swtpm whose user could open the file for writing counts: root, its owner, its group, anyone', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state', { mode: 0o600 });
  const proc = fakeProc(dir, { '300': argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${file}`) });
  chownSync(join(proc, '300'), 65534, 65534); // a process of nobody's, named swtpm, naming the file
  const nobodys = await swtpmStates(proc)();
  assert.equal(nobodys.runsOn(looked(file)), false, "nobody's process: not the root-owned file's swtpm");
  assert.equal(nobodys.inodes.size, 0, 'nor its inode counted as locked');
  chmodSync(file, 0o660);
  chownSync(file, 0, 65534);
  assert.equal((await swtpmStates(proc)()).runsOn(looked(file)), true, "a file its group may write: nobody's group's");
  chmodSync(file, 0o600);
  chownSync(file, 65534, 65534);
  const theirs = await swtpmStates(proc)();
  assert.equal(theirs.runsOn(looked(file)), true, "once the file is nobody's, it could be");
  assert.deepEqual([...theirs.inodes], [String(statSync(file).ino)]);
});

test('the store: a file unit of the TPM state root a swtpm runs on is busy for write, delete, stat and busy', async (t) => {
  let running = true;
  const { roots, store } = useTestRoots(t, {
    swtpms: () => Promise.resolve(byPath((file) => running && file.path.endsWith('/vm.tpm'))),
  });
  const state = join(roots.TpmState, 'vm.tpm');
  writeFileSync(state, 'swtpm state');
  const inode = statSync(state).ino;
  assert.equal((await store.write('TpmState', ['vm.tpm'], Buffer.from('other'))).status, 'failed');
  assert.equal((await store.remove('TpmState', ['vm.tpm'])).status, 'failed');
  assert.deepEqual(await store.busy('TpmState', ['vm.tpm']), { status: 'present', kind: 'file', busy: true });
  const stat = await store.stat('TpmState', ['vm.tpm']);
  assert.ok(stat.status === 'present' && stat.busy);
  // A listing asks once for all its units; a state directory beside it is no swtpm file state.
  mkdirSync(join(roots.TpmState, 'dir-state'));
  writeFileSync(join(roots.TpmState, 'dir-state', 'tpm2-00.permall'), 'state');
  const listed = await store.list('TpmState');
  assert.deepEqual(
    listed.map((u) => [u.path.slice(roots.TpmState.length + 1), u.busy]),
    [
      ['dir-state', false],
      ['vm.tpm', true],
    ],
  );
  assert.equal(statSync(state).ino, inode, 'the same file, untouched');
  assert.deepEqual(readdirSync(roots.TpmState).sort(), ['dir-state', 'vm.tpm'], 'nothing left beside them');
  // An NVRAM file of the same name is no swtpm's: the look is for the TPM state root only.
  writeFileSync(join(roots.NvRam, 'vm.tpm'), 'variables');
  assert.equal((await store.remove('NvRam', ['vm.tpm'])).status, 'deleted');
  running = false;
  assert.equal((await store.remove('TpmState', ['vm.tpm'])).status, 'deleted');
});

test('the store: a swtpm that starts on the file between the look and the move aside: put back, busy', async (t) => {
  let looks = 0;
  const { roots, store } = useTestRoots(t, {
    // Free at the look before the move, busy at the look after it: the file goes back to its name.
    swtpms: () => {
      looks += 1;
      const now = looks;
      return Promise.resolve(byPath((file) => now > 1 && file.path.endsWith('/vm.tpm')));
    },
  });
  const state = join(roots.TpmState, 'vm.tpm');
  writeFileSync(state, 'swtpm state');
  const inode = statSync(state).ino;
  const answer = await store.remove('TpmState', ['vm.tpm']);
  assert.equal(answer.status === 'failed' && answer.error.code, 'busy');
  assert.equal(looks, 2, 'looked before and after the move');
  assert.equal(statSync(state).ino, inode, 'back at its name');
  assert.deepEqual(readdirSync(roots.TpmState), ['vm.tpm']);
});

test('swtpmStates: a process is read at every look while young (a fork about to exec), then once every RESCAN_MS', async (t) => {
  const dir = tempDir(t);
  const [first, second] = [join(dir, 'first.tpm'), join(dir, 'second.tpm')];
  for (const path of [first, second]) writeFileSync(path, 'state');
  const inodeOf = (path: string): string => String(statSync(path).ino);
  const proc = fakeProc(dir, { '10': argv('bash') });
  let clock = 0;
  const look = swtpmStates(proc, { now: () => clock });
  assert.equal((await look()).inodes.size, 0);
  // A process seen a moment ago execs swtpm (libvirt's child, set up, then exec'd): seen at the next look.
  clock = 1;
  runs(proc, '10', argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${first}`));
  assert.deepEqual([...(await look()).inodes], [inodeOf(first)], 'young: read again at once');
  // A process seen RESCAN_MS ago and more is read again only RESCAN_MS after its last read.
  runs(proc, '11', argv('bash'));
  clock = 2;
  await look();
  clock = 2 + RESCAN_MS;
  await look(); // 11 read as it is once no longer young
  runs(proc, '11', argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${second}`));
  clock = 2 + 2 * RESCAN_MS - 1;
  assert.deepEqual([...(await look()).inodes], [inodeOf(first)], 'old, read less than RESCAN_MS ago: not yet');
  clock = 2 + 2 * RESCAN_MS;
  const both = (await look()).inodes;
  assert.deepEqual([...both].sort(), [inodeOf(first), inodeOf(second)].sort(), 'read again once RESCAN_MS passed');
  assert.equal((await look()).inodes, both, 'the same Set while the same swtpms run on the same files');
  // Process 11 ends: its state is free at the next look.
  rmSync(join(proc, '11'), { recursive: true });
  assert.deepEqual([...(await look()).inodes], [inodeOf(first)]);
  // Only programs named swtpm have their command line read (another process's takes its memory map's lock).
  runs(proc, '12', argv('swtpm-wrapper', '--tpmstate', `backend-uri=file://${second}`));
  writeFileSync(join(proc, '12', 'cmdline'), argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${second}`));
  assert.deepEqual([...(await look()).inodes], [inodeOf(first)], 'named swtpm-wrapper: its command line unread');
});

test("withSwtpmStates: the locks' own Set while no swtpm runs on a file; else their union, the same while both stay", async () => {
  const locks = new Set(['1']);
  let inodes: ReadonlySet<string> = new Set();
  const read = withSwtpmStates(
    () => Promise.resolve(locks),
    () => Promise.resolve({ inodes, runsOn: () => false }),
  );
  assert.equal(await read(), locks);
  inodes = new Set(['2']);
  const union = await read();
  assert.deepEqual([...union].sort(), ['1', '2']);
  assert.equal(await read(), union, 'both unchanged: the same union');
  inodes = new Set(['3']);
  assert.deepEqual([...(await read())].sort(), ['1', '3']);
  // A look made at once that found no swtpm: the locks as read, and no look waited for.
  let looks = 0;
  const none: SwtpmStates = { inodes: new Set(), runsOn: () => false };
  const atOnce = withSwtpmStates(
    () => Promise.resolve(locks),
    Object.assign(
      () => {
        looks += 1;
        return Promise.resolve(none);
      },
      { peek: () => none },
    ),
  );
  assert.equal(await atOnce(), locks);
  assert.equal(looks, 0);
});

test('the store: a state file a swtpm runs on deep in a unit makes that unit busy for every op and look, until swtpm ends', async (t) => {
  const dir = tempDir(t);
  let look: LookAtSwtpms = () => Promise.reject(new Error('no look yet'));
  const { roots, store } = useTestRoots(t, { swtpms: () => look() });
  // Proxmox's layout: a VM's directory, its TPM state one file in it (a volume), which swtpm's file backend locks not.
  const vm = join(roots.TpmState, '100');
  mkdirSync(vm);
  const state = join(vm, 'vm-100-disk-1.raw');
  writeFileSync(state, 'swtpm state');
  writeFileSync(join(vm, 'vm-100-disk-0.raw'), 'beside it');
  mkdirSync(join(roots.TpmState, '101'));
  writeFileSync(join(roots.TpmState, '101', 'vm-101-disk-1.raw'), 'no swtpm runs on it');
  const proc = fakeProc(dir, {
    '500': argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${state}`, '--tpm2'),
    '501': argv('bash'),
  });
  look = swtpmStates(proc);
  const inode = statSync(state).ino;
  const busyCode = (answer: { status: string; error?: { code: string } }): string | undefined =>
    answer.status === 'failed' ? answer.error?.code : answer.status;
  assert.equal(busyCode(await store.write('TpmState', ['100', 'vm-100-disk-1.raw'], Buffer.from('x'))), 'busy');
  assert.equal(busyCode(await store.write('TpmState', ['100', 'vm-100-disk-0.raw'], Buffer.from('x'))), 'busy');
  assert.equal(busyCode(await store.remove('TpmState', ['100', 'vm-100-disk-1.raw'])), 'busy');
  assert.equal(busyCode(await store.remove('TpmState', ['100'])), 'busy');
  assert.equal(
    busyCode(
      await store.writeDir('TpmState', ['100'], [{ components: ['vm-100-disk-1.raw'], content: Buffer.from('x') }]),
    ),
    'busy',
  );
  assert.deepEqual(await store.busy('TpmState', ['100']), { status: 'present', kind: 'dir', busy: true });
  const stat = await store.stat('TpmState', ['100']);
  assert.ok(stat.status === 'present' && stat.busy);
  assert.deepEqual(
    (await store.list('TpmState')).map((u) => [u.path.slice(roots.TpmState.length + 1), u.busy]),
    [
      ['100', true],
      ['101', false],
    ],
  );
  assert.equal(statSync(state).ino, inode, 'the same file, untouched');
  assert.deepEqual(treeOf(roots.TpmState), [
    '100',
    '100/vm-100-disk-0.raw',
    '100/vm-100-disk-1.raw',
    '101',
    '101/vm-101-disk-1.raw',
  ]);
  // Another VM's unit is not held up.
  assert.equal(busyCode(await store.remove('TpmState', ['101'])), 'deleted');
  // The same inode under the NVRAM root is no swtpm's concern: its ops count locks only.
  writeFileSync(join(roots.NvRam, 'vars.fd'), 'variables');
  assert.equal(busyCode(await store.remove('NvRam', ['vars.fd'])), 'deleted');
  rmSync(join(proc, '500'), { recursive: true });
  assert.equal(busyCode(await store.remove('TpmState', ['100'])), 'deleted', 'swtpm ended: free');
});

test('the store: recovery keeps a leftover that holds a running swtpm state file', async (t) => {
  const dir = tempDir(t);
  let look: LookAtSwtpms = () => Promise.reject(new Error('no look yet'));
  const { roots, store } = useTestRoots(t, { swtpms: () => look() });
  // An interrupted delete's leftover, a swtpm running on a file in it (it named the leftover's path).
  const leftover = join(roots.TpmState, roleName('del', '100') ?? '');
  mkdirSync(leftover);
  const state = join(leftover, 'vm-100-disk-1.raw');
  writeFileSync(state, 'swtpm state');
  look = swtpmStates(fakeProc(dir, { '600': argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${state}`) }));
  const report = await store.recover();
  assert.equal(report.removed, 0);
  assert.equal(report.restored, 1, 'put back at its name, as a leftover someone holds');
  assert.deepEqual(treeOf(roots.TpmState), ['100', '100/vm-100-disk-1.raw']);
});

test("swtpmStates: /proc is listed again only once a pid was given out since (loadavg's last field) or a process is due", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state');
  const inode = String(statSync(file).ino);
  const swtpm = argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${file}`);
  const proc = fakeProc(dir, { '20': argv('bash') });
  const lastPid = (pid: number): void => {
    writeFileSync(join(proc, 'loadavg'), `0.00 0.01 0.05 1/99 ${pid}\n`);
  };
  lastPid(20);
  let clock = 0;
  const look = swtpmStates(proc, { now: () => clock });
  const { peek } = look;
  assert.ok(peek !== undefined, 'the look can be made at once');
  await look(); // 20 first seen: young, read at every look for RESCAN_MS
  clock = RESCAN_MS;
  const first = await look(); // 20 read again, no longer young
  // A process put in this /proc though no pid was given out (on a host it could not be): /proc is not listed.
  runs(proc, '21', swtpm);
  clock = RESCAN_MS + 1;
  assert.equal(await look(), first, 'the same answer: nothing listed, nothing read');
  assert.equal(peek(), first, 'and made at once: no swtpm was running');
  lastPid(21);
  assert.equal(peek(), undefined, 'a pid given out: not at once');
  assert.deepEqual([...(await look()).inodes], [inode], 'a pid given out: listed, and the new swtpm found');
  assert.equal(peek(), undefined, 'a swtpm running: never at once (it may have ended)');
  // The swtpm ends, and no pid is given out: the swtpms seen are still looked at each time.
  rmSync(join(proc, '21'), { recursive: true });
  assert.equal((await look()).inodes.size, 0, 'gone: its file is free');
  // Process 20 execs swtpm, no pid given out: it is read again RESCAN_MS after its last read, not before.
  runs(proc, '20', swtpm);
  clock = 2 * RESCAN_MS - 1;
  assert.equal((await look()).inodes.size, 0, 'not due yet');
  clock = 2 * RESCAN_MS;
  assert.deepEqual([...(await look()).inodes], [inode], 'due: read again');
  // Pid 40, from an earlier round of pids, is seen; it ends, and the kernel gives 40 out again, to a swtpm. A pid
  // given out between two listings' last pids is a new process, read whatever was seen of that pid before.
  const other = join(dir, 'other.tpm');
  writeFileSync(other, 'state');
  runs(proc, '40', argv('bash'));
  lastPid(22);
  clock = 2 * RESCAN_MS + 1;
  await look(); // 40 first seen
  clock = 3 * RESCAN_MS + 2;
  await look(); // 40 read again, no longer young: the next looks take it as read
  runs(proc, '40', argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${other}`));
  lastPid(45);
  clock = 3 * RESCAN_MS + 3;
  assert.deepEqual(
    [...(await look()).inodes].sort(),
    [inode, String(statSync(other).ino)].sort(),
    'pid 40 given out again (22 → 45): read anew, though read 1 ms before',
  );
});

test("swtpmStates: a swtpm's command line that does not come (its memory map's lock kept) fails the look, one read at most", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state');
  const proc = fakeProc(dir, { '50': argv('swtpm') });
  // A FIFO no one writes: its read waits, as one of a command line whose process keeps its memory map locked.
  const cmdline = join(proc, '50', 'cmdline');
  rmSync(cmdline);
  execFileSync('mkfifo', [cmdline]);
  const release = (): void => {
    try {
      closeSync(openSync(cmdline, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // No reader left (ENXIO): nothing waits on it.
    }
  };
  t.after(release);
  const look = swtpmStates(proc, { waitMs: 50 });
  const late = {
    name: 'OpIoError',
    message:
      'cannot tell which files running swtpms keep their state in: the command line of process 50 (named swtpm) did not come in 50 ms',
  };
  await assert.rejects(look(), late);
  assert.equal(look.peek?.(), undefined);
  // While that read has not come back, every look fails at once, reading nothing more.
  const started = performance.now();
  await assert.rejects(look(), late);
  assert.ok(performance.now() - started < 50, 'no second wait');
  // The read comes back (EOF once a writer has come and gone): the next look reads again, and finds the swtpm.
  release();
  writeFileSync(`${cmdline}.new`, argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${file}`));
  renameSync(`${cmdline}.new`, cmdline);
  for (let tries = 0; ; tries++) {
    try {
      assert.deepEqual([...(await look()).inodes], [String(statSync(file).ino)]);
      break;
    } catch (error) {
      if (tries > 10_000 || (error as Error).name !== 'OpIoError') throw error;
      await new Promise(setImmediate);
    }
  }
});

/** Process `pid` of a /proc made for a test started `ticks` hundredths of a second after boot (its stat's 22nd field). */
function startedAt(proc: string, pid: string, ticks: number): void {
  const path = join(proc, pid, 'stat');
  writeFileSync(path, readFileSync(path, 'latin1').replace(/ \d+\n$/, ` ${ticks}\n`));
}

test('swtpmStates: a process is young by its start time (proc/uptime), not by when a look first saw it', async (t) => {
  const dir = tempDir(t);
  const files = { old: join(dir, 'old.tpm'), young: join(dir, 'young.tpm'), aging: join(dir, 'aging.tpm') };
  for (const path of Object.values(files)) writeFileSync(path, 'state');
  const inodeOf = (path: string): string => String(statSync(path).ino);
  // Booted 1,000 s ago. 20 started 999 s ago, 21 half a second ago, 22 0.9 s ago; no pid given out from here on.
  const proc = fakeProc(dir, { '20': argv('bash'), '21': argv('bash'), '22': argv('bash') });
  writeFileSync(join(proc, 'uptime'), '1000.00 1900.00\n');
  writeFileSync(join(proc, 'loadavg'), '0.00 0.01 0.05 1/99 22\n');
  const starts = { '20': 100, '21': 99_950, '22': 99_910 };
  for (const [pid, ticks] of Object.entries(starts)) startedAt(proc, pid, ticks);
  // A name may hold `) ` (a process names itself): the fields are counted from the last `)`.
  writeFileSync(join(proc, '21', 'stat'), '21 (x) S 1 (y) R) S 1 21 21 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99950\n');
  let clock = 0;
  const look = swtpmStates(proc, { now: () => clock });
  assert.equal((await look()).inodes.size, 0);
  const exec = (pid: '20' | '21' | '22', path: string): void => {
    runs(proc, pid, argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${path}`));
    startedAt(proc, pid, starts[pid]);
  };
  // 20 and 21 exec swtpm: 21, half a second old, is read again at the next look; 20, first seen by the look a moment
  // ago but 999 s old, is not (before, every process seen at an agent's start was read at every look for a second).
  exec('20', files.old);
  exec('21', files.young);
  clock = 1;
  assert.deepEqual([...(await look()).inodes], [inodeOf(files.young)], 'the young one at once, the old one not yet');
  // 22 was 0.9 s old at the first look: 0.2 s later it is no longer young, and its exec waits for its next read.
  clock = 200;
  exec('22', files.aging);
  assert.deepEqual([...(await look()).inodes], [inodeOf(files.young)], 'past its first second: not read again yet');
  clock = RESCAN_MS;
  const all = [...(await look()).inodes].sort();
  assert.deepEqual(all, Object.values(files).map(inodeOf).sort(), 'every process read again RESCAN_MS after its read');
});

test('swtpmStates: with no pid given out, a young process that execs swtpm is found; a kernel thread is read once', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state');
  const swtpm = argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${file}`);
  const proc = fakeProc(dir, { '70': argv('libvirtd') });
  // A kernel thread: PF_KTHREAD in its flags, no command line.
  mkdirSync(join(proc, '71'));
  writeFileSync(join(proc, '71', 'stat'), '71 (kworker/u4:2) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 1\n');
  writeFileSync(join(proc, 'loadavg'), '0.00 0.01 0.05 1/99 71\n');
  let clock = 0;
  const look = swtpmStates(proc, { now: () => clock });
  const { peek } = look;
  assert.ok(peek !== undefined);
  const first = await look();
  assert.equal(peek(), first, "nothing has exec'd since: made at once");
  // 70, a fork of a moment ago, execs swtpm: no pid given out, and the look sees it, not at once but by a look.
  runs(proc, '70', swtpm);
  clock = 5;
  assert.equal(peek(), undefined, 'a young process now named swtpm: its command line is to be read');
  assert.deepEqual([...(await look()).inodes], [String(statSync(file).ino)]);
  // The kernel thread is never read again (it never execs): rewritten here as if it had, it is still no swtpm.
  runs(proc, '71', swtpm);
  rmSync(join(proc, '70'), { recursive: true });
  assert.equal((await look()).inodes.size, 0, 'the swtpm ended; the kernel thread not read again');
});

test('the store: a unit found free under some lock is busy as soon as a swtpm starts on a file in it (no stale memo)', async (t) => {
  const dir = tempDir(t);
  // A lock held elsewhere on the host, the same Set at every read: busy checks walk, and remember units found free.
  const elsewhere: ReadonlySet<string> = new Set(['999999999']);
  let look: LookAtSwtpms = () => Promise.reject(new Error('no look yet'));
  const { roots, store } = useTestRoots(t, { readLocks: () => Promise.resolve(elsewhere), swtpms: () => look() });
  const vm = join(roots.TpmState, '100');
  mkdirSync(vm);
  const state = join(vm, 'vm-100-disk-1.raw');
  writeFileSync(state, 'state');
  const proc = fakeProc(dir, { '80': argv('bash') });
  look = swtpmStates(proc);
  // A write into the unit walks it under those locks and finds it free: the store remembers that for 2 s.
  assert.equal((await store.write('TpmState', ['100', 'notes'], Buffer.from('x'))).status, 'written');
  // Within those 2 s, under the same locks, a swtpm starts on the state file: the Set the next check walks against is
  // a new one, so the unit is walked again and found busy.
  runs(proc, '81', argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${state}`));
  const answer = await store.remove('TpmState', ['100', 'vm-100-disk-1.raw']);
  assert.equal(answer.status === 'failed' && answer.error.code, 'busy');
  assert.equal(statSync(state).isFile(), true);
  assert.deepEqual(await store.busy('TpmState', ['100']), { status: 'present', kind: 'dir', busy: true });
});
