#!/usr/bin/env node
// The `hostfiles` command. A file of its own, present from the checkout on: pnpm links bins at install, before the
// build makes dist/ (a bin pointing into dist/ would be "Failed to create bin" and no command).
// CommonJS, and it runs the command table bundled as one CommonJS file (scripts/bundle-cli.mjs, part of the build):
// node's ES module loader would cost a call that does no network work most of its start-up. The bundle runs only
// while none of the modules it was made from is newer than it; after a `tsc -b` alone, the modules tsc wrote run.
'use strict';
const { existsSync, statSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const dist = join(__dirname, '..', 'dist');
const main = join(dist, 'main.js');
const bundle = join(dist, 'hostfiles.cjs');

/** True when the bundle exists and every module it was made from is as old as it or older. */
function bundleIsFresh() {
  const made = statSync(bundle, { throwIfNoEntry: false })?.mtimeMs;
  if (made === undefined) return false;
  let inputs;
  try {
    inputs = require(join(dist, 'hostfiles.inputs.json'));
  } catch {
    return false;
  }
  return inputs.every((input) => (statSync(join(dist, input), { throwIfNoEntry: false })?.mtimeMs ?? Infinity) <= made);
}

if (bundleIsFresh()) {
  require(bundle);
} else if (existsSync(main)) {
  import(pathToFileURL(main).href);
} else {
  process.stderr.write(`hostfiles: not built: run \`npx --yes pnpm@10 build\` in ${join(__dirname, '..', '..', '..')}/\n`);
  process.exit(1);
}
