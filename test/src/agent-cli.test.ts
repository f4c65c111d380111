// The hostfiles-agent command line as an operator meets it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { configSchema } from '@hostfiles/agent';
import { keyIdOf, signingKeyFromPem, writeDirOp } from '@hostfiles/shared';
import { AGENT_BIN, removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { agentInfo, send, writeOp } from './support/commands.js';
import { skipWithout } from './support/real-tools.js';

const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
  // A command that hangs fails its test (status null) instead of holding the suite.
  const result = spawnSync(process.execPath, [AGENT_BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};

test('--help tells the commands and exits 0; an unknown command exits 2', () => {
  const help = run('--help');
  assert.equal(help.status, 0);
  for (const word of ['--config', 'keygen', 'print-config-example']) assert.ok(help.stdout.includes(word));
  const bad = run('frobnicate');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command frobnicate/);
  const bare = run();
  assert.deepEqual([bare.status, bare.stdout], [2, ''], 'nothing asked: bad usage');
  assert.match(bare.stderr, /^Usage:\n {2}hostfiles-agent --config FILE/);
  const twice = run('--config', '/nonexistent/a.json', '--config', '/nonexistent/b.json');
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, /--config is given twice/);
});

test('keygen --help tells its usage and makes no key; an unknown argument exits 2 and makes none', () => {
  const help = run('keygen', '--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: hostfiles-agent keygen \[--out FILE\]/);
  assert.doesNotMatch(help.stdout + help.stderr, /PRIVATE KEY|"publicKey"/);
  for (const args of [['--outt', 'x'], ['x'], ['--out', 'a', '--force']]) {
    const bad = run('keygen', ...args);
    assert.equal(bad.status, 2, args.join(' '));
    assert.match(bad.stderr, /keygen takes no argument/);
    assert.doesNotMatch(bad.stdout + bad.stderr, /PRIVATE KEY|"publicKey"/);
  }
});

test('every command answers --help with the usage and does nothing else; an argument it does not take exits 2', () => {
  for (const args of [
    ['info', '--help'],
    ['make-roots', '--help'],
    ['print-config-example', '--help'],
    ['--config', '/nonexistent/agent.json', '--help'],
  ]) {
    const help = run(...args);
    assert.equal(help.status, 0, args.join(' '));
    assert.match(help.stdout, /^Usage:\n {2}hostfiles-agent --config FILE/, args.join(' '));
    assert.doesNotMatch(help.stdout, /"trustedKeys"/, 'no config printed');
  }
  assert.match(run('keygen', '--help').stdout, /fingerprint/);
  // Refused for the argument, before any config is read (the file named does not exist: that would be another error).
  for (const args of [
    ['info', '--config', '/nonexistent/agent.json', '--bogus'],
    ['make-roots', '--config', '/nonexistent/agent.json', '--bogus'],
    ['print-config-example', '--bogus'],
    ['--config', '/nonexistent/agent.json', '--bogus'],
    ['--version', '--bogus'],
    ['help', '--bogus'],
  ]) {
    const bad = run(...args);
    assert.equal(bad.status, 2, args.join(' '));
    assert.match(bad.stderr, /takes no argument --bogus/, args.join(' '));
    assert.equal(bad.stdout, '', 'nothing printed, nothing started');
  }
  // --help makes no unknown command known.
  const unknown = run('frobnicate', '--help');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command frobnicate/);
});

test('keygen writes a 0600 PEM, prints its public key, and never overwrites a key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-keygen-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'controller.key');
  const result = run('keygen', '--out', out);
  assert.equal(result.status, 0, result.stderr);
  const printed = JSON.parse(result.stdout) as { publicKey: string; keyId: string };
  assert.equal(statSync(out).mode & 0o777, 0o600);
  const key = signingKeyFromPem(readFileSync(out, 'utf8'));
  assert.equal(key.publicKey, printed.publicKey);
  assert.equal(keyIdOf(Buffer.from(printed.publicKey, 'base64')), printed.keyId);
  const again = run('keygen', '--out', out);
  assert.equal(again.status, 2);
  assert.equal(again.stderr, `hostfiles-agent: ${out} exists: keygen never overwrites a key (remove it first)\n`);
  assert.equal(signingKeyFromPem(readFileSync(out, 'utf8')).publicKey, printed.publicKey, 'the key is unchanged');
  const intoDir = run('keygen', '--out', dir);
  assert.equal(intoDir.status, 2);
  assert.match(intoDir.stderr, /is a directory: --out names the key file to make/);
  // A path the key cannot go to is said in words, exit 2: no raw errno text, no stack.
  const missing = join(dir, 'missing', 'agent.key');
  const noDir = run('keygen', '--out', missing);
  assert.equal(noDir.status, 2);
  assert.equal(
    noDir.stderr,
    `hostfiles-agent: cannot make ${missing}: the directory ${dirname(missing)} does not exist\n`,
  );
  const belowFile = run('keygen', '--out', join(out, 'agent.key'));
  assert.equal(belowFile.status, 2);
  assert.equal(belowFile.stderr, `hostfiles-agent: cannot make ${join(out, 'agent.key')}: ENOTDIR\n`);
});

test('print-config-example prints a complete config that validates once its key is filled in', () => {
  const result = run('print-config-example');
  assert.equal(result.status, 0);
  const example = JSON.parse(result.stdout) as Record<string, unknown>;
  assert.equal(configSchema.safeParse(example).success, false, 'the placeholder key must be replaced');
  const filled = { ...example, trustedKeys: [Buffer.alloc(32, 1).toString('base64')] };
  const parsed = configSchema.safeParse(filled);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  for (const key of Object.keys(configSchema.shape)) assert.ok(key in example, `the example has ${key}`);
  assert.deepEqual(parsed.data.ownership, {
    TpmState: { owner: 'tss', group: 'tss', fileMode: '0600', dirMode: '0700', topDirMode: '0711' },
    NvRam: { owner: 'libvirt-qemu', group: 'libvirt-qemu', fileMode: '0600', dirMode: '0700', topDirMode: '0700' },
  });
  assert.equal('owner' in example, false, 'no top-level owner: it made NVRAM tss:tss');
});

test('--help tells about ownership per root, maxContentBytes, recovery and busy', () => {
  const help = run('--help').stdout;
  for (const word of ['ownership', 'topDirMode', 'getent', 'maxContentBytes', 'busy', '/proc/locks']) {
    assert.ok(help.includes(word), `--help mentions ${word}`);
  }
});

test('a bad config: every problem reported, exit 2, nothing started', (t) => {
  const setup = setupAgent({
    config: {
      listen: { host: '127.0.0.1', port: 70000 },
      roots: { TpmState: 'relative', NvRam: '/tmp/x/../y' },
      trustedKeys: ['nope'],
      typo: 1,
    },
  });
  t.after(() => {
    removeSetup(setup);
  });
  const result = run('--config', setup.configPath);
  assert.equal(result.status, 2);
  for (const what of ['listen.port', 'roots.TpmState', 'roots.NvRam', 'trustedKeys.0', 'typo']) {
    assert.ok(result.stderr.includes(what), `the error names ${what}: ${result.stderr}`);
  }
  assert.equal(result.stdout, '');
});

test('a root that does not exist, a missing file, unreadable JSON: clear errors, exit 2', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(
    setup.configPath,
    JSON.stringify({ ...config, roots: { TpmState: join(setup.dir, 'missing'), NvRam: setup.roots.NvRam } }),
  );
  const missingRoot = run('--config', setup.configPath);
  assert.equal(missingRoot.status, 2);
  assert.match(missingRoot.stderr, /TpmState root .*missing.*ENOENT/);
  assert.equal(run('--config', join(setup.dir, 'nope.json')).status, 2);
  writeFileSync(setup.configPath, '{ not json');
  const notJson = run('--config', setup.configPath);
  assert.equal(notJson.status, 2);
  assert.match(notJson.stderr, /not JSON/);
  // A FIFO for the config or the key file is refused at once (not a regular file), never waited on for a writer.
  const fifo = join(setup.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fifoConfig = run('--config', fifo);
  assert.equal(fifoConfig.status, 2, 'refused, not hung');
  assert.match(fifoConfig.stderr, /cannot read .*fifo: not a regular file/);
  writeFileSync(setup.configPath, JSON.stringify({ ...config, keyFile: fifo }));
  const fifoKey = run('--config', setup.configPath);
  assert.equal(fifoKey.status, 2, 'refused, not hung');
  assert.match(fifoKey.stderr, /keyFile: .*fifo cannot be read: not a regular file/);
});

test('a key file readable by others is refused', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const keyPath = join(setup.dir, 'agent.key');
  assert.equal(run('keygen', '--out', keyPath).status, 0);
  spawnSync('chmod', ['644', keyPath]);
  const result = run('--config', setup.configPath);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /chmod 600/);
});

test('a key file inside a root is refused: a signed read would hand it out', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(setup.configPath, JSON.stringify({ ...config, keyFile: join(setup.roots.NvRam, 'agent.key') }));
  const result = run('--config', setup.configPath);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /keyFile: must not be inside the NvRam root/);
});

test('a state directory inside a root, or reached through a link into one, is refused: exit 2, no journal made', (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const config = JSON.parse(readFileSync(setup.configPath, 'utf8')) as Record<string, unknown>;
  const inRoot = join(setup.roots.TpmState, 'agent');
  mkdirSync(inRoot);
  writeFileSync(setup.configPath, JSON.stringify({ ...config, stateDir: inRoot }));
  const written = run('--config', setup.configPath);
  assert.equal(written.status, 2, written.stderr);
  assert.match(written.stderr, /stateDir: must not overlap the TpmState root/);

  const linked = join(setup.dir, 'state-link');
  symlinkSync(inRoot, linked);
  writeFileSync(setup.configPath, JSON.stringify({ ...config, stateDir: linked }));
  // Bounded only so that an agent which wrongly starts fails this test instead of hanging it.
  const result = spawnSync(process.execPath, [AGENT_BIN, '--config', setup.configPath], {
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(result.status, 2, result.stderr);
  assert.ok(
    result.stderr.includes(
      `stateDir: ${linked} is ${inRoot} once its links are followed, which overlaps the TpmState root ` +
        `${setup.roots.TpmState}: a signed delete could remove the replay journal`,
    ),
    result.stderr,
  );
  assert.deepEqual(readdirSync(inRoot), [], 'no replay journal in the root');
  assert.equal(existsSync(setup.keyFile), false, 'no key made');
  assert.equal(result.stdout, '');
});

test('an unknown owner: exit 2 with every problem at once, and neither the state directory nor the key is made', (t) => {
  const setup = setupAgent({
    config: {
      ownership: { TpmState: { owner: 'no-such-swtpm-user' }, NvRam: { group: 'no-such-qemu-group' } },
      roots: { TpmState: '/nonexistent-hostfiles-root', NvRam: join(tmpdir(), 'x') },
    },
  });
  t.after(() => {
    removeSetup(setup);
  });
  rmSync(setup.stateDir, { recursive: true, force: true });
  const result = run('--config', setup.configPath);
  assert.equal(result.status, 2);
  for (const what of [
    'ownership.TpmState.owner: no user named no-such-swtpm-user',
    'ownership.NvRam.group: no group named no-such-qemu-group',
    'TpmState root /nonexistent-hostfiles-root cannot be used: ENOENT',
  ]) {
    assert.ok(result.stderr.includes(what), `the error says ${what}: ${result.stderr}`);
  }
  assert.equal(existsSync(setup.stateDir), false, 'no state directory');
  assert.equal(existsSync(join(setup.dir, 'agent.key')), false, 'no key');
  assert.equal(result.stdout, '');
});

test('a legacy top-level owner and group are refused with what replaced them', (t) => {
  const setup = setupAgent({ config: { owner: 'tss', group: 'tss' } });
  t.after(() => {
    removeSetup(setup);
  });
  const result = run('--config', setup.configPath);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /owner: replaced by ownership\.TpmState\.owner and ownership\.NvRam\.owner/);
  assert.match(result.stderr, /group: replaced by ownership\.TpmState\.group/);
  assert.equal(existsSync(setup.stateDir), false);
});

test('ownership per root on disk: <uuid> root 0711, tpm2 tss 0700, files tss 0600; NVRAM nobody:nogroup 0600', async (t) => {
  if (skipWithout(t, process.getuid?.() !== 0 ? 'chown needs root' : undefined)) return;
  const missing =
    spawnSync('getent', ['passwd', 'tss']).status !== 0 || spawnSync('getent', ['group', 'nogroup']).status !== 0;
  if (skipWithout(t, missing ? 'the tss user or the nogroup group is missing' : undefined)) return;
  const setup = setupAgent({
    config: {
      ownership: { TpmState: { owner: 'tss', group: 'tss' }, NvRam: { owner: 'nobody', group: 'nogroup' } },
    },
  });
  const agent = await startAgent(setup);
  t.after(async () => {
    await agent.stop();
    removeSetup(setup);
  });
  const client = {
    url: agent.url,
    hostUuid: setup.hostUuid,
    key: setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
  const uuid = join(setup.roots.TpmState, '3f0f7bd4-1c55-4b4e-9d1a-6c2c1e0c9a11');
  const nvram = join(setup.roots.NvRam, 'vm_VARS.fd');
  const answer = await send(client, 'files.apply', {
    ops: [
      writeDirOp('TpmState', uuid, [{ path: 'tpm2/tpm2-00.permall', content: Buffer.from('state') }]),
      writeOp('NvRam', nvram, 'vars'),
    ],
  });
  assert.deepEqual(
    answer.results.map((r) => r.status),
    ['written', 'written'],
  );
  const id = (database: string, name: string): number =>
    Number(spawnSync('getent', [database, name], { encoding: 'utf8' }).stdout.split(':')[2]);
  const tss = { uid: id('passwd', 'tss'), gid: id('group', 'tss') };
  for (const [path, uid, gid, mode] of [
    [uuid, 0, 0, 0o711],
    [join(uuid, 'tpm2'), tss.uid, tss.gid, 0o700],
    [join(uuid, 'tpm2', 'tpm2-00.permall'), tss.uid, tss.gid, 0o600],
    [nvram, id('passwd', 'nobody'), id('group', 'nogroup'), 0o600],
  ] as const) {
    const stats = statSync(path);
    assert.deepEqual([stats.uid, stats.gid, stats.mode & 0o777], [uid, gid, mode], path);
  }
});
