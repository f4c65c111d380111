#!/usr/bin/env node
// `pnpm bundle`: the agent as one file a hypervisor runs with its distribution's Node, no node_modules and no
// compiler: dist-bundle/ holds hostfiles-agent.cjs, its systemd unit and install.sh. Built from the compiled agent
// (run `tsc -b` first), so what is bundled is what the tests run.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const agent = join(root, 'packages', 'agent');
const USAGE = 'usage: node scripts/bundle-agent.mjs [OUT_DIR (dist-bundle)] [--min-node VERSION (18.20.0)]';
const args = process.argv.slice(2);
const minAt = args.indexOf('--min-node');
// The oldest Node the bundle is tested with (Debian 12's nodejs); older ones are refused at start, exit 2. Tests
// raise it to see the refusal.
const minNode = minAt === -1 ? '18.20.0' : args.splice(minAt, 2)[1];
if (!/^\d+\.\d+\.\d+$/.test(minNode ?? '') || args.length > 1 || args[0]?.startsWith('-')) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
const out = resolve(root, args[0] ?? 'dist-bundle');
const { version } = JSON.parse(readFileSync(join(agent, 'package.json'), 'utf8'));

// CommonJS, so that this check runs before any module is loaded: an ES module's imports would be linked (and a
// missing export of a newer Node would fail obscurely) before its first line ran.
// The entry's own `#!/usr/bin/env node` stays the first line (esbuild keeps it above the banner).
const nodeCheck = `"use strict";
{
  const need = ${JSON.stringify(minNode.split('.').map(Number))};
  const have = process.versions.node.split('.').map(Number);
  const older = have[0] !== need[0] ? have[0] < need[0] : have[1] !== need[1] ? have[1] < need[1] : have[2] < need[2];
  if (older) {
    process.stderr.write("hostfiles-agent: needs Node ${minNode} or later, this is " + process.version + " (" + process.execPath + ")\\n");
    process.exit(2);
  }
}`;

/** version.js reads ../package.json at run time; the bundle has none beside it, so it gets the literal. */
const versionLiteral = {
  name: 'version-literal',
  setup(b) {
    b.onLoad({ filter: /[\\/]agent[\\/]dist[\\/]version\.js$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(version)};`,
      loader: 'js',
    }));
  },
};

// Only the bundle's own files are replaced: OUT_DIR may hold anything else (an operator's directory, `.`), kept.
const BUNDLE_FILES = ['hostfiles-agent.cjs', 'hostfiles-agent.service', 'install.sh'];
mkdirSync(out, { recursive: true });
for (const name of BUNDLE_FILES) rmSync(join(out, name), { force: true });
const file = join(out, 'hostfiles-agent.cjs');
const result = await build({
  entryPoints: [join(agent, 'dist', 'main.js')],
  outfile: file,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // Syntax Node 18 parses; APIs newer than 18 are kept out of the agent's code (checked by the bundle's test on 18).
  target: 'node18',
  banner: { js: nodeCheck },
  plugins: [versionLiteral],
  // The controller's native sqlite3 must never be pulled in: the agent imports nothing of it.
  external: ['sqlite3'],
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
});
const inputs = Object.keys(result.metafile.inputs);
const stray = inputs.filter((input) => /sqlite3|[\\/]controller[\\/]/.test(input));
if (stray.length > 0) throw new Error(`the agent bundle must not hold controller code: ${stray.join(', ')}`);
chmodSync(file, 0o755);
copyFileSync(join(agent, 'systemd', 'hostfiles-agent.service'), join(out, 'hostfiles-agent.service'));
const install = readFileSync(join(agent, 'systemd', 'install.sh'), 'utf8');
writeFileSync(join(out, 'install.sh'), install.replace('@MIN_NODE@', minNode));
chmodSync(join(out, 'install.sh'), 0o755);
process.stdout.write(`${file}: ${statSync(file).size} bytes, ${inputs.length} modules, hostfiles-agent ${version}\n`);
