// CPU time a server process has used: the on-CPU nanoseconds of each of its threads (the event loop, libuv's
// thread pool where file-system calls run, V8's helpers), from /proc. Less swayed than wall time by other load on
// the machine, so it tells where the agent's cost is even when the throughput figures are noisy.
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSeconds {
  /** all its threads */
  readonly all: number;
  /** its main thread (the one whose id is the pid): the event loop, where every request's JavaScript runs */
  readonly loop: number;
}

export function cpuSecondsOf(pid: number): CpuSeconds {
  let all = 0;
  let loop = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const nanoseconds = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      all += nanoseconds;
      if (task === String(pid)) loop = nanoseconds;
    } catch (error) {
      // A thread that ended between the listing and the read: its time is lost, a few ms at most.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return { all: all / 1e9, loop: loop / 1e9 };
}
