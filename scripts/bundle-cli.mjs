#!/usr/bin/env node
// Part of the build (`pnpm build`, `pnpm test`, `pnpm demo`): the `hostfiles` command table as one CommonJS file,
// packages/controller/dist/hostfiles.cjs, so that a call that does no network work (--help, a usage error) starts
// about as fast as node itself: node's ES module loader costs ~1 ms a module and ~2 ms to start at all on this
// machine, and the table is 29 modules. Only what `dist/main.js` loads statically is in it: every `import()` a
// command's run makes stays an import of the module tsc wrote (dist/cli/context.js, the store, the flows...), so
// what runs a command is what the tests run, and no package is ever bundled. Built from the compiled controller
// (run `tsc -b` first). bin/hostfiles.cjs runs it only while none of its inputs is newer (a `tsc -b` alone after a
// change leaves it stale: the bin then runs dist/main.js), from the list written beside it.
import { readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'packages', 'controller', 'dist');
const outfile = join(dist, 'hostfiles.cjs');
const listFile = join(dist, 'hostfiles.inputs.json');
if (process.argv.length > 2) {
  process.stderr.write('usage: node scripts/bundle-cli.mjs (after tsc -b; writes packages/controller/dist/hostfiles.cjs)\n');
  process.exit(2);
}

/** A run's `import('./x.js')` stays an import of dist's module, its path made relative to the bundle's directory. */
const lazyImports = {
  name: 'lazy-imports',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      if (!args.path.startsWith('.')) return { path: args.path, external: true };
      const target = relative(dist, resolve(args.resolveDir, args.path)).split('\\').join('/');
      return { path: target.startsWith('.') ? target : `./${target}`, external: true };
    });
  },
};

const result = await build({
  absWorkingDir: root,
  entryPoints: [join(dist, 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // main.js reads its version from ../package.json through createRequire(import.meta.url): the bundle sits in the
  // same directory, so its own file URL resolves the same file.
  define: { 'import.meta.url': '__hostfilesUrl' },
  banner: { js: "const __hostfilesUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyImports],
  legalComments: 'none',
  // Mapped through tsc's own maps to the TypeScript sources: coverage of the table counts against cli/*.ts.
  sourcemap: true,
  logLevel: 'warning',
  metafile: true,
});

// What the table loads at start: node's own modules only. A package here would be loaded by every call.
const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);
const loaded = Object.values(result.metafile.outputs).flatMap((output) => output.imports);
const stray = loaded.filter((entry) => entry.kind === 'require-call' && !builtins.has(entry.path));
if (stray.length > 0) {
  throw new Error(`the command table must load no package at start: ${stray.map((entry) => entry.path).join(', ')}`);
}
const inputs = Object.keys(result.metafile.inputs).map((input) => relative(dist, resolve(root, input)));
writeFileSync(listFile, `${JSON.stringify(inputs)}\n`);
const size = readFileSync(outfile).length;
process.stdout.write(`${relative(root, outfile)}: ${size} bytes, ${inputs.length} modules\n`);
