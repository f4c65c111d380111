// A new host's config with many things wrong: the real hostfiles-agent names them all in one run, not a pass at a time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AGENT_BIN, removeSetup, setupAgent, type AgentSetup } from './support/agent-process.js';

const agent = (...args: string[]): { status: number | null; stdout: string; lines: string[] } => {
  // Bounded only so that an agent which wrongly starts fails this test instead of hanging it.
  const result = spawnSync(process.execPath, [AGENT_BIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });
  return { status: result.status, stdout: result.stdout, lines: result.stderr.split('\n').map((line) => line.trim()) };
};

interface BadHost {
  readonly setup: AgentSetup;
  readonly missingRoot: string;
}

/**
 * Problems in the config itself (a hostUuid that is no string, a port out of range, a relative NvRam root, plain HTTP
 * on every address) and on disk (a TpmState root that does not exist, a stateDir others may write to, a key file
 * others may read).
 */
function badHost(t: TestContext, config: Record<string, unknown> = {}): BadHost {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'hostfiles-agent-problems-')));
  const missingRoot = join(dir, 'libvirt', 'swtpm');
  const setup = setupAgent({
    dir,
    config: {
      hostUuid: 42,
      listen: { host: '0.0.0.0', port: 70_000, tls: false },
      roots: { TpmState: missingRoot, NvRam: 'nvram' },
      ...config,
    },
  });
  t.after(() => {
    removeSetup(setup);
  });
  mkdirSync(setup.stateDir);
  chmodSync(setup.stateDir, 0o777);
  assert.equal(agent('keygen', '--out', setup.keyFile).status, 0);
  chmodSync(setup.keyFile, 0o644);
  return { setup, missingRoot };
}

/** The config's own problems, by the field each names: each field's, then the rules across fields. */
const configFields = (...more: string[]): string[] => ['hostUuid', 'listen.port', 'roots.NvRam', ...more, 'listen.tls'];

const fieldsNamed = (lines: readonly string[]): string[] =>
  lines.filter((line) => /^[a-zA-Z.0-9]+: /.test(line)).map((line) => line.split(':')[0] ?? '');

test('start: the config’s own problems and those on disk of every field that parsed, each on its line, exit 2', (t) => {
  const { setup, missingRoot } = badHost(t);
  const result = agent('--config', setup.configPath);
  assert.equal(result.status, 2, result.lines.join('\n'));
  assert.equal(result.lines[0], 'hostfiles-agent: invalid config:');
  for (const line of [
    `the TpmState root ${missingRoot} cannot be used: ENOENT`,
    `the stateDir ${setup.stateDir} is writable by others than its owner (mode 0777): chmod 700 it`,
    `keyFile: ${setup.keyFile} is readable by others than its owner: chmod 600 it`,
  ]) {
    assert.ok(result.lines.includes(line), `a line says ${line}:\n${result.lines.join('\n')}`);
  }
  assert.deepEqual(fieldsNamed(result.lines), [...configFields(), 'keyFile'], result.lines.join('\n'));
  // The NvRam root did not parse: its own checks are skipped, and no others.
  assert.ok(!result.lines.some((line) => line.includes('NvRam root')), result.lines.join('\n'));
  assert.equal(result.stdout, '');
  assert.deepEqual(readdirSync(setup.stateDir), [], 'nothing made in the state directory');
});

test('info: the key file’s problem beside the config’s own; make-roots: the owners that parsed, looked up beside them', (t) => {
  const { setup } = badHost(t, { ownership: { TpmState: { owner: 'no-such-user-hostfiles', fileMode: '600' } } });
  const info = agent('info', '--config', setup.configPath);
  assert.equal(info.status, 2, info.lines.join('\n'));
  assert.deepEqual(
    fieldsNamed(info.lines),
    [...configFields('ownership.TpmState.fileMode'), 'keyFile'],
    info.lines.join('\n'),
  );
  assert.ok(info.lines.includes(`keyFile: ${setup.keyFile} is readable by others than its owner: chmod 600 it`));
  assert.equal(info.stdout, '', 'no identity printed');

  const made = agent('make-roots', '--config', setup.configPath);
  assert.equal(made.status, 2, made.lines.join('\n'));
  assert.deepEqual(
    fieldsNamed(made.lines),
    [...configFields('ownership.TpmState.fileMode'), 'ownership.TpmState.owner'],
    made.lines.join('\n'),
  );
  assert.ok(made.lines.includes('ownership.TpmState.owner: no user named no-such-user-hostfiles on this host'));
  assert.equal(existsSync(join(setup.dir, 'libvirt')), false, 'no root made');
  assert.equal(made.stdout, '');
});

test('a config that gives a key twice is not JSON the agent takes: said so, naming the key, exit 2', (t) => {
  const { setup } = badHost(t);
  const text = readFileSync(setup.configPath, 'utf8');
  // The same config with trustedKeys given again after it: JSON.parse would keep the second without a word.
  writeFileSync(setup.configPath, text.replace(/}\s*$/, ', "trustedKeys": []}'));
  const result = agent('--config', setup.configPath);
  assert.equal(result.status, 2, result.lines.join('\n'));
  assert.ok(
    result.lines.some(
      (line) => line.startsWith(`${setup.configPath} is not JSON: `) && line.endsWith('duplicate key "trustedKeys"'),
    ),
    result.lines.join('\n'),
  );
});

test('a config that could not be read: said so alone, exit 2', (t) => {
  const { setup } = badHost(t);
  writeFileSync(setup.configPath, '{ not json');
  const result = agent('--config', setup.configPath);
  assert.equal(result.status, 2);
  // No field parsed, so none of the state directory's or the key file's problems can be looked for.
  assert.deepEqual(
    result.lines.filter((line) => line !== '').map((line) => line.replace(/: .*/, '')),
    ['hostfiles-agent', `${setup.configPath} is not JSON`],
  );
});
