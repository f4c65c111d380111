// Where a write's and a delete's CPU goes in the agent's file store, in-process (no HTTP, TLS, envelope or journal):
// the store as the agent runs it, the store with its /proc/locks reads answered from memory (its walks of a unit for
// locked inodes still made), the store with no lock held anywhere (no walk either), and the baseline's same durable
// file work (baseline-ops.ts). Each runs 8 ops at a time, as a batch does; rounds interleaved; medians of the whole
// process's CPU time per op (all threads). Not a target: it says which part of the agent's cost is which.
//
//   node packages/agent/dist/bench/store-cost.js   (BENCH_STORE_OPS per round, default 1,000; BENCH_STORE_ROUNDS, 7)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapLimit } from '@hostfiles/shared';
import { createFileStore, readProcLocks, type FileStore } from '../files/index.js';
import { remove, write } from './baseline-ops.js';
import { median } from './load.js';
import { CONTENT } from './workload.js';

const OPS = Number(process.env['BENCH_STORE_OPS'] ?? 1000);
const ROUNDS = Number(process.env['BENCH_STORE_ROUNDS'] ?? 7);
const AT_ONCE = 8;

interface Side {
  readonly name: string;
  readonly write: (unit: string) => Promise<unknown>;
  readonly remove: (unit: string) => Promise<unknown>;
}

function storeSide(base: string, name: string, locks: 'real' | 'cached' | 'none'): Side {
  const roots = { TpmState: join(base, name, 'tpm'), NvRam: join(base, name, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root, { recursive: true });
  // `cached`: one read of /proc/locks, then that set for every look; `none`: no lock anywhere.
  let cached: Promise<ReadonlySet<string>> | undefined;
  const readLocks = {
    real: readProcLocks,
    cached: () => (cached ??= readProcLocks()),
    none: () => Promise.resolve(new Set<string>()),
  }[locks];
  const store: FileStore = createFileStore({ roots, readLocks });
  return {
    name,
    write: (unit) => store.write('TpmState', [unit, 'tpm2-00.permall'], CONTENT),
    remove: (unit) => store.remove('TpmState', [unit, 'tpm2-00.permall']),
  };
}

function baselineSide(base: string): Side {
  const root = join(base, 'baseline');
  mkdirSync(root);
  const path = (unit: string): string => join(root, unit, 'tpm2-00.permall');
  return {
    name: 'baseline',
    write: (unit) => write(root, path(unit), CONTENT),
    remove: (unit) => remove(root, path(unit)),
  };
}

/** CPU ms per op of the whole process (every thread) over OPS ops, AT_ONCE at a time. */
async function cpuPerOp(run: (unit: string) => Promise<unknown>, round: number): Promise<number> {
  const before = process.cpuUsage();
  await mapLimit(
    Array.from({ length: OPS }, (_, i) => `r${round}-${i}`),
    AT_ONCE,
    run,
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / OPS;
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-store-cost-'));
  try {
    const sides = [
      storeSide(base, 'store', 'real'),
      storeSide(base, 'store, locks read once', 'cached'),
      storeSide(base, 'store, no lock anywhere', 'none'),
      baselineSide(base),
    ];
    const figures = new Map<string, number[]>();
    const add = (key: string, value: number): void => {
      figures.set(key, [...(figures.get(key) ?? []), value]);
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) add(`${side.name}\0write`, await cpuPerOp(side.write, round));
      for (const side of order) add(`${side.name}\0delete`, await cpuPerOp(side.remove, round));
    }
    const locks = (await readProcLocks()).size;
    console.log(
      `file store cost: ${ROUNDS} interleaved rounds of ${OPS} ops, ${AT_ONCE} at a time, 10 KiB files; ` +
        `/proc/locks holds ${locks} lock${locks === 1 ? '' : 's'} now (the walks for locked inodes run when it holds any)\n`,
    );
    console.log('op      side                        CPU/op (median)  × baseline');
    for (const op of ['write', 'delete']) {
      const baseline = median(figures.get(`baseline\0${op}`) ?? []);
      for (const side of sides) {
        const cpu = median(figures.get(`${side.name}\0${op}`) ?? []);
        console.log(
          `${op.padEnd(7)} ${side.name.padEnd(27)} ${cpu.toFixed(3).padStart(8)} ms ${(cpu / baseline).toFixed(2).padStart(10)}×`,
        );
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
