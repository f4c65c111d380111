#!/usr/bin/env node
// Runs every compiled test file (unit tests beside the code, cross-package tests under test/) with node's test runner.
// Node 20's `--test` takes no globs, so the files are found here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = [...readdirSync('packages').map((p) => join('packages', p, 'dist')), join('test', 'dist')];
const files = [];
const walk = (dir) => {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch (error) {
    if (error.code === 'ENOENT') return;
    throw error;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.js')) files.push(path);
  }
};
roots.forEach(walk);
const only = process.argv.slice(2);
const selected = only.length === 0 ? files : files.filter((f) => only.some((o) => f.includes(o)));
if (selected.length === 0) {
  console.error('no test files found: run `pnpm build` first');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...selected], { stdio: 'inherit' });
process.exit(result.status ?? 1);
