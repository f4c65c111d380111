// pnpm bench (start-up): the wall time of CLI calls that do no network work, against `node -e 0` measured in the same
// run. The calls are interleaved round by round (node, then each command, then node again...), so a burst of load on
// the machine falls on all of them alike; medians, and each command's median over node's. Target: within 1.5×.
// BENCH_STARTUP_ROUNDS sets the rounds (31).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.env['BENCH_STARTUP_ROUNDS'] ?? 31);
const TARGET_RATIO = 1.5;
const CLI = fileURLToPath(new URL('../main.js', import.meta.url));

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  /** the exit code it must end with: a case that fails otherwise measures nothing */
  readonly exitCode: number;
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

/** One run's wall time in ms; its output is read (through a pipe) as an operator's shell would. */
function timeRun(run: Case, cwd: string): number {
  const started = process.hrtime.bigint();
  // No HOSTFILES_* from the caller's environment: every case runs the same way wherever the bench runs.
  const result = spawnSync(process.execPath, run.args, { cwd, env: { PATH: process.env['PATH'] ?? '' } });
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
  const cwd = mkdtempSync(join(tmpdir(), 'hostfiles-startup-'));
  try {
    const all = [BASELINE, PRINT, ...CASES];
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
    console.log(`target: every call within ${TARGET_RATIO}× of node -e 0 — ${met ? 'MET' : 'MISSED'}`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

main();
