// `hostfiles-agent make-roots` (the unit's ExecStartPre): a new host's missing roots made as libvirt makes them, so
// that the agent starts there; existing roots and missing parents left alone, each outcome logged.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AGENT_BIN, removeSetup, setupAgent, startAgent } from './support/agent-process.js';

const makeRoots = (configPath: string) =>
  spawnSync(process.execPath, [AGENT_BIN, 'make-roots', '--config', configPath], { encoding: 'utf8', timeout: 10_000 });

const events = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('missing roots are made with libvirt modes and owners, then the agent starts; a second run changes nothing', async (t) => {
  const setup = setupAgent({ config: { ownership: { NvRam: { owner: 4242, group: 4343 } } } });
  t.after(() => {
    removeSetup(setup);
  });
  // A new host: no VM with a vTPM or UEFI yet, so libvirt has made neither root.
  for (const root of Object.values(setup.roots)) rmSync(root, { recursive: true });

  const made = makeRoots(setup.configPath);
  assert.equal(made.status, 0, made.stderr);
  assert.deepEqual(
    events(made.stdout).map((e) => [e['level'], e['event'], e['type'], e['path'], e['mode'], e['uid'], e['gid']]),
    [
      ['info', 'root_made', 'TpmState', setup.roots.TpmState, '0711', undefined, undefined],
      ['info', 'root_made', 'NvRam', setup.roots.NvRam, '0755', 4242, 4343],
    ],
  );
  const swtpm = statSync(setup.roots.TpmState);
  assert.equal(swtpm.mode & 0o7777, 0o711);
  const nvram = statSync(setup.roots.NvRam);
  assert.deepEqual([nvram.mode & 0o7777, nvram.uid, nvram.gid], [0o755, 4242, 4343]);

  // Made roots are as good as libvirt's: the agent starts over them.
  const agent = await startAgent(setup);
  await agent.stop();

  // Existing roots are never touched, whatever their mode.
  writeFileSync(join(setup.roots.NvRam, 'vm_VARS.fd'), 'kept');
  const again = makeRoots(setup.configPath);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout, '', 'nothing made, nothing logged');
  assert.equal(readFileSync(join(setup.roots.NvRam, 'vm_VARS.fd'), 'utf8'), 'kept');
});

test('a root whose parent is missing is not made (libvirt is not installed): logged, and the agent then exits 2 naming it', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  const nvRam = join(setup.dir, 'libvirt', 'qemu', 'nvram');
  writeFileSync(setup.configPath, JSON.stringify({ ...config, roots: { ...setup.roots, NvRam: nvRam } }));

  const run = makeRoots(setup.configPath);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(
    events(run.stdout).map((e) => [e['level'], e['event'], e['type'], e['path'], e['reason']]),
    [['warn', 'root_missing', 'NvRam', nvRam, `its parent ${join(setup.dir, 'libvirt', 'qemu')} does not exist`]],
  );
  assert.throws(() => statSync(join(setup.dir, 'libvirt')), { code: 'ENOENT' });
  const agent = spawnSync(process.execPath, [AGENT_BIN, '--config', setup.configPath], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(agent.status, 2);
  assert.match(agent.stderr, new RegExp(`NvRam root ${nvRam} cannot be used`));
  // Once libvirt made the parent, the next start makes the root.
  mkdirSync(join(setup.dir, 'libvirt', 'qemu'), { recursive: true });
  assert.equal(events(makeRoots(setup.configPath).stdout)[0]?.['event'], 'root_made');
});

test('a root below a symbolic link is not made, neither where the link leads', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  const link = join(setup.dir, 'link');
  symlinkSync(setup.outside, link);
  const nvRam = join(link, 'nvram');
  writeFileSync(setup.configPath, JSON.stringify({ ...config, roots: { ...setup.roots, NvRam: nvRam } }));

  const run = makeRoots(setup.configPath);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(
    events(run.stdout).map((e) => [e['event'], e['path'], e['reason']]),
    [
      [
        'root_missing',
        nvRam,
        `its parent cannot be used: ${link} is a symbolic link (configure the directory it leads to)`,
      ],
    ],
  );
  assert.deepEqual(readdirSync(setup.outside), [], 'nothing made where the link leads');
});

test('make-roots refuses a bad config or argument with exit 2 and makes nothing', (t) => {
  const setup = setupAgent({ config: { ownership: { NvRam: { owner: 'no-such-user-hostfiles' } } } });
  t.after(() => {
    removeSetup(setup);
  });
  rmSync(setup.roots.NvRam, { recursive: true });
  const bad = makeRoots(setup.configPath);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /ownership\.NvRam\.owner: .*no-such-user-hostfiles/);
  assert.throws(() => statSync(setup.roots.NvRam), { code: 'ENOENT' });
  const stray = spawnSync(process.execPath, [AGENT_BIN, 'make-roots', '--config', setup.configPath, '--force'], {
    encoding: 'utf8',
  });
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /make-roots takes no argument --force/);
});
