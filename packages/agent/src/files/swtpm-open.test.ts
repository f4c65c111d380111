// Which files running swtpms keep their state in, read from command lines under a /proc made for the test; and the
// store's ops and looks on a file unit a swtpm runs on. The real swtpm is in test/src/agent-swtpm.test.ts.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
  type BigIntStats,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { swtpmFileState, swtpmStates, type LookedAt } from './swtpm-open.js';
import { useTestRoots } from './test-roots.js';

const argv = (...args: string[]): Buffer => Buffer.from(`${args.join('\0')}\0`);

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-swtpm-open-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A /proc of the given processes' command lines (a process without one has ended). */
function fakeProc(dir: string, processes: Record<string, Buffer | undefined>): string {
  const proc = join(dir, 'proc');
  mkdirSync(proc, { recursive: true });
  writeFileSync(join(proc, 'locks'), '');
  for (const [pid, cmdline] of Object.entries(processes)) {
    mkdirSync(join(proc, pid));
    if (cmdline !== undefined) writeFileSync(join(proc, pid, 'cmdline'), cmdline);
  }
  return proc;
}

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
  const states = await swtpmStates(proc)();
  assert.equal(states(looked(state)), true, 'named, in another form');
  assert.equal(states(looked(linked)), true, 'the same inode under another name');
  assert.equal(states(looked(other)), false, 'no swtpm runs on it (a directory state names no file)');
  assert.equal(states({ stats: looked(other).stats, path: join(dir, 'gone.tpm') }), true, 'named, though not there');
});

test('swtpmStates: none running answers free; a look that cannot be made answers busy for every file', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state');
  assert.equal((await swtpmStates(fakeProc(dir, { '7': argv('bash') }))())(looked(file)), false);
  // /proc not a directory (unreadable as one): no proof of free.
  assert.equal((await swtpmStates(file)())(looked(file)), true);
  // A relative state file is looked for in swtpm's working directory: one the look cannot resolve (a loop here;
  // EACCES without ptrace access on a host) answers busy; one it can, by what is there.
  const relative = argv('swtpm', 'socket', '--tpmstate', 'backend-uri=file://vm.tpm');
  const looping = fakeProc(join(dir, 'p2'), { '9': relative });
  symlinkSync(join(looping, '9', 'cwd'), join(looping, '9', 'cwd'));
  assert.equal((await swtpmStates(looping)())(looked(file)), true, 'cannot tell: busy');
  const resolved = fakeProc(join(dir, 'p3'), { '9': relative });
  symlinkSync(dir, join(resolved, '9', 'cwd'));
  assert.equal((await swtpmStates(resolved)())(looked(file)), true, 'its working directory holds this very file');
  writeFileSync(join(dir, 'elsewhere.tpm'), 'state');
  assert.equal((await swtpmStates(resolved)())(looked(join(dir, 'elsewhere.tpm'))), false, 'another file');
});

test('swtpmStates: only a swtpm whose user could open the file for writing counts: root, its owner, its group, anyone', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'vm.tpm');
  writeFileSync(file, 'state', { mode: 0o600 });
  const proc = fakeProc(dir, { '300': argv('swtpm', 'socket', '--tpmstate', `backend-uri=file://${file}`) });
  chownSync(join(proc, '300'), 65534, 65534); // a process of nobody's, named swtpm, naming the file
  assert.equal((await swtpmStates(proc)())(looked(file)), false, "nobody's process: not the root-owned file's swtpm");
  chmodSync(file, 0o660);
  chownSync(file, 0, 65534);
  assert.equal((await swtpmStates(proc)())(looked(file)), true, "a file its group may write: nobody's group's");
  chmodSync(file, 0o600);
  chownSync(file, 65534, 65534);
  assert.equal((await swtpmStates(proc)())(looked(file)), true, "once the file is nobody's, it could be");
});

test('the store: a file unit of the TPM state root a swtpm runs on is busy for write, delete, stat and busy', async (t) => {
  let running = true;
  const { roots, store } = useTestRoots(t, {
    swtpms: () => Promise.resolve((file) => running && file.path.endsWith('/vm.tpm')),
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
      return Promise.resolve((file) => now > 1 && file.path.endsWith('/vm.tpm'));
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
