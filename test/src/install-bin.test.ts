// The README's install leaves working commands: `hostfiles` and `hostfiles-agent` in the checkout's
// node_modules/.bin, from bin files that exist before any build (pnpm links bins at install, before `tsc -b`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROGRAMS = [
  { pkg: 'controller', command: 'hostfiles' },
  { pkg: 'agent', command: 'hostfiles-agent' },
] as const;

/** The bin's path in its package, from the package's manifest. */
function binOf(pkg: string, command: string): string {
  const manifest = JSON.parse(readFileSync(join(REPO, 'packages', pkg, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
  };
  return manifest.bin[command] ?? '';
}

test('each bin is a file of the checkout, outside dist/: linked by the install before the build', () => {
  for (const { pkg, command } of PROGRAMS) {
    const bin = binOf(pkg, command);
    assert.match(bin, /^\.\/bin\//, `${command}: ${bin}`);
    assert.ok(existsSync(join(REPO, 'packages', pkg, bin)), `${command}: ${bin} exists`);
  }
});

test('node_modules/.bin/hostfiles --help and hostfiles-agent --version work after the install', () => {
  const help = spawnSync(join(REPO, 'node_modules', '.bin', 'hostfiles'), ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: hostfiles /);
  const version = spawnSync(join(REPO, 'node_modules', '.bin', 'hostfiles-agent'), ['--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0, version.stderr);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('before the build, the command says to build, exit 1, no stack trace', (t) => {
  const dir = mkdtempSync(join('/tmp', 'hostfiles-unbuilt-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  for (const { pkg, command } of PROGRAMS) {
    const file = binOf(pkg, command);
    const bin = join(dir, 'packages', pkg, file);
    mkdirSync(dirname(bin), { recursive: true });
    writeFileSync(join(dir, 'packages', pkg, 'package.json'), '{ "type": "module" }');
    copyFileSync(join(REPO, 'packages', pkg, file), bin);
    const run = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.equal(run.stderr, `${command}: not built: run \`npx --yes pnpm@10 build\` in ${dir}/\n`);
  }
});

test("the controller's systemd unit runs the package's bin", () => {
  const unit = readFileSync(join(REPO, 'packages', 'controller', 'systemd', 'hostfiles.service'), 'utf8');
  const exec = /^ExecStart=\/usr\/bin\/node \/opt\/hostfiles\/(\S+) serve/m.exec(unit);
  assert.ok(exec, 'ExecStart runs node on a file of the checkout in /opt/hostfiles');
  assert.equal(exec[1], join('packages', 'controller', binOf('controller', 'hostfiles')));
});
