// Start-up: a CLI call that does no network work loads the command table and nothing of what commands run (no
// database driver, agent client, zod, hono, prom-client: no package at all), so it starts about as fast as node. The
// times are bench/startup.ts's; this proves what is loaded, through module hooks in the real `hostfiles` process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CLI, cleanEnv } from './support/cli.js';

const TRACE = fileURLToPath(new URL('./support/module-trace.js', import.meta.url));

/** The table's own modules as tsc wrote them: the bin runs them only when its bundle of them is stale. */
const UNBUNDLED = /\/controller\/dist\/(?:main|cli\/index)\.js$/;

/** What each command's run loads, and the table must not: their modules' paths below the controller's dist/. */
const RUN_ONLY = /\/controller\/dist\/(?:(?:store|flows|agents|api)\/index\.js|cli\/(?:context|serve-run)\.js)$/;

/** Runs `hostfiles args` (or another copy of its bin) with module tracing; its exit code, stderr and every module URL. */
async function traced(
  args: readonly string[],
  prepare: (dir: string) => void = () => undefined,
  bin: string = CLI,
): Promise<{ status: number | null; stdout: string; stderr: string; modules: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-startup-'));
  try {
    prepare(dir);
    const traceFile = join(dir, 'modules');
    const child = spawn(process.execPath, ['--import', TRACE, bin, ...args], {
      cwd: dir,
      env: { ...cleanEnv(), HOSTFILES_TEST_MODULE_TRACE: traceFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const modules = existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter(Boolean) : [];
    return { status, stdout, stderr, modules: [...new Set(modules)] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('--help, --version, a command --help and a usage error load no package and nothing a command runs', async () => {
  const calls: readonly (readonly [readonly string[], number])[] = [
    [['--help'], 0],
    [['--version'], 0],
    [['help', 'tpm', 'remove'], 0],
    [['serve', '--help'], 0],
    [['host', '--help'], 0],
    [['vm', 'add'], 2],
    [['frobnicate'], 2],
    [['--version', 'host', 'list'], 2],
  ];
  for (const [args, exitCode] of calls) {
    const { status, modules } = await traced(args);
    const call = `hostfiles ${args.join(' ')}`;
    assert.equal(status, exitCode, call);
    assert.ok(
      modules.some((url) => url.endsWith('/controller/dist/hostfiles.cjs')),
      `${call}: the bundled table runs`,
    );
    assert.deepEqual(
      modules.filter((url) => UNBUNDLED.test(url)),
      [],
      `${call}: not the modules tsc wrote`,
    );
    assert.deepEqual(
      modules.filter((url) => url.includes('/node_modules/') && !url.includes('/node_modules/@hostfiles/')),
      [],
      `${call}: no package`,
    );
    assert.deepEqual(
      modules.filter((url) => RUN_ONLY.test(url)),
      [],
      `${call}: nothing of what commands run`,
    );
  }
});

test('a command that runs loads what it needs when it runs: the store for host list, the server for serve', async () => {
  // Both stop early (no database; no controller key), after their run loaded what it needs.
  const list = await traced(['host', 'list', '--db', 'none.db']);
  assert.equal(list.status, 1);
  // The error comes from a module the bundled table imported (cli/context.js), its own copy of the CLI's errors:
  // told apart by brand, it is the one line an expected failure prints, not an internal error with a stack.
  assert.match(list.stderr, /^hostfiles: no database at none\.db: run `hostfiles init` first/);
  assert.doesNotMatch(list.stderr, /internal error/);
  assert.ok(list.modules.some((url) => url.endsWith('/controller/dist/cli/context.js')));
  assert.ok(list.modules.some((url) => url.endsWith('/controller/dist/store/index.js')));
  const serve = await traced(['serve', '--token-file', 'token', '--listen', '127.0.0.1:0'], (dir) => {
    writeFileSync(join(dir, 'token'), 'a-token-of-more-than-16-characters\n', { mode: 0o600 });
  });
  assert.equal(serve.status, 1);
  assert.ok(serve.modules.some((url) => url.endsWith('/controller/dist/cli/serve-run.js')));
});

test('a stale or missing bundle is never run: the bin runs the modules tsc wrote, with the same answer', async (t) => {
  // A copy of the controller package (bin, dist, package.json; node_modules linked) and of the shared package's dist,
  // which the table bundles too, so the real ones are not touched.
  const pkg = dirname(dirname(CLI));
  const root = mkdtempSync(join(tmpdir(), 'hostfiles-stale-'));
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
  });
  const copy = join(root, 'packages', 'controller');
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(pkg, part), join(copy, part), { recursive: true });
  cpSync(join(pkg, '..', 'shared', 'dist'), join(root, 'packages', 'shared', 'dist'), { recursive: true });
  symlinkSync(join(pkg, 'node_modules'), join(copy, 'node_modules'));
  const bin = join(copy, 'bin', basename(CLI));
  const bundle = join(copy, 'dist', 'hostfiles.cjs');
  // cpSync gives the copies new times: the bundle is made as old as its inputs were when it was built.
  const inputs = JSON.parse(readFileSync(join(copy, 'dist', 'hostfiles.inputs.json'), 'utf8')) as string[];
  assert.ok(inputs.includes('cli/index.js') && inputs.includes('main.js'), inputs.join(', '));
  const built = new Date(Date.now() - 60_000);
  for (const input of inputs) utimesSync(join(copy, 'dist', input), built, built);
  utimesSync(bundle, built, built);

  const fresh = await traced(['tpm', 'remove', '--help'], undefined, bin);
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.ok(fresh.modules.some((url) => url.endsWith('/dist/hostfiles.cjs')));
  assert.deepEqual(
    fresh.modules.filter((url) => UNBUNDLED.test(url)),
    [],
  );

  // A module rebuilt after the bundle (`tsc -b` alone after a change): the bundle would run old code.
  const later = new Date(Date.now() - 30_000);
  utimesSync(join(copy, 'dist', 'cli', 'tpm.js'), later, later);
  const stale = await traced(['tpm', 'remove', '--help'], undefined, bin);
  assert.equal(stale.status, 0, stale.stderr);
  assert.ok(
    stale.modules.some((url) => url.endsWith('/dist/cli/index.js')),
    'the modules run',
  );
  assert.ok(!stale.modules.some((url) => url.endsWith('/dist/hostfiles.cjs')), 'the stale bundle is not loaded');
  assert.equal(stale.stdout, fresh.stdout);

  rmSync(bundle);
  const missing = await traced(['vm', 'add'], undefined, bin);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^hostfiles: vm add needs --host HOST/);
  assert.ok(missing.modules.some((url) => url.endsWith('/dist/main.js')));
});
