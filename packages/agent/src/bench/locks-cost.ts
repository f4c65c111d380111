// What a busy check's read of /proc/locks costs on a host holding many locks, and where that cost is paid: on the
// event loop (a read made at once: every request waits meanwhile) or in the thread pool. A helper process holds N
// POSIX locks (python3's fcntl: Node has no way to take one); then, rule against rule in alternating rounds, busy
// checks one every millisecond (as the ops of a batch make them): reads made at once after a text of any length (the
// rule before HOT_READ_MAX_CHARS), and the agent's rule. Printed per N: the event loop held per check (the time the
// call took before it returned its promise, p50 and max) and each check's wait for its answer (p50). Not a target:
// it shows why a long text is read in the pool.
//
//   node packages/agent/dist/bench/locks-cost.js   (BENCH_LOCKS, default 0,300,1000,5000; BENCH_LOCK_CHECKS, 300)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from '@hostfiles/shared';
import { HOT_READ_MAX_CHARS, HOT_READ_MS, procLocksText, sharedReads, type LocksText } from '../files/locks.js';
import { median } from './load.js';

const COUNTS = (process.env['BENCH_LOCKS'] ?? '0,300,1000,5000').split(',').map(Number);
const CHECKS = Number(process.env['BENCH_LOCK_CHECKS'] ?? 300);
const ROUNDS = 3;

/** Holds `count` one-byte POSIX write locks on `path` (ranges apart, so each is a line of /proc/locks) until killed. */
const HOLDER = `
import fcntl, sys
f = open(sys.argv[1], 'w')
for i in range(int(sys.argv[2])):
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * i)
print('ready', flush=True)
sys.stdin.read()
`;

async function holdLocks(path: string, count: number): Promise<ChildProcess> {
  const child = spawn('python3', ['-c', HOLDER, path, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  // Its first line, or its exit (it could not take the locks: python3 said why on stderr).
  const first = await Promise.race([
    once(child.stdout, 'data').then(([chunk]) => String(chunk).trim()),
    once(child, 'exit').then(([code]) => `nothing: it exited ${String(code)}`),
  ]);
  if (first !== 'ready') throw new Error(`the lock holder said ${first}`);
  return child;
}

interface Round {
  /** ms the event loop was held per check */
  readonly held: number[];
  /** ms from each check's call to its answer */
  readonly waited: number[];
}

/**
 * CHECKS busy checks 1 ms apart, as an agent's ops make them, through a sharedReads of the given rule. One `text` for
 * every round, as the agent keeps one fd: rounds run one after the other, so its reads never overlap.
 */
async function round(text: LocksText, hotMaxChars: number): Promise<Round> {
  const read = sharedReads(text, { now: () => performance.now(), hotMs: HOT_READ_MS, hotMaxChars });
  await read(); // opens the fd
  const held: number[] = [];
  const waited: number[] = [];
  const answers: Promise<void>[] = [];
  for (let i = 0; i < CHECKS; i++) {
    const start = performance.now();
    const answer = read();
    held.push(performance.now() - start);
    answers.push(
      answer.then(() => {
        waited.push(performance.now() - start);
      }),
    );
    await sleep(1);
  }
  await Promise.all(answers);
  return { held, waited };
}

const ms = (value: number): string => value.toFixed(3).padStart(8);

async function main(): Promise<void> {
  if (spawnSync('python3', ['--version']).status !== 0) {
    console.log('locks-cost: skipped: python3 is not installed (it holds the locks)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-locks-cost-'));
  const path = join(dir, 'locked');
  writeFileSync(path, '');
  const text = procLocksText();
  console.log(
    `busy checks' reads of /proc/locks: ${String(CHECKS)} checks 1 ms apart a round, ${String(ROUNDS)} rounds a rule, alternating; medians over all checks`,
  );
  console.log(
    `rules: "at once" reads at once within ${String(HOT_READ_MS)} ms of the last read whatever its length; "agent" only after a text of at most ${String(HOT_READ_MAX_CHARS)} characters\n`,
  );
  console.log('locks  chars   rule      loop held p50      max   answer p50');
  try {
    for (const count of COUNTS) {
      const holder = count > 0 ? await holdLocks(path, count) : undefined;
      try {
        const chars = (await text.inPool()).length;
        const rules = { 'at once': Infinity, agent: HOT_READ_MAX_CHARS };
        const results: Record<string, Round[]> = { 'at once': [], agent: [] };
        for (let r = 0; r < ROUNDS; r++) {
          for (const [name, bound] of r % 2 === 0 ? Object.entries(rules) : Object.entries(rules).reverse()) {
            results[name]?.push(await round(text, bound));
          }
        }
        for (const [name, rounds] of Object.entries(results)) {
          const held = rounds.flatMap((x) => x.held);
          const waited = rounds.flatMap((x) => x.waited);
          console.log(
            `${String(count).padStart(5)} ${String(chars).padStart(7)}   ${name.padEnd(8)} ${ms(median(held))} ${ms(Math.max(...held))} ${ms(median(waited))}`,
          );
        }
      } finally {
        if (holder !== undefined) await stopChild(holder);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
