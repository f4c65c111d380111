// Start-up: a CLI call that does no network work loads the command table and nothing of what commands run (no
// database driver, agent client, zod, hono, prom-client: no package at all), so it starts about as fast as node. The
// times are bench/startup.ts's; this proves what is loaded, through module hooks in the real `hostfiles` process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CLI, cleanEnv } from './support/cli.js';

const TRACE = fileURLToPath(new URL('./support/module-trace.js', import.meta.url));

/** What each command's run loads, and the table must not: their modules' paths below the controller's dist/. */
const RUN_ONLY = /\/controller\/dist\/(?:(?:store|flows|agents|api)\/index\.js|cli\/(?:context|serve-run)\.js)$/;

/** Runs `hostfiles args` with module tracing; its exit code and every module URL it resolved. */
async function traced(
  args: readonly string[],
  prepare: (dir: string) => void = () => undefined,
): Promise<{ status: number | null; modules: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-startup-'));
  try {
    prepare(dir);
    const traceFile = join(dir, 'modules');
    const child = spawn(process.execPath, ['--import', TRACE, CLI, ...args], {
      cwd: dir,
      env: { ...cleanEnv(), HOSTFILES_TEST_MODULE_TRACE: traceFile },
      stdio: 'ignore',
    });
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const modules = existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter(Boolean) : [];
    return { status, modules: [...new Set(modules)] };
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
  ];
  for (const [args, exitCode] of calls) {
    const { status, modules } = await traced(args);
    const call = `hostfiles ${args.join(' ')}`;
    assert.equal(status, exitCode, call);
    assert.ok(
      modules.some((url) => url.endsWith('/controller/dist/cli/index.js')),
      `${call}: the trace sees the table`,
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
  assert.ok(list.modules.some((url) => url.endsWith('/controller/dist/cli/context.js')));
  assert.ok(list.modules.some((url) => url.endsWith('/controller/dist/store/index.js')));
  const serve = await traced(['serve', '--token-file', 'token', '--listen', '127.0.0.1:0'], (dir) => {
    writeFileSync(join(dir, 'token'), 'a-token-of-more-than-16-characters\n', { mode: 0o600 });
  });
  assert.equal(serve.status, 1);
  assert.ok(serve.modules.some((url) => url.endsWith('/controller/dist/cli/serve-run.js')));
});
