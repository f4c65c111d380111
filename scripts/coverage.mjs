#!/usr/bin/env node
// After `c8 node scripts/run-tests.mjs` (pnpm test): line coverage per package from coverage/lcov.info, mapped to
// the TypeScript sources, every process the tests started counted (agents and controllers run as processes of their
// own too, except those killed by SIGKILL, which write nothing). Fails when a file of the directories holding the
// safety-critical code is under FLOOR.
import { existsSync, readFileSync } from 'node:fs';

const FLOOR = 85;
const GUARDED = /\/src\/(flows|store|files|journal)\//;

const files = [];
for (const record of readFileSync('coverage/lcov.info', 'utf8').split('end_of_record')) {
  const file = /^SF:(.*)$/m.exec(record)?.[1]?.replace(/^.*?(?=packages\/)/, '');
  const found = Number(/^LF:(\d+)$/m.exec(record)?.[1] ?? 0);
  const hit = Number(/^LH:(\d+)$/m.exec(record)?.[1] ?? 0);
  const pkg = /^packages\/([^/]+)\//.exec(file ?? '')?.[1];
  if (file === undefined || pkg === undefined || found === 0 || typesOnly(file)) continue;
  files.push({ file, pkg, found, hit });
}
const percent = (hit, found) => (100 * hit) / found;

/** A module of types only compiles to `export {};`: nothing of it runs, so nothing of it counts. */
function typesOnly(file) {
  const compiled = file.replace('/src/', '/dist/').replace(/\.ts$/, '.js');
  if (!existsSync(compiled)) return false;
  const code = readFileSync(compiled, 'utf8')
    .replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
    .trim();
  return code === 'export {};';
}
console.log('\nline coverage (TypeScript sources, every test process):');
for (const pkg of [...new Set(files.map((f) => f.pkg))].sort()) {
  const of = files.filter((f) => f.pkg === pkg);
  const found = of.reduce((n, f) => n + f.found, 0);
  const hit = of.reduce((n, f) => n + f.hit, 0);
  console.log(`  ${pkg.padEnd(11)} ${percent(hit, found).toFixed(1).padStart(5)} %  (${hit} of ${found} lines)`);
}
const guarded = files.filter((f) => GUARDED.test(f.file));
const under = guarded.filter((f) => percent(f.hit, f.found) < FLOOR);
for (const f of under) console.log(`  under ${FLOOR} %: ${f.file} ${percent(f.hit, f.found).toFixed(1)} %`);
const lowest = [...guarded].sort((a, b) => percent(a.hit, a.found) - percent(b.hit, b.found))[0];
console.log(
  under.length === 0
    ? `  flows/, store/, files/, journal/: ${guarded.length} files, each at ${FLOOR} % or more (lowest ${lowest?.file} ${lowest === undefined ? '' : percent(lowest.hit, lowest.found).toFixed(1)} %)`
    : `  ${under.length} of ${guarded.length} files of flows/, store/, files/, journal/ under ${FLOOR} %`,
);
if (guarded.length === 0) console.log('  no file of flows/, store/, files/ or journal/ was measured');
process.exitCode = under.length > 0 || guarded.length === 0 ? 1 : 0;
