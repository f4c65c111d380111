// The agent as a hypervisor installs it: the bundle alone, copied into a clean directory (no node_modules anywhere
// above it), run by Debian 12's own Node 18 and driven by the real controller over mutual TLS; its Node check; its
// install script. Node 18 comes from HOSTFILES_NODE18 (.ci/run fetches it: .ci/node18); without it the bundle runs
// on this Node and the test says the Node 18 part was skipped, unless HOSTFILES_REQUIRE_NODE18=1 (CI): then it fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { signingKeyFromPem } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent } from './support/agent-process.js';
import { hostfiles, type Run } from './support/cli.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUNDLE = 'hostfiles-agent.cjs';

/** Debian 12's Node 18 when given, this Node otherwise (said in the output), or a failure where it is required. */
function nodeFor(t: TestContext): string {
  const node18 = process.env['HOSTFILES_NODE18'];
  if (node18 !== undefined && node18 !== '') {
    const version = spawnSync(node18, ['-p', 'process.version'], { encoding: 'utf8', timeout: 20_000 });
    assert.match(version.stdout, /^v18\.\d+\.\d+\n$/, `HOSTFILES_NODE18=${node18}: ${version.stderr}`);
    return node18;
  }
  if (process.env['HOSTFILES_REQUIRE_NODE18'] === '1')
    assert.fail('HOSTFILES_REQUIRE_NODE18=1 but HOSTFILES_NODE18 is not set');
  t.diagnostic(
    `Node 18 part SKIPPED: HOSTFILES_NODE18 is not set (.ci/node18 DIR fetches it); the bundle ran on ${process.version}`,
  );
  return process.execPath;
}

const nodeVersion = (node: string): string =>
  spawnSync(node, ['--version'], { encoding: 'utf8', timeout: 20_000 }).stdout.trim();

/** `pnpm bundle` into a temp directory, removed afterwards; the directory it wrote. */
function buildBundle(t: TestContext, ...args: string[]): string {
  const out = mkdtempSync(join('/tmp', 'hostfiles-bundle-build-'));
  t.after(() => {
    rmSync(out, { recursive: true, force: true });
  });
  // Someone else's file in OUT_DIR: the bundle replaces its own files, never the directory.
  writeFileSync(join(out, 'notes.txt'), "not the bundle's");
  const built = spawnSync(process.execPath, [join(REPO, 'scripts', 'bundle-agent.mjs'), out, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(built.status, 0, built.stderr);
  assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), "not the bundle's", 'a file of OUT_DIR kept');
  return out;
}

/** A directory in /tmp with nothing above it that Node could resolve a package from. */
function cleanDir(t: TestContext): string {
  const dir = mkdtempSync(join('/tmp', 'hostfiles-bundle-host-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  for (let up = dir; up !== dirname(up); up = dirname(up)) {
    assert.equal(existsSync(join(up, 'node_modules')), false, `${up}/node_modules would let the bundle cheat`);
  }
  return dir;
}

function ok(run: Run): string {
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  return run.stdout;
}

test('the bundle alone, on Debian 12 Node 18: host add over mutual TLS, a file write, a TPM removal, a clean stop', async (t) => {
  const node = nodeFor(t);
  const host = cleanDir(t);
  const bundle = join(host, BUNDLE);
  copyFileSync(join(buildBundle(t), BUNDLE), bundle);
  assert.doesNotMatch(readFileSync(bundle, 'utf8'), /require\("sqlite3"\)/, 'the controller-only sqlite3 is not in it');

  const dir = mkdtempSync(join('/tmp', 'hostfiles-bundle-ctl-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const db = join(dir, 'hostfiles.db');
  const cli = (...args: string[]): Promise<Run> => hostfiles(['--db', db, ...args]);
  ok(await hostfiles(['init', '--db', db]));
  const key = signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
  const setup = setupAgent({ controllerKey: key });
  const agent = await startAgent(setup, { node, bin: bundle });
  t.after(async () => {
    await agent.stop();
    removeSetup(setup);
  });
  const listening = agent.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(listening.some((e) => e['event'] === 'listening' && e['tls'] === true && e['clientAuth'] === 'required'));

  // The fingerprint read on the host with the bundle, pinned by the controller.
  const info = spawnSync(node, [bundle, 'info', '--config', setup.configPath], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(info.status, 0, info.stderr);
  const { fingerprint, hostUuid } = JSON.parse(info.stdout) as { fingerprint: string; hostUuid: string };
  assert.equal(hostUuid, setup.hostUuid);
  ok(await cli('host', 'add', 'h0', agent.url, '--expect-key', fingerprint));
  const hosts = JSON.parse(ok(await cli('host', 'list', '--json'))) as { name: string; state: string }[];
  assert.deepEqual(
    hosts.map((h) => [h.name, h.state]),
    [['h0', 'Connected']],
  );

  ok(await cli('vm', 'add', 'a', '--host', 'h0', '--uefi'));
  ok(await cli('tpm', 'add', 'a'));
  const tpm = join(setup.roots.TpmState, 'a', 'tpm2-00.permall');
  const vars = join(setup.roots.NvRam, 'a_VARS.fd');
  for (const [type, path, content] of [
    ['TpmState', tpm, 'tpm state of a'],
    ['NvRam', vars, 'nvram of a'],
  ] as const) {
    const from = join(dir, type);
    writeFileSync(from, content);
    ok(await cli('file', 'write', 'a', '--type', type, '--path', path, '--from', from));
    assert.equal(readFileSync(path, 'utf8'), content);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  }

  const removal = ok(await cli('tpm', 'remove', 'a'));
  assert.match(removal, /summary: 1 TPMs? removed; 2 files: 2 gone/);
  assert.equal(existsSync(tpm), false);
  assert.equal(existsSync(vars), false, 'UEFI without secure boot: NVRAM goes with the TPM');
  assert.ok(existsSync(setup.roots.TpmState) && existsSync(setup.roots.NvRam), 'the roots stay');

  assert.equal(await agent.stop(), 0, 'SIGTERM drains and exits 0');
  assert.ok(agent.lines.some((line) => line.includes('"event":"stopped"')));
});

test('the bundle, and install.sh first, refuse a Node older than it needs: exit 2 with the version it needs', (t) => {
  const node = nodeFor(t);
  const built = buildBundle(t, '--min-node', '99.0.0');
  const refused = spawnSync(node, [join(built, BUNDLE), '--version'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(refused.status, 2);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /^hostfiles-agent: needs Node 99\.0\.0 or later, this is v\d+\.\d+\.\d+ \(.+\)\n$/);
  // install.sh checks first, in syntax any Node parses, and installs nothing.
  const dest = cleanDir(t);
  const install = spawnSync(join(built, 'install.sh'), ['--destdir', dest, '--node', node], { encoding: 'utf8' });
  assert.equal(install.status, 2);
  assert.equal(install.stderr, `install.sh: the agent needs Node 99.0.0 or later, ${node} is ${nodeVersion(node)}\n`);
  assert.deepEqual(readdirSync(dest), []);
  const usage = spawnSync(process.execPath, [join(REPO, 'scripts', 'bundle-agent.mjs'), '--min-node', 'new'], {
    encoding: 'utf8',
  });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^usage: /);
});

test('install.sh into a DESTDIR: bundle, command, unit (verified), a config and key of its own, kept on a second run', async (t) => {
  const node = nodeFor(t);
  const built = buildBundle(t);
  const dest = cleanDir(t);
  const controllerKey = '0PWjSWNPkMT+X6wIkrH7+Gc0oDxwsPr7gdiLRYCDbx4=';
  const install = (...args: string[]) =>
    spawnSync(join(built, 'install.sh'), ['--destdir', dest, '--prefix', '/opt/hf', '--node', node, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
  const first = install('--trusted-key', controllerKey);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /made \/etc\/hostfiles\/agent\.json\nmade \/var\/lib\/hostfiles-agent\/agent\.key\n/);
  assert.match(first.stdout, /systemctl enable --now hostfiles-agent/);
  assert.match(first.stdout, /hostfiles host add NAME https:\/\/THIS-HOST:7441 --expect-key FINGERPRINT/);

  const lib = join(dest, 'opt/hf/lib/hostfiles', BUNDLE);
  assert.deepEqual(readFileSync(lib), readFileSync(join(built, BUNDLE)));
  assert.equal(
    readFileSync(join(dest, 'opt/hf/bin/hostfiles-agent'), 'utf8'),
    `#!/bin/sh\nexec ${node} /opt/hf/lib/hostfiles/${BUNDLE} "$@"\n`,
  );
  // In systemd's path for units an administrator installs, below /etc/systemd/system and its drop-ins.
  const unitPath = join(dest, 'usr/local/lib/systemd/system/hostfiles-agent.service');
  assert.equal(existsSync(join(dest, 'etc/systemd')), false, "/etc/systemd is the operator's");
  const unit = readFileSync(unitPath, 'utf8');
  assert.match(
    unit,
    new RegExp(`^ExecStart=${node} /opt/hf/lib/hostfiles/${BUNDLE} --config /etc/hostfiles/agent.json$`, 'm'),
  );
  assert.match(unit, new RegExp(`^ExecStartPre=-\\+${node} /opt/hf/lib/hostfiles/${BUNDLE} make-roots --config `, 'm'));
  assert.match(unit, /^RestartPreventExitStatus=2$/m, 'a config error is never restarted');
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8', timeout: 60_000 });
  // verify exits 0 on an unknown key or a bad value too, only saying so: anything it says is a failure here.
  if (verify.error === undefined) assert.deepEqual([verify.status, verify.stderr], [0, '']);
  else t.diagnostic(`systemd-analyze verify SKIPPED: ${verify.error.message}`);

  const configPath = join(dest, 'etc/hostfiles/agent.json');
  const keyPath = join(dest, 'var/lib/hostfiles-agent/agent.key');
  assert.equal(statSync(configPath).mode & 0o777, 0o600);
  assert.equal(statSync(keyPath).mode & 0o777, 0o600);
  assert.equal(statSync(dirname(keyPath)).mode & 0o777, 0o700);
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  assert.notEqual(config['hostUuid'], '3f0f7bd4-1c55-4b4e-9d1a-6c2c1e0c9a11', 'a hostUuid of its own, not the example');
  assert.deepEqual(config['trustedKeys'], [controllerKey]);
  assert.equal(config['keyFile'], '/var/lib/hostfiles-agent/agent.key');

  // The installed bundle starts on the installed config and key: its host paths (roots, state, the listen address,
  // libvirt's users) moved into temp dirs, everything else as installed.
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const moved = {
    ...config,
    ownership: {},
    listen: { host: '127.0.0.1', port: 0 },
    metrics: { port: 0 },
    roots: setup.roots,
    stateDir: setup.stateDir,
    keyFile: keyPath,
  };
  writeFileSync(setup.configPath, JSON.stringify(moved));
  const agent = await startAgent({ ...setup, keyFile: keyPath }, { node, bin: lib });
  assert.equal(agent.publicKey, signingKeyFromPem(readFileSync(keyPath, 'utf8')).publicKey);
  assert.equal(await agent.stop(), 0);

  // Again: the operator's config and the key are kept, the bundle replaced.
  writeFileSync(configPath, '{"edited": true}');
  const again = install();
  assert.equal(again.status, 0, again.stderr);
  assert.match(
    again.stdout,
    /kept \/etc\/hostfiles\/agent\.json \(exists\)\nkept \/var\/lib\/hostfiles-agent\/agent\.key/,
  );
  assert.equal(readFileSync(configPath, 'utf8'), '{"edited": true}');
  // A key given for a config that is kept is not written: said so, not dropped silently.
  const kept = install('--trusted-key', controllerKey);
  assert.equal(kept.status, 0, kept.stderr);
  assert.equal(
    kept.stderr,
    'install.sh: --trusted-key was not written into the kept /etc/hostfiles/agent.json: add it to its trustedKeys yourself\n',
  );
  assert.equal(readFileSync(configPath, 'utf8'), '{"edited": true}');
  // And its "Next" does not say the key is set; the first run's did.
  assert.match(first.stdout, /trustedKeys \(the controller's public key, `hostfiles init` prints it\): set, listen/);
  assert.match(kept.stdout, /trustedKeys \(the controller's public key, `hostfiles init` prints it\), listen/);

  // A key the agent's config would refuse is refused before anything is installed.
  for (const key of [
    'not-a-key',
    controllerKey.slice(0, -1),
    `${controllerKey.slice(0, 42)}B=`,
    `${controllerKey}\n${controllerKey}`,
    `${controllerKey} `,
  ]) {
    const empty = cleanDir(t);
    const refused = spawnSync(join(built, 'install.sh'), ['--destdir', empty, '--node', node, '--trusted-key', key], {
      encoding: 'utf8',
    });
    assert.equal(refused.status, 2, `${JSON.stringify(key)}: ${refused.stderr}`);
    assert.match(refused.stderr, /^install.sh: --trusted-key must be the controller's public key as `hostfiles init`/);
    assert.deepEqual(readdirSync(empty), [], `${JSON.stringify(key)} installed nothing`);
  }

  // --prefix and --node go into a wrapper script and a sed replacement: plain absolute paths only, or nothing done.
  for (const bad of [
    ['--prefix', '/opt/a b'],
    ['--prefix', 'opt/hf'],
    ['--prefix', '/opt/hf|x'],
    ['--node', 'node'],
    ['--node', `${node}\n/bin/sh`],
  ]) {
    const empty = cleanDir(t);
    const refused = spawnSync(join(built, 'install.sh'), ['--destdir', empty, ...bad], { encoding: 'utf8' });
    assert.equal(refused.status, 2, `${bad.join(' ')}: ${refused.stderr}`);
    assert.match(refused.stderr, new RegExp(`^install.sh: ${bad[0] ?? ''} must be an absolute path of letters`));
    assert.deepEqual(readdirSync(empty), [], `${bad.join(' ')} installed nothing`);
  }

  // --help tells, on stdout, and does nothing else.
  const empty = cleanDir(t);
  const help = spawnSync(join(built, 'install.sh'), ['--destdir', empty, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Installs the bundled hostfiles agent on this host.*\nUsage: install\.sh \[--prefix DIR/s);
  assert.equal(help.stderr, '');
  assert.deepEqual(readdirSync(empty), []);

  const noNode = spawnSync(join(built, 'install.sh'), ['--destdir', dest, '--node', '/nonexistent/node'], {
    encoding: 'utf8',
  });
  assert.equal(noNode.status, 2);
  assert.match(noNode.stderr, /no Node at \/nonexistent\/node: `apt-get install nodejs`/);
});
