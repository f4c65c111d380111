// CPU time a server process has used: the on-CPU nanoseconds of each of its threads (the event loop, libuv's
// thread pool where file-system calls run, V8's helpers), from /proc. Less swayed than wall time by other load on
// the machine, so it tells where the agent's cost is even when the throughput figures are noisy. And how busy the
// machine's cores were: when they are nearly full, every process's CPU time (the server's, the clients', the kernel's
// threads') is what the rate is made of.
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

/** The whole machine's CPU time since boot, in clock ticks: busy (steal included) and in all. */
export interface MachineTicks {
  readonly busy: number;
  readonly total: number;
}

/**
 * The first line of /proc/stat (proc_stat(5)): `cpu  user nice system idle iowait irq softirq steal guest guest_nice`.
 * Idle and I/O wait are the cores' free time; steal, time the hypervisor gave elsewhere, counts as busy: the cores
 * were not this machine's to use. Guest time is inside user and nice already. Fields an older kernel lacks count 0.
 */
export function machineTicksOf(text: string): MachineTicks {
  const line = text.split('\n', 1)[0] ?? '';
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu') throw new Error(`not the first line of /proc/stat: ${JSON.stringify(line.slice(0, 40))}`);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
    .slice(1, 9)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

export const machineTicks = (): MachineTicks => machineTicksOf(readFileSync('/proc/stat', 'utf8'));
