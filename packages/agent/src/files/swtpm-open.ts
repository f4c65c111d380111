// Busy without a lock: a swtpm keeping its TPM state in one file (`--tpmstate backend-uri=file://PATH`, what
// Proxmox, UTM and container setups run) takes no lock on it, so /proc/locks never shows it. Measured with swtpm
// 0.7.1: it keeps the file open and mapped for as long as it runs, and locks nothing. Which file a swtpm runs on is
// in its command line, which /proc shows any process (its open fds only to one allowed to ptrace it: the agent's
// unit grants no CAP_SYS_PTRACE, and needs none for this).
import { openSync, readdirSync, readFileSync, readSync, type BigIntStats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, isAbsolute, normalize } from 'node:path';
import { mapLimit } from '@hostfiles/shared';
import { errnoOf } from './fd-path.js';
import { oneAtATime, perTurn, type ReadLockedInodes } from './locks.js';
import { OpIoError } from './op-failure.js';
import type { Target } from './target.js';

/** The file a look is about: where it is now, and the path it had where a swtpm would name it. */
export interface LookedAt {
  /** its device, inode, owner, group and mode (lstat) */
  readonly stats: {
    readonly dev: bigint;
    readonly ino: bigint;
    readonly uid: bigint;
    readonly gid: bigint;
    readonly mode: bigint;
  };
  /** its absolute path before any move aside: what a swtpm's command line names */
  readonly path: string;
}

/**
 * What one look at the processes found: which files running swtpms keep their state in. Only a swtpm whose user could
 * have opened the file for writing counts (couldOpen): no one else can make the agent refuse ops on a file by naming
 * a process swtpm.
 */
export interface SwtpmStates {
  /**
   * The inode numbers (decimal, as ReadLockedInodes gives them) of those files, as the look found them at the paths
   * their swtpms name: to be counted as locked (withSwtpmStates), so that a unit holding one at any depth is busy.
   */
  readonly inodes: ReadonlySet<string>;
  /**
   * Whether this file is such a state: by its device and inode, or by its path in any form (also when no file was
   * there at the look), or because a swtpm names a relative path in a working directory the look cannot see and its
   * user could have opened this file. Asked of the files right below the TPM state root (swtpmRunsOn).
   */
  readonly runsOn: (file: LookedAt) => boolean;
}

/**
 * Looks at the processes now, or in this turn of the event loop (one look serves every caller of a turn, and starts
 * after each of them called). Rejects, an OpIoError, when it can't tell (/proc unreadable, out of fds): no proof of
 * any file free.
 */
export interface LookAtSwtpms {
  (): Promise<SwtpmStates>;
  /** The look made at once, when it can be (no swtpm running, no process made since the last look); else undefined. */
  readonly peek?: () => SwtpmStates | undefined;
}

/**
 * Whether a running swtpm keeps its state in the file unit `components` names, found as `target` (inspect), by its
 * path or because the look cannot see where a swtpm's relative path leads: asked of the file units of a root that
 * looks (`swtpms`: the TPM state root). A state file at any depth of any unit is seen by its inode, which the root's
 * locks count (withSwtpmStates). `target` may have been moved aside: the path asked about is the unit's own.
 * `look`: another look to ask (one per listing).
 */
export async function swtpmRunsOn(
  root: { readonly path: string; readonly swtpms?: LookAtSwtpms },
  components: readonly string[],
  target: Target,
  look = root.swtpms,
): Promise<boolean> {
  const [name] = components;
  if (look === undefined || components.length !== 1 || name === undefined || target.kind !== 'file') return false;
  return (await look()).runsOn({ stats: target.stats, path: `${root.path}/${name}` });
}

/**
 * The locks `readLocks` reads, with the inodes of the files running swtpms keep their state in (`look`) counted as
 * locked: the TPM state root's busy checks, which then walk a unit holding one at any depth as they walk one holding
 * a lock (preconditions.ts, target.ts), and so do the settling of leftovers, recovery, stat, busy and listings. The
 * locks' own Set is given back while no swtpm runs on a file; otherwise one union per pair of Sets read, the same
 * object while both stay the same (FreeUnits remembers units found free under one Set only).
 */
export function withSwtpmStates(readLocks: ReadLockedInodes, look: LookAtSwtpms): ReadLockedInodes {
  let last: { locks: ReadonlySet<string>; inodes: ReadonlySet<string>; union: ReadonlySet<string> } | undefined;
  return async () => {
    // No swtpm runs on a file (most hosts, most of the time): the locks as they are, no more waiting than theirs.
    const now = look.peek?.();
    if (now?.inodes.size === 0) return readLocks();
    const [locks, { inodes }] = await Promise.all([readLocks(), now ?? look()]);
    if (inodes.size === 0) return locks;
    if (last?.locks !== locks || last.inodes !== inodes)
      last = { locks, inodes, union: new Set([...locks, ...inodes]) };
    return last.union;
  };
}

/** How many swtpms are looked at again at once (their process and their file's stat, through the thread pool). */
const AT_ONCE = 16;

/**
 * How long what a look read of a process is taken as still so. A look reads a process's name and kind (its `stat`:
 * ~10 µs, under no lock of its memory map) when it first sees it, again at every look during the first RESCAN_MS of its
 * life (its start time in that `stat`: a child forked a moment ago may exec swtpm any time now, libvirt and systemd set
 * a child up for milliseconds before its exec), then once every RESCAN_MS: only an exec changes it, and a swtpm exec'd
 * by a process older than that is seen within this time. A kernel thread is read once (it never execs). The command
 * line is read only of a process named `swtpm`: a read of another process's command line takes its memory map's lock,
 * and waits and spins on it while that process maps and unmaps (reading every process's once a second cost the agent
 * ~0.06 ms of CPU per request in the benchmark, up to 0.3 ms in one run).
 */
export const RESCAN_MS = 1000;

/**
 * A swtpm running on a state file: its pid and user; the file's path, and its device, inode, owner, group and mode
 * when the look found it there; `unseen` when the look can't tell which file its path leads to (a working directory
 * it may not see, no ptrace access).
 */
interface Running {
  readonly pid: string;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly path: string;
  readonly stats?: BigIntStats;
  readonly unseen?: true;
}

/**
 * A process as a look last read it: when (before the read began), when it started (by its start time, or when a look
 * first saw it if that can't be told), both by the look's clock; and the state file it runs swtpm on, if any.
 */
interface Seen {
  readonly at: number;
  readonly first: number;
  readonly state?: string;
  /** a kernel thread: it never execs */
  readonly kernel?: true;
}

export interface SwtpmLookOptions {
  /** The clock (ms) of RESCAN_MS; performance.now() when left out. */
  readonly now?: () => number;
  /** The TPM state root: where another user's swtpm's state file is looked for (runningOf). */
  readonly root?: string;
  /** How long a look waits for a swtpm's command line; CMDLINE_WAIT_MS when left out. */
  readonly waitMs?: number;
}

/**
 * How long a look waits for the command line of a process named swtpm (a read that takes its memory map's lock,
 * which a process can keep taken: a fault on a FUSE file whose server never answers). Past it the look fails (it
 * can't tell), and so does every look while that read has not come back, none of them reading again: one thread of
 * the pool at most waits on it, never the four every file operation needs.
 */
export const CMDLINE_WAIT_MS = 2000;

/**
 * Looks at the processes in `proc` (/proc) for swtpms running on a state file, each look shared by the callers of
 * one turn of the event loop and one at a time (locks.ts, perTurn and oneAtATime). A relative path is resolved in
 * swtpm's working directory, which only ptrace access shows: unseen, that swtpm counts as running on every file its
 * user could have opened. A process that ends meanwhile is skipped.
 */
export function swtpmStates(proc = '/proc', options: SwtpmLookOptions = {}): LookAtSwtpms {
  const { now = () => performance.now(), root, waitMs = CMDLINE_WAIT_MS } = options;
  let seen = new Map<string, Seen>();
  let inodes: ReadonlySet<string> = new Set();
  let inodesKey = '';
  let lastPid: string | undefined;
  /** When a process seen is due to be read again (RESCAN_MS after its last read): the next look lists /proc. */
  let due = -Infinity;
  let last: SwtpmStates | undefined;
  const readLastPid = lastPidOf(proc);
  /** The read of a swtpm's command line that did not come back in time, while it has not. */
  let late: string | undefined;
  const cannotTell = (pid: string): OpIoError =>
    new OpIoError(
      `cannot tell which files running swtpms keep their state in: the command line of process ${pid} (named swtpm) did not come in ${waitMs} ms`,
    );
  const commandLine = async (pid: string): Promise<Buffer | undefined> => {
    const read = gone(readFile(`${proc}/${pid}/cmdline`));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => {
        resolve('late');
      }, waitMs);
    });
    const first = await Promise.race([read, timedOut]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    late = pid;
    const back = (): void => {
      late = undefined;
    };
    read.then(back, back);
    throw cannotTell(pid);
  };
  /**
   * Every process in /proc: those read within RESCAN_MS as they were (a kernel thread once and for all: it never
   * execs), the others read now. A pid given out since the last listing (after `before`, up to `pid`) is a new
   * process, whatever a look saw of that pid before (its number freed and given out again).
   */
  const listed = async (
    started: number,
    before: string | undefined,
    pid: string | undefined,
  ): Promise<Map<string, Seen>> => {
    const given = givenOut(before, pid);
    // A process never seen before is as old as its start time says, not new to this look (at the agent's start every
    // process would otherwise be young for RESCAN_MS, read again at every look): when it started by the look's clock,
    // from the time since boot, read once a listing and only when some process is new to it.
    let boot: { readonly ms: number | undefined; readonly at: number } | undefined;
    const startOf = (ticks: number): number => {
      boot ??= { ms: uptimeMsOf(proc), at: now() };
      return boot.at - ageMs(boot.ms, ticks);
    };
    const next = new Map<string, Seen>();
    const named: [string, number][] = [];
    for (const id of readdirSync(proc)) {
      if (!/^\d+$/.test(id)) continue;
      const known = given(id) ? undefined : seen.get(id);
      // A young process is read again at every listing too: it may exec swtpm any moment.
      const fresh = started - (known?.at ?? -Infinity) < RESCAN_MS && started - (known?.first ?? started) >= RESCAN_MS;
      if (known !== undefined && (known.kernel === true || fresh)) {
        next.set(id, known);
        continue;
      }
      const read = processOf(proc, id);
      if (read === undefined) continue;
      const first = known?.first ?? startOf(read.startTicks);
      if (read.name === 'swtpm') named.push([id, first]);
      else next.set(id, read.kernel ? { at: started, first, kernel: true } : { at: started, first });
    }
    // One at a time: a read that never comes back holds one thread of the pool, not AT_ONCE of them.
    await mapLimit(named, 1, async ([id, first]) => {
      const seenNow = await swtpmSeen(id, started, first);
      if (seenNow !== undefined) next.set(id, seenNow);
    });
    return next;
  };
  /** A process named swtpm, as its command line says now; undefined when it has ended. */
  const swtpmSeen = async (pid: string, at: number, first: number): Promise<Seen | undefined> => {
    const cmdline = await commandLine(pid);
    if (cmdline === undefined) return undefined;
    const state = swtpmFileState(cmdline);
    return state === undefined ? { at, first } : { at, first, state };
  };
  /** The swtpms among `seen`: pid and the state file named. */
  let swtpms: [string, string][] = [];
  /** The processes started less than RESCAN_MS ago (not kernel threads, not swtpms yet): pid, and when. */
  let young = new Map<string, number>();
  /**
   * Reads the young processes' names again (each a system call, no lock of theirs), forgets those no longer young or
   * ended, and gives the pids of those now named swtpm: a fork that has exec'd swtpm since the last look.
   */
  const execedSwtpm = (at: number): string[] => {
    const execed: string[] = [];
    for (const [id, first] of young) {
      const read = at - first < RESCAN_MS ? processOf(proc, id) : undefined;
      if (read === undefined) young.delete(id);
      else if (read.name === 'swtpm') execed.push(id);
    }
    return execed;
  };
  /** Whether the processes seen are every process there is (see look). */
  const unchanged = (pid: string | undefined, at: number): boolean => pid !== undefined && pid === lastPid && at < due;
  const look = async (): Promise<SwtpmStates> => {
    if (late !== undefined) throw cannotTell(late);
    const started = now();
    // No process made since the last listing (the last pid given out is the same) and none due to be read again:
    // the processes seen are every process there is. Only the young among them are read again (have they exec'd
    // swtpm?), and the swtpms among them looked at again.
    const pid = readLastPid();
    if (unchanged(pid, started)) {
      const execed = execedSwtpm(started);
      if (execed.length === 0 && swtpms.length === 0 && last !== undefined) return last;
      for (const id of execed) {
        young.delete(id);
        const seenNow = await swtpmSeen(id, started, seen.get(id)?.first ?? started);
        if (seenNow === undefined) continue;
        seen.set(id, seenNow);
        if (seenNow.state !== undefined) swtpms = [...swtpms, [id, seenNow.state]];
      }
    } else {
      const listing = await listed(started, lastPid, pid);
      seen = listing;
      lastPid = pid;
      due = started + RESCAN_MS;
      swtpms = [];
      young = new Map();
      for (const [id, { at, first, state, kernel }] of listing) {
        if (kernel !== true) due = Math.min(due, at + RESCAN_MS);
        if (state !== undefined) swtpms.push([id, state]);
        else if (kernel !== true && started - first < RESCAN_MS) young.set(id, first);
      }
    }
    const looked = swtpms;
    const found = await mapLimit(looked, AT_ONCE, ([id, state]) => runningOf(proc, id, state, root));
    // An ended swtpm is forgotten (the other processes that ended, at the next listing).
    if (swtpms === looked) swtpms = looked.filter((_, i) => found[i] !== undefined);
    const running = found.filter((swtpm) => swtpm !== undefined);
    // The same Set while the same swtpms run on the same files (FreeUnits remembers units under one Set only).
    const states = stateInodes(running);
    if (states.key !== inodesKey) [inodes, inodesKey] = [states.inodes, states.key];
    last = { inodes, runsOn: running.length === 0 ? () => false : runsOnOf(running) };
    return last;
  };
  const shared = perTurn(
    oneAtATime(() =>
      look().catch((error: unknown) => {
        const code = errnoOf(error);
        if (code === undefined) throw error;
        throw new OpIoError(`cannot tell which files running swtpms keep their state in: ${code} reading ${proc}`);
      }),
    ),
  );
  // The look made at once, when it needs no system call but the read of the last pid and of the young processes'
  // names: no swtpm was running at the last look, no process has been made since, none has exec'd swtpm.
  const peek = (): SwtpmStates | undefined => {
    if (late !== undefined || swtpms.length !== 0 || last === undefined || last.inodes.size !== 0) return undefined;
    const at = now();
    return unchanged(readLastPid(), at) && execedSwtpm(at).length === 0 ? last : undefined;
  };
  return Object.assign(() => shared(), { peek });
}

/**
 * A process's name (`comm`, its program's file name cut to 15 bytes: `swtpm` for swtpm) and whether it is a kernel
 * thread (PF_KTHREAD in its flags), from its `stat`, read at once: the kernel makes that text under the task's own
 * short locks, never its memory map's. Undefined when it has ended.
 */
function processOf(
  proc: string,
  pid: string,
): { readonly name: string; readonly kernel: boolean; readonly startTicks: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`${proc}/${pid}/stat`, 'latin1');
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw error;
  }
  // `pid (name) state ppid pgrp session tty tpgid flags …`: the name may hold spaces and parentheses. From the state
  // on, fields 3 and up: flags is the 9th, starttime (clock ticks since boot) the 22nd.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  const flags = Number(fields[6]);
  return {
    name: text.slice(open + 1, close),
    kernel: (flags & PF_KTHREAD) !== 0,
    startTicks: ticksOf(fields[19]),
  };
}

/** A starttime field (the line's last when no field follows it); NaN when it is not a number. */
const ticksOf = (field: string | undefined): number => {
  const text = field?.trim() ?? '';
  return /^\d+$/.test(text) ? Number(text) : NaN;
};

/**
 * USER_HZ, the unit of a process's starttime: 100 on every architecture Linux runs KVM hosts on (x86, arm64, ppc64,
 * s390). Were it larger, a process would only seem younger than it is: read again more often, never less.
 */
const TICKS_PER_SECOND = 100;

/**
 * How long ago a process started (ms), from /proc's uptime and its starttime, less one tick (the kernel cuts both
 * down to a tick: an age is never overstated); 0 (new) when either is unknown.
 */
function ageMs(bootMs: number | undefined, startTicks: number): number {
  if (bootMs === undefined || !Number.isFinite(startTicks)) return 0;
  return Math.max(0, bootMs - ((startTicks + 1) * 1000) / TICKS_PER_SECOND);
}

/** The time since boot (ms) in `proc/uptime`, as the kernel counts a process's starttime; undefined when unreadable. */
function uptimeMsOf(proc: string): number | undefined {
  try {
    const seconds = Number(readFileSync(`${proc}/uptime`, 'latin1').split(' ')[0]);
    return Number.isFinite(seconds) ? seconds * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The kernel's flag of a kernel thread (include/linux/sched.h). */
const PF_KTHREAD = 0x00200000;

/**
 * Whether a pid was given out after `before` and up to `now` (the last pids of two listings), counting round past
 * the largest pid; false for every pid when either is unknown (then a pid seen before is taken as the same process
 * until it is read again, RESCAN_MS after its last read). A pid given out again after a whole round within one
 * listing's time goes unnoticed: more processes made in under RESCAN_MS than the host's pid_max (4,194,304 where
 * systemd sets it).
 */
function givenOut(before: string | undefined, now: string | undefined): (pid: string) => boolean {
  if (before === undefined || now === undefined || before === now) return () => false;
  const [from, to] = [Number(before), Number(now)];
  return (pid) => {
    const n = Number(pid);
    return from < to ? n > from && n <= to : n > from || n <= to;
  };
}

/**
 * Reads the last pid the kernel gave out (the last field of `proc/loadavg`, of the agent's own pid namespace, in
 * which every process of the host has a pid), through one fd kept open: ~1 µs, against ~40 µs to list /proc. A
 * process made since the last read changes it. Undefined when it can't be read (then /proc is listed every look).
 */
function lastPidOf(proc: string): () => string | undefined {
  const buffer = Buffer.alloc(128);
  const fd = (): number => {
    let open = loadavgFds.get(proc);
    if (open === undefined) {
      open = openSync(`${proc}/loadavg`, 'r');
      loadavgFds.set(proc, open);
    }
    return open;
  };
  const read = (): string | undefined => {
    try {
      const text = buffer.toString('latin1', 0, readSync(fd(), buffer, 0, buffer.length, 0)).trim();
      return /^\S+ \S+ \S+ \d+\/\d+ (\d+)$/.exec(text)?.[1];
    } catch {
      return undefined;
    }
  };
  // Opened now, with the store, as its other kept fds are: not by whichever op looks first.
  read();
  return read;
}

/** One fd per `loadavg` read, kept for the life of the process, shared by every look at the same /proc. */
const loadavgFds = new Map<string, number>();

/**
 * The swtpm `pid` as it is now (its user, where its state file is), or undefined when it has ended. An absolute path
 * that leads to no file now (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG) is compared as a path only. One the look cannot
 * follow (EACCES, …), and a relative one it cannot resolve (swtpm's working directory, which /proc shows only with
 * ptrace access), make that swtpm unseen: the look can't tell which file it runs on, and every file its user could
 * have opened counts (runsOn).
 */
async function runningOf(
  proc: string,
  pid: string,
  state: string,
  root: string | undefined,
): Promise<Running | undefined> {
  const owner = await gone(stat(`${proc}/${pid}`, { bigint: true }));
  if (owner === undefined) return undefined;
  const path = isAbsolute(state) ? normalize(state) : `${proc}/${pid}/cwd/${state}`;
  const swtpm = { pid, uid: owner.uid, gid: owner.gid, path };
  // Another user's swtpm is looked for below the root only: a path it names elsewhere is not stat'ed by root, so no
  // user can hold every look up on a path of theirs that never answers (a FUSE or a dead NFS mount).
  if (owner.uid !== 0n && root !== undefined && isAbsolute(state) && !path.startsWith(`${root}/`)) return swtpm;
  try {
    return { ...swtpm, stats: await stat(path, { bigint: true }) };
  } catch (error) {
    const code = errnoOf(error);
    if (code === undefined) throw error;
    if (isAbsolute(state) && NOWHERE.has(code)) return swtpm;
    return { ...swtpm, unseen: true };
  }
}

/** What stat answers for a path that leads to no file now. */
const NOWHERE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG']);

/**
 * The inodes of the state files found, regular files each one its swtpm's user could have opened; and a key of them
 * with their swtpms' pids and devices, which tells one such set from another with the same numbers.
 */
function stateInodes(running: readonly Running[]): { inodes: Set<string>; key: string } {
  const inodes = new Set<string>();
  const keys: string[] = [];
  for (const swtpm of running) {
    const { stats } = swtpm;
    if (stats === undefined || !stats.isFile() || !couldOpen(swtpm, stats)) continue;
    inodes.add(stats.ino.toString());
    keys.push(`${swtpm.pid}:${stats.dev}:${stats.ino}`);
  }
  return { inodes, key: keys.sort().join(' ') };
}

function runsOnOf(running: readonly Running[]): SwtpmStates['runsOn'] {
  return (file) => {
    const path = normalize(file.path);
    return running.some(
      (swtpm) =>
        couldOpen(swtpm, file.stats) &&
        (swtpm.unseen === true ||
          swtpm.path === path ||
          (swtpm.stats?.dev === file.stats.dev && swtpm.stats.ino === file.stats.ino)),
    );
  };
}

/**
 * Whether the swtpm's user could have opened the file for writing, by its owner, group and mode: root, its owner,
 * its group when the mode lets the group write, anyone when it lets others write. (The process's own group only:
 * /proc shows no one its supplementary groups without reading its status, and a state file is its owner's, 0600.)
 */
function couldOpen(swtpm: Pick<Running, 'uid' | 'gid'>, file: LookedAt['stats']): boolean {
  if (swtpm.uid === 0n || swtpm.uid === file.uid) return true;
  if ((file.mode & 0o020n) !== 0n && swtpm.gid === file.gid) return true;
  return (file.mode & 0o002n) !== 0n;
}

/**
 * The file a swtpm command line keeps its state in (`--tpmstate backend-uri=file://PATH[,mode=…]`, or `=` joined),
 * or undefined: not swtpm, or a state directory (`dir=`, `backend-uri=dir://`), whose `.lock` swtpm holds.
 */
export function swtpmFileState(cmdline: Buffer): string | undefined {
  const argv = cmdline.toString('utf8').split('\0');
  if (basename(argv[0] ?? '') !== 'swtpm') return undefined;
  for (const [i, arg] of argv.entries()) {
    const value = arg === '--tpmstate' ? argv[i + 1] : arg.startsWith('--tpmstate=') ? arg.slice(11) : undefined;
    const uri = value
      ?.split(',')
      .find((option) => option.startsWith('backend-uri='))
      ?.slice('backend-uri='.length);
    if (uri?.startsWith('file://') === true) return uri.slice('file://'.length);
  }
  return undefined;
}

/** The value, or undefined when what was looked at went away meanwhile (a process ended, a file removed). */
async function gone<T>(look: Promise<T>): Promise<T | undefined> {
  try {
    return await look;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw error;
  }
}
