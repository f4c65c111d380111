// pnpm bench (start-up): the wall time of CLI calls that do no network work, through the `hostfiles` bin as installed
// (its bundled command table, fresh: the bench refuses a stale one), against `node -e 0` measured in the same run.
// Beside them, not targets: the unbundled modules, and pnpm's sh shim on an operator's PATH. The calls are interleaved round by round (node, then each command, then node again...), so a burst of load on
// the machine falls on all of them alike; medians, and each command's median over node's. Target: within 1.5×.
// BENCH_STARTUP_ROUNDS sets the rounds (31).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env['BENCH_STARTUP_ROUNDS'] ?? 31);
const TARGET_RATIO = 1.5;
/** The `hostfiles` command as installed: its bin runs the bundled command table (scripts/bundle-cli.mjs). */
const CLI = fileURLToPath(new URL('../../bin/hostfiles.cjs', import.meta.url));
/** The modules tsc wrote, unbundled: what the bin runs when the bundle is stale. Shown beside, not a target. */
const UNBUNDLED = fileURLToPath(new URL('../main.js', import.meta.url));
const DIST = fileURLToPath(new URL('..', import.meta.url));

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  /** the exit code it must end with: a case that fails otherwise measures nothing */
  readonly exitCode: number;
  /** what runs `args`: node unless named */
  readonly command?: string;
}

const BASELINE: Case = { name: 'node -e 0', args: ['-e', '0'], exitCode: 0 };
/**
 * Not a target: what node pays to print a line, its stdout stream made (a pipe: node:net and streams), which
 * `node -e 0` never does and every CLI call does. The floor of any command that prints.
 */
const PRINT: Case = { name: 'node -e "console.log()"', args: ['-e', 'console.log()'], exitCode: 0 };
const CASES: readonly Case[] = [
  { name: 'hostfiles --help', args: [CLI, '--help'], exitCode: 0 },
  { name: 'hostfiles --version', args: [CLI, '--version'], exitCode: 0 },
  { name: 'hostfiles tpm remove --help', args: [CLI, 'tpm', 'remove', '--help'], exitCode: 0 },
  { name: 'hostfiles vm add (bad usage)', args: [CLI, 'vm', 'add'], exitCode: 2 },
];
const UNBUNDLED_CASE: Case = { name: '--help, dist/main.js unbundled', args: [UNBUNDLED, '--help'], exitCode: 0 };
/** The command on an operator's PATH after the README's install: pnpm's sh script, which then runs node on the bin. */
const SHIM = fileURLToPath(new URL('../../../../node_modules/.bin/hostfiles', import.meta.url));
const SHIM_CASE: Case = { name: '--help, node_modules/.bin shim', args: ['--help'], exitCode: 0, command: SHIM };
const INFO: readonly Case[] = [UNBUNDLED_CASE, ...(existsSync(SHIM) ? [SHIM_CASE] : [])];

/** The bin falls back to dist/main.js when the bundle is older than a module it was made from: that is not measured. */
function assertBundleFresh(): void {
  const made = statSync(`${DIST}hostfiles.cjs`, { throwIfNoEntry: false })?.mtimeMs;
  const inputs =
    made === undefined ? [] : (JSON.parse(readFileSync(`${DIST}hostfiles.inputs.json`, 'utf8')) as string[]);
  const stale = inputs.filter(
    (input) => (statSync(`${DIST}${input}`, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) > (made ?? 0),
  );
  if (made === undefined || stale.length > 0) {
    throw new Error(
      `the bundled command table is missing or stale (${stale.join(', ')}): run \`node scripts/bundle-cli.mjs\``,
    );
  }
}

/** One run's wall time in ms; its output is read (through a pipe) as an operator's shell would. */
function timeRun(run: Case, cwd: string): number {
  const started = process.hrtime.bigint();
  // No HOSTFILES_* from the caller's environment: every case runs the same way wherever the bench runs.
  const result = spawnSync(run.command ?? process.execPath, run.args, {
    cwd,
    env: { PATH: process.env['PATH'] ?? '' },
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== run.exitCode) {
    throw new Error(`${run.name} exited ${String(result.status)}, not ${run.exitCode}: ${result.stderr.toString()}`);
  }
  return ms;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

function main(): void {
  // An empty working directory: no database or key there for a command to find.
  assertBundleFresh();
  const cwd = mkdtempSync(join(tmpdir(), 'hostfiles-startup-'));
  try {
    const all = [BASELINE, PRINT, ...CASES, ...INFO];
    const times = new Map<Case, number[]>(all.map((c) => [c, []]));
    // One unmeasured round first: the files in the page cache for every case alike.
    for (const run of all) timeRun(run, cwd);
    for (let round = 0; round < ROUNDS; round++) {
      for (const run of all) times.get(run)?.push(timeRun(run, cwd));
    }
    const base = median(times.get(BASELINE) ?? []);
    console.log(`\nstart-up: ${ROUNDS} interleaved rounds, median wall time, node ${process.version}`);
    console.log(`  ${BASELINE.name.padEnd(30)} ${base.toFixed(1).padStart(7)} ms  (baseline)`);
    const print = median(times.get(PRINT) ?? []);
    console.log(`  ${PRINT.name.padEnd(30)} ${print.toFixed(1).padStart(7)} ms  ${(print / base).toFixed(2)}× (floor)`);
    let met = true;
    for (const run of CASES) {
      const ms = median(times.get(run) ?? []);
      const ratio = ms / base;
      met &&= ratio <= TARGET_RATIO;
      console.log(`  ${run.name.padEnd(30)} ${ms.toFixed(1).padStart(7)} ms  ${ratio.toFixed(2)}×`);
    }
    for (const run of INFO) {
      const ms = median(times.get(run) ?? []);
      console.log(
        `  ${run.name.padEnd(30)} ${ms.toFixed(1).padStart(7)} ms  ${(ms / base).toFixed(2)}× (not a target)`,
      );
    }
    console.log(`target: every call within ${TARGET_RATIO}× of node -e 0 — ${met ? 'MET' : 'MISSED'}`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

main();
