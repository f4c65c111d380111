// A real swtpm on a real TPM state under a real agent: busy while it runs, a state copy that is the same vTPM.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { deleteOp, writeDirOp, writeOp, type ReadEntry } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { agentInfo, outcomes, send, type AgentClient } from './support/commands.js';
import {
  createTpmState,
  nvRead,
  nvWrite,
  readEkPublic,
  createTpmStateFile,
  startSwtpm,
  swtpmUnavailable,
  SWTPM_USER,
  type SwtpmHandle,
} from './support/swtpm.js';
import { skipWithout } from './support/real-tools.js';

const unavailable = swtpmUnavailable();
/**
 * The agent runs as its systemd unit runs it, as far as the unit's settings bear on seeing a swtpm: with no more
 * capabilities than it grants (CapabilityBoundingSet: no CAP_SYS_PTRACE, so it can't see another user's open files or
 * working directory), and with /proc mounted as its ProtectProc= mounts it (hidepid=, which hides other users'
 * processes from all but the proc mount's group, root's: the agent, as root, still sees swtpm's). What it finds
 * here, it finds on a host.
 */
const UNIT = readFileSync(new URL('../../packages/agent/systemd/hostfiles-agent.service', import.meta.url), 'utf8');
const PROTECT_PROC = /^ProtectProc=(\w+)$/m.exec(UNIT)?.[1] ?? 'default';
const CAPABILITIES = (/^CapabilityBoundingSet=(.*)$/m.exec(UNIT)?.[1] ?? '')
  .split(/\s+/)
  .filter((cap) => cap !== '')
  .map((cap) => `+${cap.replace(/^CAP_/, '').toLowerCase()}`);
const AS_THE_UNIT = [
  ...(PROTECT_PROC === 'default'
    ? []
    : [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        `mount -t proc -o hidepid=${PROTECT_PROC} proc /proc && exec "$@"`,
        'as-the-unit',
      ]),
  'setpriv',
  `--bounding-set=${['-all', ...CAPABILITIES].join(',')}`,
  '--',
];
let agent: AgentHandle | undefined;
let client: AgentClient;
let root: string;
const running: SwtpmHandle[] = [];

before(async () => {
  if (unavailable !== undefined) return;
  const setup = setupAgent({ config: { ownership: { TpmState: { owner: SWTPM_USER, group: SWTPM_USER } } } });
  agent = await startAgent(setup, { prefix: AS_THE_UNIT });
  client = {
    url: agent.url,
    hostUuid: setup.hostUuid,
    key: setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
  root = setup.roots.TpmState;
  // swtpm runs as its own user: the way down to the states must be traversable, as /var/lib/libvirt/swtpm is.
  for (const dir of [setup.dir, root]) chmodSync(dir, 0o711);
});
after(async () => {
  await Promise.all(running.map((swtpm) => swtpm.stop()));
  if (agent === undefined) return;
  assert.equal(await agent.stop(), 0);
  removeSetup(agent.setup);
});

async function swtpmOn(stateDir: string): Promise<SwtpmHandle> {
  const swtpm = await startSwtpm(stateDir);
  running.push(swtpm);
  return swtpm;
}

/** Every entry below `dir`: its kind, inode and bytes, so "unchanged" means byte for byte and the same files. */
function snapshot(dir: string, prefix = ''): Record<string, string> {
  const seen: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    const key = `${prefix}${name}`;
    if (stats.isDirectory()) Object.assign(seen, snapshot(path, `${key}/`));
    const bytes = stats.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex') : 'dir';
    seen[key] = `${stats.ino}:${stats.mode.toString(8)}:${bytes}`;
  }
  return seen;
}

test('while swtpm runs, writeDir, write and delete answer busy and leave the state and its lock as they were', async (t) => {
  if (skipWithout(t, unavailable)) return;
  const state = join(root, randomUUID());
  await createTpmState(join(state, 'tpm2'));
  const swtpm = await swtpmOn(join(state, 'tpm2'));
  await nvWrite(swtpm.tcti, 0x1500016, Buffer.from('written by the guest'));
  const before = snapshot(state);
  assert.ok('tpm2/.lock' in before, 'swtpm holds tpm2/.lock');

  const answer = await send(client, 'files.apply', {
    ops: [
      writeDirOp('TpmState', state, [{ path: 'tpm2/tpm2-00.permall', content: Buffer.from('other state') }]),
      writeOp('TpmState', join(state, 'tpm2', 'tpm2-00.permall'), Buffer.from('other state')),
      deleteOp('TpmState', join(state, 'tpm2', 'tpm2-00.permall')),
      deleteOp('TpmState', state),
    ],
  });
  assert.deepEqual(outcomes(answer), [
    ['writeDir', 'failed', 'busy'],
    ['write', 'failed', 'busy'],
    ['delete', 'failed', 'busy'],
    ['delete', 'failed', 'busy'],
  ]);
  assert.deepEqual(snapshot(state), before, 'the state and .lock are byte for byte (and inode for inode) the same');
  assert.deepEqual(readdirSync(root), [state.slice(root.length + 1)], 'no temp name is left beside it');

  const listed = await send(client, 'files.list', { types: ['TpmState'] });
  const unit = listed.results.find((u) => u.path === state);
  assert.ok(unit?.busy === true && unit.kind === 'dir', JSON.stringify(unit));
  assert.ok(!listed.results.some((u) => u.path.endsWith('.lock')), 'the lock is never a unit');
  const read = await send(client, 'files.read', { files: [{ type: 'TpmState', path: state }] });
  const [dir] = read.results;
  assert.ok(dir?.status === 'read' && dir.kind === 'dir');
  assert.ok(dir.entries.length > 0 && dir.entries.every((e: ReadEntry) => !e.path.endsWith('.lock')));
  assert.equal(unit.files, dir.entries.length, 'the lock is no file of the state');
  assert.equal(unit.sha256, dir.sha256);
  const refs = [
    { type: 'TpmState' as const, path: state },
    { type: 'TpmState' as const, path: join(state, 'tpm2', 'tpm2-00.permall') },
    { type: 'TpmState' as const, path: join(root, randomUUID()) },
  ];
  const busy = await send(client, 'files.busy', { files: refs });
  assert.deepEqual(
    busy.results,
    [
      { ...refs[0], status: 'present', kind: 'dir', busy: true },
      { ...refs[1], status: 'present', kind: 'file', busy: false },
      { ...refs[2], status: 'absent' },
    ],
    'the state is busy by its lock below it; a file of it holds no lock of its own',
  );
  assert.deepEqual(snapshot(state), before, 'looked at, never touched');

  await swtpm.stop();
  const stat = await send(client, 'files.stat', { files: [{ type: 'TpmState', path: state }] });
  assert.ok(stat.results[0]?.status === 'present' && !stat.results[0].busy, 'no longer busy once swtpm stopped');
  const free = await send(client, 'files.busy', { files: [{ type: 'TpmState', path: state }] });
  assert.deepEqual(free.results, [{ type: 'TpmState', path: state, status: 'present', kind: 'dir', busy: false }]);
  const removed = await send(client, 'files.apply', { ops: [deleteOp('TpmState', state)] });
  assert.equal(removed.results[0]?.status, 'deleted');
  assert.equal(existsSync(state), false, 'no directory remains');
  assert.deepEqual(readdirSync(root), []);
});

test('a TPM state kept in one file by a running swtpm (file:// backend, no lock) is busy: not written over, not deleted', async (t) => {
  if (skipWithout(t, unavailable)) return;
  // Manufactured first, as a VM's first start does; swtpm, as its own user, then holds the file open and takes no
  // lock on it.
  const state = join(root, `${randomUUID()}.tpm`);
  await createTpmStateFile(state);
  const swtpm = await startSwtpm(state, SWTPM_USER, 'file');
  running.push(swtpm);
  const inode = statSync(state).ino;
  assert.ok(
    !readFileSync('/proc/locks', 'utf8')
      .split('\n')
      .some((line) => line.includes(`:${inode} `)),
    'swtpm holds no lock on its state file: the lock check alone would let the ops through',
  );
  const answer = await send(client, 'files.apply', {
    ops: [writeOp('TpmState', state, Buffer.from('other state')), deleteOp('TpmState', state)],
  });
  assert.deepEqual(outcomes(answer), [
    ['write', 'failed', 'busy'],
    ['delete', 'failed', 'busy'],
  ]);
  // swtpm itself writes its file as it runs: what must hold is that it is still its file (a write replaces the
  // inode, a delete removes it) and holds none of the refused write's bytes.
  assert.equal(statSync(state).ino, inode, 'the file swtpm has open is still there, not replaced');
  assert.notEqual(readFileSync(state, 'utf8'), 'other state');
  const busy = await send(client, 'files.busy', { files: [{ type: 'TpmState', path: state }] });
  assert.deepEqual(busy.results, [{ type: 'TpmState', path: state, status: 'present', kind: 'file', busy: true }]);

  await swtpm.stop();
  const free = await send(client, 'files.busy', { files: [{ type: 'TpmState', path: state }] });
  assert.deepEqual(free.results, [{ type: 'TpmState', path: state, status: 'present', kind: 'file', busy: false }]);
  const removed = await send(client, 'files.apply', { ops: [deleteOp('TpmState', state)] });
  assert.equal(removed.results[0]?.status, 'deleted');
  assert.equal(existsSync(state), false);
});

test("a swtpm file state deeper in a unit (Proxmox's <vmid>/vm-<vmid>-disk-N.raw) makes the whole unit busy", async (t) => {
  if (skipWithout(t, unavailable)) return;
  const vm = join(root, String(100 + Math.floor(Math.random() * 900)));
  mkdirSync(vm, { mode: 0o711 });
  const state = join(vm, `vm-${basename(vm)}-disk-1.raw`);
  await createTpmStateFile(state);
  const beside = join(vm, `vm-${basename(vm)}-disk-0.raw`);
  writeFileSync(beside, 'another volume of the VM');
  const swtpm = await startSwtpm(state, SWTPM_USER, 'file');
  running.push(swtpm);
  const inode = statSync(state).ino;
  const answer = await send(client, 'files.apply', {
    ops: [writeOp('TpmState', beside, Buffer.from('other')), deleteOp('TpmState', state), deleteOp('TpmState', vm)],
  });
  assert.deepEqual(outcomes(answer), [
    ['write', 'failed', 'busy'],
    ['delete', 'failed', 'busy'],
    ['delete', 'failed', 'busy'],
  ]);
  assert.equal(statSync(state).ino, inode, 'the file swtpm has open is still there, not replaced');
  assert.equal(readFileSync(beside, 'utf8'), 'another volume of the VM', 'nothing in the unit written over');
  const busy = await send(client, 'files.busy', { files: [{ type: 'TpmState', path: vm }] });
  assert.deepEqual(busy.results, [{ type: 'TpmState', path: vm, status: 'present', kind: 'dir', busy: true }]);

  await swtpm.stop();
  const removed = await send(client, 'files.apply', { ops: [deleteOp('TpmState', vm)] });
  assert.deepEqual(outcomes(removed), [['delete', 'deleted', undefined]]);
  assert.equal(existsSync(vm), false);
});

test('a state read through the agent and written as another VM is the same vTPM: same EK, same NV data', async (t) => {
  if (skipWithout(t, unavailable)) return;
  const source = join(root, randomUUID());
  await createTpmState(join(source, 'tpm2'));
  const first = await swtpmOn(join(source, 'tpm2'));
  const ek = await readEkPublic(first.tcti);
  const secret = Buffer.from('nv data of the guest');
  await nvWrite(first.tcti, 0x1500020, secret);
  await first.stop();

  const read = await send(client, 'files.read', { files: [{ type: 'TpmState', path: source }] });
  const [state] = read.results;
  assert.ok(state?.status === 'read' && state.kind === 'dir');
  const copy = join(root, randomUUID());
  const written = await send(client, 'files.apply', {
    ops: [
      {
        op: 'writeDir',
        type: 'TpmState',
        path: copy,
        entries: state.entries.map(({ path, content, encoding, sha256 }) => ({
          path,
          content,
          ...(encoding === undefined ? {} : { encoding }),
          sha256,
        })),
        expect: 'absent',
      },
    ],
  });
  assert.equal(written.results[0]?.status, 'written');
  // As libvirt lays it out, so swtpm (running as tss) can use it.
  assert.equal(statSync(copy).mode & 0o777, 0o711);
  assert.equal(statSync(join(copy, 'tpm2')).mode & 0o777, 0o700);

  const second = await swtpmOn(join(copy, 'tpm2'));
  assert.equal(await readEkPublic(second.tcti), ek, 'the same endorsement key');
  assert.deepEqual(await nvRead(second.tcti, 0x1500020, secret.length), secret, 'the same NV data');
  const other = join(root, randomUUID());
  await createTpmState(join(other, 'tpm2'));
  const third = await swtpmOn(join(other, 'tpm2'));
  assert.notEqual(await readEkPublic(third.tcti), ek, 'another state is another TPM');
  await Promise.all([second.stop(), third.stop()]);
});
