// The `hostfiles` command line as an operator meets it: the real binary, a real database file, real agents.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createSqliteStore, registerController } from '@hostfiles/controller';
import { generateSigningKey, signingKeyFromPem } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { CLI, cleanEnv, hostfiles, initWorkspace, oneVmOnOneHost, type Run } from './support/cli.js';
import { pgSchema, POSTGRES_SKIP } from './support/postgres.js';
import { skipWithout } from './support/real-tools.js';
import { createTpmState, swtpmUnavailable } from './support/swtpm.js';

const VERSION = (createRequire(import.meta.url)('@hostfiles/controller/package.json') as { version: string }).version;

function json(run: Run): unknown {
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, '');
  return JSON.parse(run.stdout);
}

/** A failure: the exit code, one `hostfiles:` message matching `pattern`, and never a stack trace. */
function fails(run: Run, status: number, pattern: RegExp): void {
  assert.equal(run.status, status, `${run.stdout}${run.stderr}`);
  assert.equal(run.stdout, '', 'nothing on stdout');
  assert.match(run.stderr, pattern);
  assert.match(run.stderr, /^hostfiles: /);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-cli-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

test('init makes a 0600 database and key, prints the public key, and never replaces the key', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  const keyFile = join(dir, 'hostfiles.key');
  const first = await hostfiles(['init', '--db', db]);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the key beside the database, owner only');
  assert.equal(statSync(db).mode & 0o777, 0o600);
  const pem = readFileSync(keyFile, 'utf8');
  const key = signingKeyFromPem(pem);
  assert.ok(first.stdout.includes(`"trustedKeys": ["${key.publicKey}"]`), first.stdout);
  assert.ok(first.stdout.includes(key.keyId));
  const version = Number(/database +\S+ \(database created, version (\d+)\)/.exec(first.stdout)?.[1]);
  assert.ok(version > 0, first.stdout);
  assert.doesNotMatch(first.stdout, /Every controller on this database/, "a SQLite file is one controller's");

  const again = json(await hostfiles(['init', '--json'], { HOSTFILES_DB: db })) as Record<string, unknown>;
  assert.deepEqual(again, {
    database: db,
    databaseCreated: false,
    schemaVersion: version,
    schemaVersionBefore: version,
    keyFile,
    keyCreated: false,
    publicKey: key.publicKey,
    keyId: key.keyId,
  });
  assert.equal(readFileSync(keyFile, 'utf8'), pem, 'the key is unchanged');
  assert.deepEqual(json(await hostfiles(['host', 'list', '--json'], { HOSTFILES_DB: db })), []);
});

test('usage errors exit 2 with a hint; --help and --version tell the truth', async () => {
  const [unknown, typo, flagTypo, wrongFlag, noVm, noFrom] = await Promise.all([
    hostfiles(['frobnicate']),
    hostfiles(['host', 'lst']),
    hostfiles(['vm', 'add', 'x', '--host', 'h', '--uefy']),
    hostfiles(['tpm', 'add', 'x', '--uefi']),
    hostfiles(['tpm', 'remove']),
    hostfiles(['file', 'write', 'x', '--type', 'TpmState', '--path', '/a']),
  ]);
  fails(unknown, 2, /unknown command frobnicate/);
  assert.match(unknown.stderr, /hostfiles --help/);
  fails(typo, 2, /unknown command host lst \(did you mean host list\?\)/);
  fails(flagTypo, 2, /unknown option --uefy \(did you mean --uefi\?\)/);
  fails(wrongFlag, 2, /tpm add takes no option --uefi/);
  fails(noVm, 2, /tpm remove needs VM/);
  fails(noFrom, 2, /file write needs --from LOCAL/);
  // A --from state that cannot be read is the operator's input too: exit 2, one line, nothing asked of a database.
  const empty = mkdtempSync(join(tmpdir(), 'hostfiles-from-'));
  try {
    const write = (from: string) =>
      hostfiles(['file', 'write', 'x', '--type', 'TpmState', '--path', '/a', '--from', from]);
    const [missingFrom, emptyFrom] = await Promise.all([write(join(empty, 'nothing-here')), write(empty)]);
    fails(missingFrom, 2, /cannot read .*nothing-here: ENOENT/);
    fails(emptyFrom, 2, /holds no file: an empty state is not written/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }

  const help = await hostfiles(['--help']);
  assert.equal(help.status, 0);
  // Every command the help lists is one the parser knows: its own --help answers with its synopsis.
  const listed = help.stdout
    .slice(help.stdout.indexOf('Commands:'), help.stdout.indexOf('Options (every command):'))
    .split('\n')
    .map((line) => /^ {2}([a-z]+(?: [a-z]+)?)(?= |$)/.exec(line)?.[1])
    .filter((words): words is string => words !== undefined);
  for (const command of ['init', 'host add', 'host list', 'host check', 'vm add', 'tpm remove', 'file write', 'retry'])
    assert.ok(listed.includes(command), `--help lists ${command}`);
  const helps = await Promise.all(listed.map((command) => hostfiles([...command.split(' '), '--help'])));
  helps.forEach((run, i) => {
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stdout.startsWith(`Usage: hostfiles ${listed[i] ?? ''}`), run.stdout);
  });
  const tpmHelp = helps[listed.indexOf('tpm remove')];
  assert.match(tpmHelp?.stdout ?? '', /Usage: hostfiles tpm remove VM \[VM \.\.\.\]/);
  assert.match(tpmHelp?.stdout ?? '', /pending/);
  const version = await hostfiles(['--version']);
  assert.equal(version.status, 0);
  assert.equal(version.stdout, `${VERSION}\n`);
});

test('a missing database is refused, never created; a bad key file is refused with a clear error', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'nothing-here.db');
  fails(await hostfiles(['host', 'list', '--db', missing]), 1, /no database at .*nothing-here\.db.*hostfiles init/);
  assert.equal(existsSync(missing), false);

  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const bad = join(dir, 'bad.key');
  writeFileSync(bad, 'not a key\n', { mode: 0o600 });
  // A key that is there but unusable is bad input (exit 2, never restarted by the unit); a missing one exits 1.
  fails(await hostfiles(['retry', '--db', db, '--key', bad]), 2, /bad\.key is not an Ed25519 private key in PEM/);
  const open = join(dir, 'hostfiles.key');
  chmodSync(open, 0o644);
  fails(
    await hostfiles(['retry', '--db', db]),
    2,
    /hostfiles\.key is open to group or others: chmod 600 it \(its mode is 0644\)/,
  );
  fails(await hostfiles(['retry', '--db', db, '--key', join(dir, 'none.key')]), 1, /no controller key at/);
  // So is a file that is no database: said without the statement that found it out.
  const junk = join(dir, 'junk.db');
  writeFileSync(junk, 'not a database, just text that is long enough to be read as a header\n'.repeat(100));
  const notDb = await hostfiles(['host', 'list', '--db', junk]);
  fails(notDb, 2, /junk\.db is not a SQLite database/);
  assert.doesNotMatch(notDb.stderr, /SELECT/);
  // A key path that is there but no file (a directory, a FIFO) is bad input too. The FIFO is refused at once: an
  // open that waited for a writer would hold the command for good.
  fails(await hostfiles(['retry', '--db', db, '--key', dir]), 2, /the controller key .* is not a file/);
  const fifo = join(dir, 'fifo.key');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  fails(await hostfiles(['retry', '--db', db, '--key', fifo]), 2, /the controller key .*fifo\.key is not a file/);
  // A socket can't be opened at all (ENXIO): bad input too, not a machine's fault.
  const socketPath = join(dir, 'socket.key');
  const listening = createServer().listen(socketPath);
  await once(listening, 'listening');
  fails(
    await hostfiles(['retry', '--db', db, '--key', socketPath]),
    2,
    /cannot read the controller key .*socket\.key: ENXIO/,
  );
  listening.close();
  // A file far larger than any key is refused unread.
  const huge = join(dir, 'huge.key');
  writeFileSync(huge, '', { mode: 0o600 });
  truncateSync(huge, 2 * 1024 * 1024);
  fails(await hostfiles(['retry', '--db', db, '--key', huge]), 2, /huge\.key is over 1 MiB: too large to be one/);

  // init refuses such a key before it makes anything: no database is left behind.
  const fresh = join(dir, 'fresh.db');
  fails(await hostfiles(['init', '--db', fresh, '--key', open]), 2, /open to group or others: chmod 600/);
  assert.equal(existsSync(fresh), false, 'no database made for a refused key');

  // A URL of a scheme hostfiles does not open is bad input, never taken for a SQLite file's name.
  for (const command of [['init'], ['host', 'list'], ['retry'], ['vm', 'add', 'v1', '--host', 'h0']]) {
    const refused = await hostfiles([...command, '--db', 'mysql://u:pw@db/x']);
    fails(refused, 2, /mysql:\/\/ is not a database hostfiles opens/);
    assert.doesNotMatch(refused.stderr, /pw/, 'its password never repeated');
  }
});

test('a VM name no libvirt domain can have is bad input: a slash (its NVRAM would go below a directory), a control character', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const [slash, tab] = await Promise.all([
    hostfiles(['vm', 'add', 'web/1', '--host', 'h0', '--uefi', '--db', db]),
    hostfiles(['vm', 'add', 'web\t1', '--host', 'h0', '--db', db]),
  ]);
  // Refused for the name before the host is looked for (there is none: that would be exit 1).
  fails(slash, 2, /the VM name "web\/1" holds a '\/'/);
  fails(tab, 2, /the VM name "web\\t1" holds a control character/);
  // Its NVRAM, <name>_VARS.fd, must be a file name the host can have: 255 bytes at most. Said without the whole name.
  const long = await hostfiles(['vm', 'add', 'a'.repeat(248), '--host', 'h0', '--db', db]);
  fails(long, 2, /is 248 bytes: its NVRAM file, _VARS\.fd after it, would be over the 255 a file name may have/);
  assert.ok(long.stderr.length < 400, long.stderr);
  fails(await hostfiles(['vm', 'add', 'a'.repeat(247), '--host', 'h0', '--db', db]), 1, /no host h0/);
});

test('a name shaped like a uuid, or empty, is bad input for a host and a VM: a uuid names the one that has it', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const uuidName = '9827bb17-2f0c-4d2e-9a6b-0ca19fb5fca0';
  const KEY = generateSigningKey().publicKey;
  const runs = await Promise.all([
    hostfiles(['host', 'add', uuidName, 'http://127.0.0.1:9', '--expect-key', KEY, '--db', db]),
    hostfiles(['host', 'add', uuidName.toUpperCase(), 'http://127.0.0.1:9', '--expect-key', KEY, '--db', db]),
    hostfiles(['host', 'add', '', 'http://127.0.0.1:9', '--expect-key', KEY, '--db', db]),
    hostfiles(['vm', 'add', uuidName, '--host', 'h0', '--db', db]),
    hostfiles(['vm', 'add', uuidName, '--uuid', uuidName, '--host', 'h0', '--db', db]),
  ]);
  // Refused for the name before the agent or the host is looked for (port 9 answers nothing: that would be exit 1).
  fails(runs[0], 2, new RegExp(`the host name "${uuidName}" is shaped like a uuid`));
  fails(runs[1], 2, /is shaped like a uuid/);
  fails(runs[2], 2, /the host name "" is empty/);
  fails(runs[3], 2, new RegExp(`the VM name "${uuidName}" is shaped like a uuid`));
  // A VM named by its own uuid (libvirt domains named so) names nothing else: past the name, to the missing host.
  fails(runs[4], 1, /no host h0/);
});

/** A workspace whose VM `a` another controller holds (as a command it left running): a flow on `a` waits. */
async function heldVm(t: TestContext, prefix: string) {
  const workspace = await initWorkspace(t, prefix);
  await oneVmOnOneHost(t, workspace);
  const store = await createSqliteStore(workspace.db);
  const other = await registerController(store, { now: Date.now, settings: { leaseMs: 60_000, graceMs: 1000 } });
  t.after(async () => {
    await other.retire();
    await store.close();
  });
  const vm = await store.getVmByName('a');
  assert.ok(vm !== null);
  assert.ok(
    await store.tryAcquireLeases('held', other.id, [{ key: `vm:${vm.uuid}`, mode: 'exclusive' }], Date.now(), 1000),
  );
  return { workspace, store, vm };
}

/** `hostfiles sync a` started, once its first line on stderr (it waits) is there. */
async function waitingSync(db: string) {
  const child = spawn(process.execPath, [CLI, '--db', db, 'sync', 'a'], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Its exit code, or the signal it died of.
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('close', (code, signal) => {
      resolve(code ?? signal);
    }),
  );
  const output = { stderr: '' };
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      output.stderr += chunk.toString();
      if (output.stderr.includes('\n')) resolve();
    });
  });
  return { child, exited, output };
}

test(
  'a command that must wait for what another controller holds says so on stderr, then runs once it is free',
  { timeout: 60_000 },
  async (t) => {
    const { workspace, store, vm } = await heldVm(t, 'hostfiles-wait-');
    const { child, exited, output } = await waitingSync(workspace.db);
    assert.match(
      output.stderr,
      new RegExp(`^hostfiles: waiting for vm:${vm.uuid}(, [^:]+)?: another controller holds them`),
    );
    assert.equal(child.exitCode, null, 'still waiting');
    await store.releaseLeases('held');
    assert.equal(await exited, 0, output.stderr);
  },
);

test(
  'a command that runs flows, stopped by SIGINT or SIGTERM, says what it leaves and what carries it on, and dies of the signal',
  { timeout: 60_000 },
  async (t) => {
    // It waits for the held VM, its flows open, until the signal.
    const { workspace } = await heldVm(t, 'hostfiles-interrupt-');
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const { child, exited, output } = await waitingSync(workspace.db);
      assert.match(output.stderr, /^hostfiles: waiting for /);
      child.kill(signal);
      // Died of it, as without the note (a shell loop stops at a Ctrl-C only then; the shell says 130 or 143).
      assert.equal(await exited, signal, output.stderr);
      assert.match(
        output.stderr,
        new RegExp(
          `\nhostfiles: stopped by ${signal}: an operation it began stays running \\(\`hostfiles ops list --state running\`\\) ` +
            "until `hostfiles resume` carries it on, which waits up to ~\\d+ s for this command's hold to end\n$",
        ),
      );
    }
  },
);

test("a file name its owner chose reaches the operator's terminal as text: control characters shown as \\xNN", async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-controls-');
  const { agent } = await oneVmOnOneHost(t, workspace);
  // As the QEMU user may name a file in the NvRam root: erase the line, go back, print a green "all clean".
  const name = 'x\x1b[2K\r\x1b[32mall clean\x1b[0m_VARS.fd';
  writeFileSync(join(agent.setup.roots.NvRam, name), 'planted');
  const run = await workspace.cli('reconcile', 'h0');
  assert.equal(run.status, 0, run.stderr);
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(run.stdout), 'no control character but newlines');
  assert.ok(run.stdout.includes('x\\x1b[2K\\x0d\\x1b[32mall clean\\x1b[0m_VARS.fd'), run.stdout);
  // The JSON is JSON's: the name as it is, escaped by JSON itself.
  const json = await workspace.cli('--json', 'reconcile', 'h0');
  assert.ok(json.stdout.includes(JSON.stringify(name).slice(1, -1)), json.stdout);
  // A failure's line too (one line, whatever its message holds).
  const failed = await workspace.cli('tpm', 'remove', 'b\x1b[31m');
  assert.equal(failed.status, 1);
  assert.equal(failed.stderr, 'hostfiles: no VM b\\x1b[31m\n');
});

test('a sync that exits 1 is journaled failed, with why: a VM sync and a fleet sync with the host down', async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-failed-sync-');
  const { agent, varsPath } = await oneVmOnOneHost(t, workspace);
  const from = join(workspace.dir, 'vars');
  writeFileSync(from, 'vars of a');
  await workspace.ok('file', 'write', 'a', '--type', 'NvRam', '--path', varsPath, '--from', from);
  await agent.stop();
  type Op = { kind: string; state: string };
  for (const [args, kind] of [
    [['sync', 'a'], 'vm.sync'],
    [['sync', '--all'], 'fleet.sync'],
  ] as const) {
    const run = await workspace.cli(...args);
    assert.equal(run.status, 1, run.stderr);
    const failed = JSON.parse(await workspace.ok('ops', 'list', '--state', 'failed', '--kind', kind, '--json')) as Op[];
    assert.deepEqual(
      failed.map((o) => [o.kind, o.state]),
      [[kind, 'failed']],
    );
    const listed = await workspace.ok('ops', 'list', '--state', 'failed', '--kind', kind);
    assert.match(listed, new RegExp(`${kind.replace('.', '\\.')}\\s+failed\\s.*unreachable`));
  }
});

test("file write refuses a state of the wrong kind: NVRAM from a directory, swtpm's own state directory as a vTPM", async (t) => {
  if (skipWithout(t, swtpmUnavailable())) return;
  const workspace = await initWorkspace(t, 'hostfiles-kinds-');
  const dir = join(workspace.dir, 'from');
  // What `swtpm_setup --tpmstate DIR` makes: its files at DIR's top, where libvirt keeps them in <uuid>/tpm2/.
  const swtpmDir = join(dir, 'swtpm-state');
  mkdirSync(dir);
  // swtpm_setup runs as its own user, who must reach the directory.
  for (const above of [workspace.dir, dir]) chmodSync(above, 0o711);
  await createTpmState(swtpmDir);
  const write = (type: string, from: string) =>
    workspace.cli('file', 'write', 'nosuchvm', '--type', type, '--path', '/x/y', '--from', from);
  fails(await write('NvRam', swtpmDir), 2, /swtpm-state is a directory: an NVRAM state is one file/);
  fails(
    await write('TpmState', swtpmDir),
    2,
    /swtpm-state holds swtpm's tpm2-00\.permall at its top, where libvirt keeps it in tpm2\/: pass a directory that holds tpm2\//,
  );
  // Laid out as libvirt does (<uuid>/tpm2/…): past the state, to the VM that is not there.
  const libvirt = join(dir, 'uuid');
  mkdirSync(libvirt);
  renameSync(swtpmDir, join(libvirt, 'tpm2'));
  fails(await write('TpmState', libvirt), 1, /no VM nosuchvm/);
});

test("a state path's trailing slash (shell completion of a directory) is dropped as the command line is read: the state lands at and is recorded as the path without it", async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-slash-');
  const { agent } = await oneVmOnOneHost(t, workspace);
  const root = agent.setup.roots.TpmState;
  // libvirt's own path for a's TPM state (<root>/<uuid>), so the write has nothing else to say (no note on stderr).
  const [vm] = JSON.parse(await workspace.ok('vm', 'list', '--json')) as { uuid: string }[];
  const tpmDir = join(root, vm?.uuid ?? 'a');
  const from = join(workspace.dir, 'tpm');
  mkdirSync(join(from, 'tpm2'), { recursive: true });
  writeFileSync(join(from, 'tpm2', 'tpm2-00.permall'), 'permall of a');
  const write = (path: string, ...flags: string[]) =>
    workspace.cli('file', 'write', 'a', '--type', 'TpmState', '--path', path, '--from', from, ...flags);

  const wrote = json(await write(`${tpmDir}/`, '--json')) as { path: string; kind: string; replaced?: string };
  assert.deepEqual([wrote.path, wrote.kind], [tpmDir, 'dir']);
  assert.equal(readFileSync(join(tpmDir, 'tpm2', 'tpm2-00.permall'), 'utf8'), 'permall of a');
  const recorded = async (): Promise<string[]> =>
    (JSON.parse(await workspace.ok('file', 'list', 'a', '--json')) as { path: string }[]).map((f) => f.path);
  assert.deepEqual(await recorded(), [tpmDir]);
  // Written again as the operator spells it otherwise: the same state, not a new path whose old one goes.
  const again = json(await write(tpmDir, '--json')) as { path: string; replaced?: string };
  assert.deepEqual([again.path, again.replaced], [tpmDir, undefined]);
  const restored = json(await workspace.cli('restore', 'a', '--tpm-path', `${tpmDir}//`, '--json')) as {
    files: { path: string; status: string }[];
  };
  assert.deepEqual(
    restored.files.map((f) => [f.path, f.status]),
    [[tpmDir, 'written']],
  );
  assert.deepEqual(await recorded(), [tpmDir]);
  assert.deepEqual(JSON.parse(await workspace.ok('pending', 'list', '--json')), [], 'nothing in the outbox');

  // Only the end is trimmed: a path not normalized inside is refused as before, and / stays /.
  for (const path of [`${root}//${vm?.uuid}/`, `${root}/./${vm?.uuid}/`]) {
    fails(
      await write(path),
      2,
      new RegExp(`^hostfiles: ${path.slice(0, -1).replaceAll('.', '\\.')} is not an absolute, normalized path`),
    );
  }
  fails(await write('///'), 2, /^hostfiles: \/ is not an absolute, normalized path/);
  assert.deepEqual(await recorded(), [tpmDir]);
});

test("ops list names each operation's subject by its kind: a VM's or host's name while its row exists, else its uuid; pending list after vm destroy shows the name the VM had", async (t) => {
  const workspace = await initWorkspace(t, 'hostfiles-subjects-');
  const { ok, cli } = workspace;
  const { agent, varsPath } = await oneVmOnOneHost(t, workspace);
  const other = await startAgent(setupAgent({ controllerKey: workspace.key }));
  t.after(async () => {
    await other.stop();
    removeSetup(other.setup);
  });
  await ok('host', 'add', 'h1', other.url, '--expect-key', other.publicKey);
  for (const vm of ['b', 'c']) {
    await ok('vm', 'add', vm, '--host', 'h0');
    await ok('tpm', 'add', vm);
  }
  const uuids = new Map(
    (JSON.parse(await ok('vm', 'list', '--json')) as { name: string; uuid: string }[]).map((v) => [v.name, v.uuid]),
  );
  const uuidOf = (vm: string): string => uuids.get(vm) ?? assert.fail(vm);
  const from = join(workspace.dir, 'state');
  writeFileSync(from, 'a state');
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', varsPath, '--from', from);
  const bTpm = join(agent.setup.roots.TpmState, 'b', 'tpm2-00.permall');
  await ok('file', 'write', 'b', '--type', 'TpmState', '--path', bTpm, '--from', from);
  await ok('reconcile', 'h0');
  await ok('reconcile', 'h1');
  await ok('sync', '--all');
  await ok('tpm', 'remove', 'a', 'c');
  await ok('vm', 'destroy', 'c');
  await ok('host', 'remove', 'h1');
  // A VM named by its own uuid, whose TPM is removed while its host is down: a live VM's deletion, never shown as
  // destroyed.
  const self = randomUUID();
  await ok('vm', 'add', self, '--host', 'h0', '--uuid', self);
  await ok('tpm', 'add', self);
  const selfTpm = join(agent.setup.roots.TpmState, self, 'tpm2-00.permall');
  await ok('file', 'write', self, '--type', 'TpmState', '--path', selfTpm, '--from', from);
  // b's host is down when b is destroyed: its state's deletion waits in the outbox, under b's uuid alone.
  await agent.stop();
  await ok('tpm', 'remove', self);
  await ok('vm', 'destroy', 'b');

  type Op = { kind: string; subject: string; subjectName: string };
  const ops = (JSON.parse(await ok('ops', 'list', '--json')) as Op[]).reverse();
  const [h0, h1] = [agent.setup.hostUuid, other.setup.hostUuid];
  const [a, b, c] = ['a', 'b', 'c'].map(uuidOf) as [string, string, string];
  assert.deepEqual(
    ops.map((o) => [o.kind, o.subject, o.subjectName]),
    [
      ['file.write', a, 'a'],
      ['file.write', b, b],
      ['host.reconcile', h0, 'h0'],
      ['host.reconcile', h1, h1],
      ['fleet.sync', 'fleet', 'fleet'],
      ['tpm.remove', `${a},${c}`, `a,${c}`],
      ['vm.destroy', c, c],
      ['host.remove', h1, h1],
      ['file.write', self, self],
      ['tpm.remove', self, self],
      ['vm.destroy', b, b],
    ],
  );
  const listed = await ok('ops', 'list');
  const row = (kind: string, subject: string): RegExp =>
    new RegExp(`^\\S+ +${kind.replace('.', '\\.')} +\\S+ +\\S+ +${subject} +`, 'm');
  assert.match(listed, row('file.write', 'a'));
  assert.match(listed, row('host.reconcile', 'h0'));
  assert.match(listed, row('tpm.remove', `a,${c}`));
  assert.match(listed, row('vm.destroy', b));
  assert.match(listed, row('fleet.sync', 'fleet'));
  // ops show: the name beside the uuid while the VM exists; the uuid alone once it is gone.
  const [, bWrite, aWrite] = JSON.parse(await ok('ops', 'list', '--kind', 'file.write', '--json')) as { id: string }[];
  assert.match(await ok('ops', 'show', aWrite?.id ?? ''), new RegExp(`^  subject: +a \\(${a}\\)$`, 'm'));
  assert.match(await ok('ops', 'show', bWrite?.id ?? ''), new RegExp(`^  subject: +${b}$`, 'm'));

  // The outbox after the destroy: the VM's row went with it, but each deletion kept the name it had when it was
  // scheduled.
  const pending = JSON.parse(await ok('pending', 'list', '--json')) as {
    vmUuid: string;
    vmName: string;
    vmDestroyed: boolean;
    path: string;
  }[];
  assert.deepEqual(
    pending.map((p) => [p.path, p.vmUuid, p.vmName, p.vmDestroyed]).sort(),
    [
      [bTpm, b, 'b', true],
      [selfTpm, self, self, false],
    ].sort(),
  );
  assert.match((await cli('pending', 'list')).stdout, new RegExp(`^h0 +TpmState +${selfTpm} +${self} +\\d`, 'm'));
  assert.match((await cli('pending', 'list')).stdout, new RegExp(`^h0 +TpmState +${bTpm} +b \\(destroyed\\) +`, 'm'));
});

test('demo has no --json output: asked for it, it is refused before anything starts', async () => {
  const run = await hostfiles(['--json', 'demo']);
  fails(run, 2, /demo prints lines for a person to read; it has no --json output/);
  assert.equal(run.stdout, '');
});

test('only init makes a database: an empty file, or a PostgreSQL schema never initialized, is refused and left as it was', async (t) => {
  const dir = tempDir(t);
  // A controller key of its own (init makes it beside its database), for the commands that load one first.
  assert.equal((await hostfiles(['init', '--db', join(dir, 'hostfiles.db')])).status, 0);
  const key = join(dir, 'hostfiles.key');
  // An empty file is an empty SQLite database: every command used to create hostfiles' tables in it (or in another
  // program's database) and answer from an empty fleet.
  const empty = join(dir, 'other.db');
  writeFileSync(empty, '');
  for (const args of [
    ['host', 'list'],
    ['reconcile', 'h0'],
  ]) {
    fails(
      await hostfiles([...args, '--db', empty, '--key', key]),
      1,
      /is not a hostfiles database \(no schema_migrations table\): `hostfiles init` makes one/,
    );
  }
  assert.equal(statSync(empty).size, 0, 'nothing written into it');
  if (POSTGRES_SKIP !== undefined) {
    t.diagnostic(`the PostgreSQL half SKIPPED: ${POSTGRES_SKIP}`);
    return;
  }
  // A schema named by a typo: refused, and not made.
  const pg = await pgSchema();
  t.after(() => pg.drop());
  const schemaExists = async (): Promise<boolean> =>
    (await pg.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [pg.schema])).length > 0;
  fails(
    await hostfiles(['host', 'list', '--db', pg.db, '--key', key]),
    1,
    new RegExp(`is not a hostfiles database \\(no schema_migrations table in schema ${pg.schema}\\)`),
  );
  assert.equal(await schemaExists(), false, 'the schema was not created');
  // init makes it, and says so; a second init finds it current. The key is named whole, to be copied to each
  // controller sharing the database.
  const made = await hostfiles(['init', '--db', pg.db, '--key', join(dir, 'pg.key')]);
  assert.equal(made.status, 0, made.stderr);
  const version = /\(tables created, version (\d+)\)/.exec(made.stdout)?.[1];
  assert.ok(version !== undefined, made.stdout);
  assert.match(
    made.stdout,
    new RegExp(
      `Every controller on this database signs with this key: copy ${join(dir, 'pg.key')} \\(mode 0600\\) to each`,
    ),
  );
  const current = await hostfiles(['init', '--db', pg.db, '--key', join(dir, 'pg.key')]);
  assert.match(current.stdout, new RegExp(`\\(schema up to date, version ${version}\\)`));
  const listed = await hostfiles(['host', 'list', '--db', pg.db, '--key', key]);
  assert.equal(listed.status, 0, listed.stderr);
  assert.equal(await schemaExists(), true);
});

test('a malformed --db URL (its form, host, schema or sslmode) is bad input: exit 2 before any lookup or connection, its password never printed', async () => {
  const cases: [string, RegExp][] = [
    ['postgres://admin:s3cretpw@%%bad/db', /host is not percent-encoded right/],
    ['postgres://admin:s3cretpw@bad_host!/db', /host is not a host name, an address or a socket directory/],
    ['postgres://admin:s3cretpw@[x/db', /does not parse as a URL/],
    ['postgresql://admin:s3cretpw@db.example:99999/db', /does not parse as a URL/],
    ['postgres://admin:s3cretpw@127.0.0.1/test?schema=Bad-Name', /its schema is not a lowercase name/],
    ['postgres://admin:s3cretpw@127.0.0.1/test?schema=', /its schema is not a lowercase name/],
    ['postgres://admin:s3cretpw@127.0.0.1/test?schema=a&schema=b', /it gives schema more than once/],
    ['postgres://admin:s3cretpw@127.0.0.1/test?sslmode=bogus', /its sslmode is none of disable, allow, prefer/],
    // A password may be a parameter too: the driver reads every parameter as config.
    ['postgres://admin@127.0.0.1/test?password=s3cretpw&schema=Bad', /password=\*\*\*&schema=Bad.*its schema is not/],
    ['postgres://admin@127.0.0.1/test?sslpassword=s3cretpw&sslmode=x', /sslpassword=\*\*\*.*its sslmode is none/],
  ];
  const runs = await Promise.all(cases.map(([db]) => hostfiles(['host', 'list', '--db', db])));
  runs.forEach((run, i) => {
    fails(run, 2, cases[i]?.[1] ?? /never/);
    assert.match(run.stderr, /--db or HOSTFILES_DB/);
    assert.doesNotMatch(run.stderr, /s3cretpw/, 'the password is never printed');
  });
  // The same from the environment; and a URL whose host is a socket directory (percent-encoded) is no problem of
  // form: it gets as far as connecting (nothing listens there: exit 1, a failure, not bad input).
  const fromEnv = await hostfiles(['host', 'list'], { HOSTFILES_DB: 'postgres://[x/db' });
  fails(fromEnv, 2, /does not parse as a URL/);
  const socket = await hostfiles(['host', 'list', '--db', 'postgres://%2Fnonexistent-dir/db']);
  fails(socket, 1, /cannot open the database/);
});

test('the operator path: hosts, VMs, TPMs, files; a removal with a host down, pending, then retried', async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const key = signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
  const agents: AgentHandle[] = await Promise.all([0, 1].map(() => startAgent(setupAgent({ controllerKey: key }))));
  t.after(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    for (const agent of agents) removeSetup(agent.setup);
  });
  const [a0, a1] = agents as [AgentHandle, AgentHandle];
  const cli = (...args: string[]): Promise<Run> => hostfiles(['--db', db, ...args]);

  // Hosts
  for (const [i, agent] of agents.entries()) {
    assert.equal((await cli('host', 'add', `h${i}`, agent.url, '--expect-key', agent.publicKey)).status, 0);
  }
  const hosts = json(await cli('host', 'list', '--json')) as { name: string; uuid: string; state: string }[];
  assert.deepEqual(
    hosts.map((h) => [h.name, h.uuid, h.state]),
    [
      ['h0', a0.setup.hostUuid, 'Connected'],
      ['h1', a1.setup.hostUuid, 'Connected'],
    ],
  );
  fails(await cli('host', 'add', 'h0', a1.url, '--expect-key', a1.publicKey), 1, /a host named h0 exists already/);
  // Bad input is exit 2 wherever it is found, in the arguments or by the flow that reads them.
  for (const url of ['kvm-01:7441', 'not a url']) {
    fails(await cli('host', 'add', 'h8', url, '--expect-key', a1.publicKey), 2, /is not a URL|an agent URL is https/);
  }
  // A password in the URL is refused before anything is reached, and never repeated.
  const withPassword = a1.url.replace('://', '://admin:s3cret@');
  const refused = await cli('host', 'add', 'h8', withPassword, '--expect-key', a1.publicKey);
  fails(refused, 2, /an agent URL carries no user name or password/);
  assert.doesNotMatch(refused.stdout + refused.stderr, /s3cret/);
  // Nor when the rest of it does not parse.
  const unparsed = await cli('host', 'add', 'h8', 'https://admin:s3cret@kvm-01:99999', '--expect-key', a1.publicKey);
  fails(unparsed, 2, /https:\/\/\*\*\*@kvm-01:99999 is not a URL/);
  assert.doesNotMatch(unparsed.stderr, /s3cret/);

  // VMs and TPMs: a (UEFI, no secure boot) on h0, b (legacy) on h1, c without a TPM
  assert.equal((await cli('vm', 'add', 'a', '--host', 'h0', '--uefi')).status, 0);
  assert.equal((await cli('vm', 'add', 'b', '--host', 'h1')).status, 0);
  assert.equal((await cli('vm', 'add', 'c', '--host', 'h0')).status, 0);
  fails(await cli('vm', 'add', 'd', '--host', 'nosuchhost'), 1, /no host nosuchhost/);
  assert.equal((await cli('tpm', 'add', 'a')).status, 0);
  assert.equal((await cli('tpm', 'add', 'b', '--key-provider', 'kms-2')).status, 0);
  // Each TPM's key binding, attached while the TPM exists.
  type Binding = { vmName: string; keyProvider: string; state: string; tpmExists: boolean; pendingDeletions: number };
  const bindingsOf = async (...flags: string[]) =>
    (json(await cli('binding', 'list', '--json', ...flags)) as Binding[])
      .map((b) => [b.vmName, b.keyProvider, b.state, b.tpmExists, b.pendingDeletions])
      .sort();
  assert.deepEqual(await bindingsOf(), [
    ['a', 'default', 'attached', true, 0],
    ['b', 'kms-2', 'attached', true, 0],
  ]);
  assert.deepEqual(await bindingsOf('--state', 'detaching'), []);
  fails(await cli('binding', 'list', '--state', 'gone'), 2, /--state is attached or detaching, not gone/);
  const vms = json(await cli('vm', 'list', '--json')) as {
    name: string;
    tpm: { binding: { keyProvider: string } } | null;
  }[];
  assert.deepEqual(
    vms.map((vm) => [vm.name, vm.tpm?.binding.keyProvider ?? null]),
    [
      ['a', 'default'],
      ['b', 'kms-2'],
      ['c', null],
    ],
  );

  // Files land on the agents' disks
  const local = (name: string, content: string): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const aTpm = join(a0.setup.roots.TpmState, 'a', 'tpm2-00.permall');
  const aVars = join(a0.setup.roots.NvRam, 'a_VARS.fd');
  const bTpm = join(a1.setup.roots.TpmState, 'b', 'tpm2-00.permall');
  const writes: [string, string, string, string][] = [
    ['a', 'TpmState', aTpm, 'tpm of a'],
    ['a', 'NvRam', aVars, 'vars of a'],
    ['b', 'TpmState', bTpm, 'tpm of b'],
  ];
  // A state not where libvirt looks by default is written, with a note that says where libvirt looks: a's TPM state
  // (libvirt's is <root>/<uuid>) and b's; a's NVRAM is libvirt's own name for it (<root>/a_VARS.fd), no note.
  const uuids = new Map(
    (json(await cli('vm', 'list', '--json')) as { name: string; uuid: string }[]).map((v) => [v.name, v.uuid]),
  );
  for (const [vm, type, path, content] of writes) {
    const from = local(`${vm}-${type}`, content);
    const run = await cli('file', 'write', vm, '--type', type, '--path', path, '--from', from);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(path, 'utf8'), content);
    if (type === 'NvRam') {
      assert.equal(run.stderr, '');
      continue;
    }
    const root = vm === 'a' ? a0.setup.roots.TpmState : a1.setup.roots.TpmState;
    assert.equal(
      run.stderr,
      `hostfiles: note: libvirt looks for VM ${vm}'s TpmState at ${join(root, uuids.get(vm) ?? '?')}; ${path} is ` +
        "used only where the domain's <tpm><backend type='emulator'><source type='dir' path='…'/> (a recent " +
        'libvirt; older ones never) names it\n',
    );
  }
  const files = json(await cli('file', 'list', '--json')) as { vmName: string; hostName: string; path: string }[];
  assert.deepEqual(
    files.map((f) => [f.vmName, f.hostName, f.path]).sort(),
    [
      ['a', 'h0', aTpm],
      ['a', 'h0', aVars],
      ['b', 'h1', bTpm],
    ].sort(),
  );
  assert.equal((json(await cli('file', 'list', 'a', '--json')) as unknown[]).length, 2);
  // Every write journaled, newest first, with what it wrote.
  type Op = { id: string; kind: string; state: string; input: { path: string } };
  const writeOps = json(await cli('ops', 'list', '--kind', 'file.write', '--json')) as Op[];
  assert.deepEqual(
    writeOps.map((o) => [o.kind, o.state, o.input.path]),
    writes.map(([, , path]) => ['file.write', 'done', path]).reverse(),
  );
  assert.equal((json(await cli('ops', 'list', '--limit', '1', '--json')) as Op[])[0]?.id, writeOps[0]?.id);
  assert.deepEqual(json(await cli('ops', 'list', '--state', 'running', '--json')), []);
  // A write the agent answered with a failed op: the operation says why, in the list and in show, not only in its
  // report.
  const planted = join(a0.setup.roots.NvRam, 'planted');
  writeFileSync(planted, 'not a directory');
  const below = join(planted, 'a_VARS.fd');
  fails(
    await cli('file', 'write', 'a', '--type', 'NvRam', '--path', below, '--from', local('below', 'x')),
    1,
    /not_regular_file/,
  );
  const failedList = await cli('ops', 'list', '--state', 'failed');
  assert.equal(failedList.status, 0, failedList.stderr);
  assert.match(
    failedList.stdout,
    /file\.write\s+failed\s+.*: not_regular_file: a parent path component is not a directory/,
  );
  const [failedOp] = json(await cli('ops', 'list', '--state', 'failed', '--json')) as Op[];
  const failedShown = await cli('ops', 'show', failedOp?.id ?? '');
  assert.match(
    failedShown.stdout,
    new RegExp(`error: +${below}: not_regular_file: a parent path component is not a directory`),
  );
  fails(await cli('ops', 'list', '--state', 'stuck'), 2, /--state is running, done, failed, not stuck/);
  fails(await cli('ops', 'list', '--kind', 'write'), 2, /--kind is one of tpm\.remove, .*file\.write, not write/);
  fails(await cli('ops', 'list', '--limit', '0'), 2, /--limit is a whole number from 1 to 1000/);
  // Not a uuid: a wrong argument (exit 2); a uuid of no operation: looked for and not found (exit 1).
  fails(await cli('ops', 'show', 'nope'), 2, /nope is not an operation id \(a uuid/);
  const unknown = '0b9e8f3a-9d3c-4a57-b0a4-3f2d7f8e6c11';
  fails(await cli('ops', 'show', unknown), 1, new RegExp(`no operation ${unknown}`));

  // Refused removals change nothing
  fails(await cli('tpm', 'remove', 'nosuchvm'), 1, /no VM nosuchvm/);
  fails(await cli('tpm', 'remove', 'a', 'c'), 1, /VM c has no TPM/);
  assert.ok(existsSync(aTpm), 'a removal naming a VM without TPM does nothing');

  // h1 goes down: the health check says so, a new host at its URL cannot be added
  await a1.stop();
  const checks = json(await cli('host', 'check', '--json')) as { name: string; state: string }[];
  assert.deepEqual(
    checks.map((c) => [c.name, c.state]),
    [
      ['h0', 'Connected'],
      ['h1', 'Disconnected'],
    ],
  );
  // ... and why: each count of the text is followed by the hosts it counts, with the reason.
  const h1 = (json(await cli('host', 'check', '--json')) as { name: string; uuid: string; reason?: string }[])[1];
  assert.match(h1?.reason ?? '', /^unreachable: /);
  const checked = (await cli('host', 'check')).stdout;
  assert.match(checked, /^h1\s+Disconnected\s+Disconnected\s+\S+\s+unreachable: /m);
  assert.match(checked, new RegExp(`^1 connected, 1 disconnected\n {2}h1 \\(${h1?.uuid ?? ''}\\): unreachable: `, 'm'));
  fails(await cli('host', 'add', 'h9', a1.url, '--expect-key', a1.publicKey), 1, /cannot reach the agent at/);

  // The removal: a's files gone, b's pending with its reason, exit 0
  const removal = await cli('tpm', 'remove', 'a', 'b');
  assert.equal(removal.status, 0, removal.stderr);
  assert.match(removal.stdout, /summary: 2 TPMs removed; 3 files: 2 gone, 1 pending \(on h1\); \d+ commands? sent/);
  const bLine = removal.stdout.split('\n').find((line) => line.includes(bTpm)) ?? '';
  assert.match(bLine, /^h1\s+pending\s+TpmState\s+\S+\s+unreachable: /);
  assert.equal(existsSync(aTpm), false);
  assert.equal(existsSync(aVars), false, 'UEFI without secure boot: NVRAM goes with the TPM');
  assert.equal(readFileSync(bTpm, 'utf8'), 'tpm of b', 'the down host kept its file');
  // b's binding outlives its TPM row while its state is pending deletion: listed, with what holds it.
  assert.deepEqual(await bindingsOf(), [['b', 'kms-2', 'detaching', false, 1]]);
  assert.match(
    (await cli('binding', 'list', '--state', 'detaching')).stdout,
    /\bb\s+kms-2\s+detaching\s+\S+\s+gone\s+1$/m,
  );
  const [removalOp] = json(await cli('ops', 'list', '--limit', '1', '--json')) as Op[];
  assert.deepEqual([removalOp?.kind, removalOp?.state], ['tpm.remove', 'done']);
  const shown = await cli('ops', 'show', removalOp?.id ?? '');
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /^operation \S+\n {2}kind: {4}tpm\.remove\n/);
  assert.match(shown.stdout, /\ninput:\n[\s\S]*\nreport:\n[\s\S]*unreachable/);
  assert.deepEqual(json(await cli('ops', 'show', removalOp?.id ?? '', '--json')), removalOp);

  const pending = json(await cli('pending', 'list', '--json')) as {
    hostName: string;
    vmName: string;
    path: string;
    lastError: string;
  }[];
  assert.equal(pending.length, 1);
  assert.deepEqual([pending[0]?.hostName, pending[0]?.vmName, pending[0]?.path], ['h1', 'b', bTpm]);
  assert.match(pending[0]?.lastError ?? '', /unreachable/);
  assert.match((await cli('pending', 'list')).stdout, /unreachable/);
  fails(
    await cli('host', 'remove', 'h1'),
    1,
    /host_in_use: host h1 is still named by 1 VM\(s\) living on it, 1 deletion\(s\) pending on it; nothing changed/,
  );

  // h1 comes back on the same port with the same key: one retry pass drains the outbox
  agents[1] = await startAgent(
    setupAgent({
      dir: a1.setup.dir,
      controllerKey: key,
      config: { listen: { host: '127.0.0.1', port: a1.port }, hostUuid: a1.setup.hostUuid },
    }),
  );
  const retry = json(await cli('retry', '--json')) as {
    attempted: number;
    confirmed: number;
    stillPending: number;
    detached: string[];
  };
  assert.deepEqual([retry.attempted, retry.confirmed, retry.stillPending, retry.detached.length], [1, 1, 0, 1]);
  assert.equal(existsSync(bTpm), false);
  assert.deepEqual(json(await cli('pending', 'list', '--json')), []);
  assert.equal((await cli('retry')).stdout, 'retry: nothing pending\n');
});
