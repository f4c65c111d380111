// Preflight over real directories: the state directory and the key file are kept out of the roots on real paths too,
// whatever symbolic links lead there.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { exampleConfig } from './config.js';
import { realPathOf } from './path-overlap.js';
import { preflight } from './preflight.js';

interface Host {
  /** the temp directory, by its real path */
  readonly dir: string;
  readonly roots: { readonly TpmState: string; readonly NvRam: string };
  /** preflight's problems with this stateDir and keyFile; [] when it passes */
  readonly problems: (paths: { stateDir: string; keyFile?: string }) => string[];
}

/** Two real roots in a fresh directory, and a config over them written for each check. */
function host(t: TestContext): Host {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'hostfiles-preflight-')));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const roots = { TpmState: join(dir, 'swtpm'), NvRam: join(dir, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root);
  const configPath = join(dir, 'agent.json');
  return {
    dir,
    roots,
    problems: ({ stateDir, keyFile = join(dir, 'agent.key') }) => {
      const config = {
        ...exampleConfig(),
        trustedKeys: [Buffer.alloc(32, 1).toString('base64')],
        roots,
        stateDir,
        keyFile,
        ownership: {},
      };
      writeFileSync(configPath, JSON.stringify(config));
      const checked = preflight(configPath);
      return checked.ok ? [] : checked.error;
    },
  };
}

const overlapping = (stateDir: string, real: string, name: string, root: string): string =>
  `stateDir: ${stateDir} is ${real} once its links are followed, which overlaps the ${name} root ${root}: ` +
  'a signed delete could remove the replay journal';

test('a state directory beside the roots, through a link or not, passes', (t) => {
  const { dir, problems } = host(t);
  assert.deepEqual(problems({ stateDir: join(dir, 'state') }), [], 'not made yet');
  mkdirSync(join(dir, 'elsewhere'));
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'state-link'));
  assert.deepEqual(problems({ stateDir: join(dir, 'state-link') }), []);
});

test('a state directory that is a link into a root is refused', (t) => {
  const { dir, roots, problems } = host(t);
  mkdirSync(join(roots.TpmState, 'agent'));
  symlinkSync(join(roots.TpmState, 'agent'), join(dir, 'state'));
  assert.deepEqual(problems({ stateDir: join(dir, 'state') }), [
    overlapping(join(dir, 'state'), join(roots.TpmState, 'agent'), 'TpmState', roots.TpmState),
  ]);
});

test('a state directory not made yet, below a link into a root, or a link whose target is not made yet: refused', (t) => {
  const { dir, roots, problems } = host(t);
  symlinkSync(roots.NvRam, join(dir, 'lib'));
  const below = join(dir, 'lib', 'hostfiles-agent');
  assert.deepEqual(problems({ stateDir: below }), [
    overlapping(below, join(roots.NvRam, 'hostfiles-agent'), 'NvRam', roots.NvRam),
  ]);
  // mkdir -p would make the target through the link: the journal would land in the root all the same.
  symlinkSync(join(roots.TpmState, 'later'), join(dir, 'dangling'));
  assert.deepEqual(problems({ stateDir: join(dir, 'dangling') }), [
    overlapping(join(dir, 'dangling'), join(roots.TpmState, 'later'), 'TpmState', roots.TpmState),
  ]);
});

test('a state directory that is a link to a directory holding both roots is refused for each', (t) => {
  const { dir, roots, problems } = host(t);
  symlinkSync(dir, join(dir, 'all'));
  const stateDir = join(dir, 'all');
  assert.deepEqual(problems({ stateDir }), [
    overlapping(stateDir, dir, 'TpmState', roots.TpmState),
    overlapping(stateDir, dir, 'NvRam', roots.NvRam),
  ]);
});

test('a key file in a directory that is a link into a root is refused: a signed read would hand it out', (t) => {
  const { dir, roots, problems } = host(t);
  symlinkSync(roots.NvRam, join(dir, 'keys'));
  const keyFile = join(dir, 'keys', 'agent.key');
  assert.deepEqual(problems({ stateDir: join(dir, 'state'), keyFile }), [
    `keyFile: ${keyFile} is ${join(roots.NvRam, 'agent.key')} once its links are followed, inside the NvRam root ` +
      `${roots.NvRam}: a signed read would hand out the agent's key`,
  ]);
});

test('realPathOf: links followed, missing components kept, a loop of links gives up', (t) => {
  const { dir } = host(t);
  assert.equal(realPathOf(join(dir, 'a', 'b')), join(dir, 'a', 'b'));
  symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'));
  symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'));
  assert.equal(realPathOf(join(dir, 'loop-a', 'x')), undefined);
});

test('a state directory others may write to, or that is not the agent’s, is refused; a missing one passes', (t) => {
  const { dir, problems } = host(t);
  const stateDir = join(dir, 'state');
  assert.deepEqual(problems({ stateDir }), [], 'made 0700 at start');
  mkdirSync(stateDir, { mode: 0o700 });
  assert.deepEqual(problems({ stateDir }), []);
  for (const mode of [0o777, 0o1777, 0o770, 0o702]) {
    chmodSync(stateDir, mode);
    assert.deepEqual(
      problems({ stateDir }),
      [
        `the stateDir ${stateDir} is writable by others than its owner (mode ${mode.toString(8).padStart(4, '0')}): chmod 700 it`,
      ],
      mode.toString(8),
    );
  }
  chmodSync(stateDir, 0o755);
  assert.deepEqual(problems({ stateDir }), [], 'readable by others is no harm: it holds no secret');
  if (process.getuid?.() === 0) {
    chownSync(stateDir, 65534, 65534);
    assert.deepEqual(problems({ stateDir }), [
      `the stateDir ${stateDir} belongs to uid 65534, not to the agent's (0): chown it`,
    ]);
  } else {
    t.diagnostic('SKIPPED in part: not root, so the stateDir cannot be given to another user to check that refusal');
  }
  rmSync(stateDir, { recursive: true });
  writeFileSync(stateDir, '');
  assert.deepEqual(problems({ stateDir }), [`the stateDir ${stateDir} is not a directory`]);
});

test('every problem in one pass: the config’s own, then on disk those of each field that parsed; an unparsed one’s skipped', (t) => {
  const { dir, roots } = host(t);
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  chmodSync(stateDir, 0o777);
  const keyFile = join(dir, 'agent.key');
  writeFileSync(keyFile, 'not a key');
  chmodSync(keyFile, 0o644);
  const missingRoot = join(dir, 'missing');
  const trustedKeys = [Buffer.alloc(32, 1).toString('base64')];
  const configPath = join(dir, 'bad.json');
  const check = (change: Record<string, unknown>): string[] => {
    writeFileSync(
      configPath,
      JSON.stringify({ ...exampleConfig(), trustedKeys, roots, stateDir, keyFile, ownership: {}, ...change }),
    );
    const checked = preflight(configPath, { locksPath: join(dir, 'no-locks') });
    return checked.ok ? [] : checked.error;
  };
  const problems = check({
    hostUuid: 42,
    trustedKeys: ['nope'],
    roots: { TpmState: missingRoot, NvRam: 'nvram' },
    ownership: { TpmState: { owner: 'no-such-user-hostfiles', fileMode: '600' } },
  });
  const onDisk = [
    'ownership.TpmState.owner: no user named no-such-user-hostfiles on this host',
    `the TpmState root ${missingRoot} cannot be used: ENOENT`,
    `the stateDir ${stateDir} is writable by others than its owner (mode 0777): chmod 700 it`,
    `keyFile: ${keyFile} is readable by others than its owner: chmod 600 it`,
    `${join(dir, 'no-locks')} cannot be read (ENOENT): the agent needs it to see that a swtpm or QEMU holds a state`,
  ];
  assert.deepEqual(
    problems.slice(0, -onDisk.length).map((line) => line.split(':')[0]),
    ['hostUuid', 'roots.NvRam', 'trustedKeys.0', 'ownership.TpmState.fileMode'],
    problems.join('\n'),
  );
  // Nothing of the NvRam root, which did not parse: its checks are skipped, and only they.
  assert.deepEqual(problems.slice(-onDisk.length), onDisk);

  // A key file not made yet below a missing directory: whether the state directory makes it is unknown until stateDir
  // parses, so that check waits; a keyFile that did not parse is not looked at at all.
  const below = join(dir, 'agent', 'agent.key');
  assert.deepEqual(
    check({ stateDir: 'agent', keyFile: below }).map((line) => line.split(':')[0]),
    ['stateDir', `${join(dir, 'no-locks')} cannot be read (ENOENT)`],
  );
  assert.deepEqual(check({ keyFile: 'agent.key' }), [
    'keyFile: an absolute, normalized path other than /',
    `the stateDir ${stateDir} is writable by others than its owner (mode 0777): chmod 700 it`,
    onDisk.at(-1),
  ]);
});
