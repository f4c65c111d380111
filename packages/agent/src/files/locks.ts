// Busy: is a lock held on a state? Read from /proc/locks, since a lock can't be probed without taking it.
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * A line of /proc/locks holding a lock of a kind that counts — swtpm holds a POSIX (fcntl) lock on `tpm2/.lock`, QEMU
 * OFD locks on NVRAM, flock(1) takes FLOCK — and its inode number, leading zeros left out: its second field that
 * kind, its sixth `major:minor:inode`; fields apart by whitespace other than a newline. One pass of one expression
 * over the whole text: a host with 5,000 locks took 2.0 ms a parse split line by line, 0.48 ms so.
 */
const LOCK_LINE =
  /^[^\S\n]*\S+[^\S\n]+(?:POSIX|FLOCK|OFDLCK)[^\S\n]+\S+[^\S\n]+\S+[^\S\n]+\S+[^\S\n]+[0-9a-f]+:[0-9a-f]+:0*(\d+)(?=[^\S\n]|$)/gm;

/** Reads the inode numbers that hold locks now, as decimal strings. Throws when /proc/locks can't be read. */
export type ReadLockedInodes = () => Promise<ReadonlySet<string>>;

/** How soon after the end of the last read of /proc/locks the next is made on the event loop (see readProcLocks). */
export const HOT_READ_MS = 5;

/**
 * The longest text of the last read after which the next may still be made on the event loop (see readProcLocks):
 * 16 KiB, ~290 locks, four pages of the kernel's, measured here at ~0.1 ms a read.
 */
export const HOT_READ_MAX_CHARS = 16 * 1024;

/**
 * A read of /proc/locks can block for a whole RCU grace period: the kernel takes the global file-lock rwsem for
 * writing to list the locks (fs/locks.c, locks_start: percpu_down_write), and after an idle spell that waits for a
 * grace period — measured here: 0.03 ms for reads back to back, but a median of 8 ms and up to 50 ms under load for
 * reads 20 ms apart, which is how an agent reads it. Through libuv's thread pool it never holds the event loop, but
 * on a small VM that trip costs ~0.1 ms of CPU, ten times the read. So:
 * - a read that follows the last one closely (within HOT_READ_MS of its end: the ops of a batch, requests that
 *   arrive together) is made at once, on the event loop: the rwsem is still as the read before left it, and the read
 *   does not wait. Measured here, idle and with the agent benchmark running: reads 5 ms apart p50 0.007–0.015 ms,
 *   p90 at most 0.03 ms, max 0.08 ms; up to 15 ms apart still under 0.1 ms; 20 ms apart p50 0.12–0.15 ms and up to
 *   7 ms. 5 ms, not the 1 ms of the release before: under 16 clients or a 100-op batch, ops that wait on fsyncs
 *   read 1–5 ms apart, and with 1 ms a third of their reads went through the pool, 2 ms each behind the fsyncs there;
 * - any other read — the first after an idle spell, the one that may wait — goes through the pool (an earlier
 *   release read every time on the event loop: fast in a benchmark that read back to back, it held every request
 *   of a real fleet's agent for those milliseconds);
 * - so does every read after one whose text was longer than HOT_READ_MAX_CHARS: a host's every lock is a line, and
 *   the kernel hands the text out a page per read(2), walking its list of locks from the start for each page, so a
 *   read costs more than its length (measured here: 300 locks 0.1 ms, 1,000 0.33 ms, 5,000 2 ms, 20,000 39 ms), and
 *   a text longer than a page is read twice (stableText). A host with that many locks pays it in the pool, where it
 *   holds a thread, not every request;
 * - concurrent callers share pool reads: a caller is served by a read that started after it called (so it sees
 *   every lock taken before its call, which is all a busy check needs), and while one read runs, every caller that
 *   comes joins the single read queued behind it;
 * - callers in one turn of the event loop share one read, made at its end (perTurn).
 * One fd, kept open and read from offset 0 each time (the kernel makes the text afresh for a read at 0), into one
 * kept buffer. Text unchanged since the last read gives back the same Set object: `sameLocks` is one comparison.
 */
export const readProcLocks: ReadLockedInodes = perTurn(sharedReads(procLocksText()));

/**
 * Every caller until the end of this turn of the event loop is served by one call of `read`, made then (`later`:
 * setImmediate, after the turn's I/O callbacks): the ops of a batch and the requests that arrive together reach
 * their busy checks in the same turn, 2 to 16 of them at once in the agent benchmark, and one read serves them all.
 * It starts after each of them called, which is all a busy check needs.
 */
export function perTurn<T = ReadonlySet<string>>(
  read: () => Promise<T>,
  later: (run: () => void) => void = (run) => {
    setImmediate(run);
  },
): () => Promise<T> {
  let next: Promise<T> | undefined;
  return () => {
    if (next !== undefined) return next;
    const { promise, resolve, reject } = deferred<T>();
    try {
      later(() => {
        next = undefined;
        // A read that throws rejects its callers, never the event loop.
        Promise.resolve().then(read).then(resolve, reject);
      });
    } catch (error) {
      // Nothing scheduled: this caller is refused, and nothing is kept for the callers after it.
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    next = promise;
    return promise;
  };
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve: (value: T) => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** /proc/locks, read whole: through the thread pool, or at once once its fd is open. */
export interface LocksText {
  readonly inPool: () => Promise<string>;
  /** undefined until a read in the pool has opened the fd */
  readonly now: () => string | undefined;
}

export function procLocksText(): LocksText {
  let handle: Promise<FileHandle> | undefined;
  let fd: number | undefined;
  // One buffer for every read (they never overlap, see sharedReads), grown when a text outgrows it: a fresh 64 KiB
  // for each read cost more CPU than the read itself (~0.1 ms of allocation and garbage collection per read here).
  let buffer = Buffer.allocUnsafe(64 * 1024);
  /** Room for read(2) at `length`, the buffer grown when full. */
  const room = (length: number): Buffer => {
    if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
    return buffer;
  };
  const whole = (length: number, chunks: number): ProcRead => ({ text: buffer.toString('latin1', 0, length), chunks });
  const readAll = async (): Promise<ProcRead> => {
    handle ??= open('/proc/locks', 'r');
    const file = await handle.catch((error: unknown) => {
      handle = undefined;
      throw error;
    });
    fd = file.fd;
    let length = 0;
    for (let chunks = 0; ; chunks++) {
      const into = room(length);
      const { bytesRead } = await file.read(into, length, into.length - length, length);
      if (bytesRead === 0) return whole(length, chunks);
      length += bytesRead;
    }
  };
  const readAllNow = (at: number): ProcRead => {
    let length = 0;
    for (let chunks = 0; ; chunks++) {
      const into = room(length);
      const bytesRead = readSync(at, into, length, into.length - length, length);
      if (bytesRead === 0) return whole(length, chunks);
      length += bytesRead;
    }
  };
  return {
    inPool: () => stableText(readAll),
    now: () => {
      const at = fd;
      return at === undefined ? undefined : stableTextNow(() => readAllNow(at));
    },
  };
}

/** One read of /proc/locks from offset 0 to its end: the text, and how many read(2) calls returned bytes. */
export interface ProcRead {
  readonly text: string;
  readonly chunks: number;
}

/**
 * A text in which no held lock can be missing. The kernel hands /proc/locks out a page at a time, listing under its
 * lock within each read(2) only: a read of several pages resumes by entry number, so a lock released between two
 * reads shifts the entries, and one held throughout can be skipped. A text of one read is whole. A longer one is
 * read again until two in a row agree (nothing moved meanwhile); after `attempts` reads that never agree, the union
 * of all of them is answered: a lock too many only makes a target busy, a lock too few could let a running VM's
 * state be deleted.
 */
export async function stableText(readAll: () => Promise<ProcRead>, attempts = 3): Promise<string> {
  const texts: string[] = [];
  for (;;) {
    const text = decided(texts, await readAll(), attempts);
    if (text !== undefined) return text;
  }
}

/** stableText, its reads made at once. */
export function stableTextNow(readAll: () => ProcRead, attempts = 3): string {
  const texts: string[] = [];
  for (;;) {
    const text = decided(texts, readAll(), attempts);
    if (text !== undefined) return text;
  }
}

/** stableText's rule, given the texts read so far and one more read: the text, or undefined to read again. */
function decided(texts: string[], read: ProcRead, attempts: number): string | undefined {
  if (texts.length === 0 && read.chunks <= 1) return read.text;
  if (texts.at(-1) === read.text) return read.text;
  texts.push(read.text);
  return texts.length < attempts ? undefined : texts.join('\n');
}

/** When sharedReads makes a read at once: within `hotMs` of the last one's end, and after a text of `hotMaxChars` at most. */
export interface HotReads {
  readonly now: () => number;
  readonly hotMs: number;
  /** HOT_READ_MAX_CHARS when left out */
  readonly hotMaxChars?: number;
}

/**
 * Reads as readProcLocks says: at once when the last read ended within `hotMs`, its text was no longer than
 * `hotMaxChars`, and none is running or queued; otherwise through the pool, at most one read running and one queued
 * behind it (made at once when it starts, the running one having just ended, and the same rules allow it). A caller
 * never gets a read that started before it called, and two reads never run at once (they share the fd and the
 * buffer).
 */
export function sharedReads(
  text: LocksText,
  clock: HotReads = { now: () => performance.now(), hotMs: HOT_READ_MS },
): ReadLockedInodes {
  const hotMaxChars = clock.hotMaxChars ?? HOT_READ_MAX_CHARS;
  let lastText: string | undefined;
  let lastSet: ReadonlySet<string> = new Set();
  let lastEnd = -Infinity;
  const setOf = (read: string): ReadonlySet<string> => {
    lastEnd = read.length > hotMaxChars ? -Infinity : clock.now();
    if (read !== lastText) {
      lastSet = parseProcLocks(read);
      lastText = read;
    }
    return lastSet;
  };
  const atOnce = (): Promise<ReadonlySet<string>> | undefined => {
    if (clock.now() - lastEnd >= clock.hotMs) return undefined;
    try {
      const read = text.now();
      return read === undefined ? undefined : Promise.resolve(setOf(read));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  };
  return oneAtATime(() => atOnce() ?? text.inPool().then(setOf));
}

/**
 * `run` made one at a time: a caller that comes while a run is going, or while the queued one is about to start, is
 * served by the queued one, which starts once the running one has ended (whether it failed or not) — so every caller
 * is served by a run that started after it called, and at most one run goes on and one waits.
 */
export function oneAtATime<T>(run: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  let queued: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const started = run();
    running = started;
    const done = (): void => {
      if (running === started) running = undefined;
    };
    started.then(done, done);
    return started;
  };
  return () => {
    if (queued !== undefined) return queued;
    if (running === undefined) return start();
    queued = running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        queued = undefined;
        return start();
      });
    return queued;
  };
}

/**
 * Whether two reads found the same locked inodes (the same Set when readProcLocks saw unchanged text). A look that
 * found a unit free of every lock of `before` needs no second walk when the locks are still `before`: no lock was
 * taken since, so none can be in the unit — short of someone hard-linking or renaming an already locked file into
 * it, which no swtpm, QEMU or libvirt does.
 */
export function sameLocks(now: ReadonlySet<string>, before: ReadonlySet<string>): boolean {
  if (now === before) return true;
  if (now.size !== before.size) return false;
  for (const inode of now) if (!before.has(inode)) return false;
  return true;
}

/**
 * The inodes in `/proc/locks` text (proc_locks(5)): `1: POSIX  ADVISORY  WRITE 3779 fe:00:1474578 0 EOF`.
 * Lines `1: -> POSIX …` are waiters blocked on a lock listed above them: skipped. Only the inode number is kept,
 * not the device: a lock on another file system's inode of the same number then counts too, which can only refuse
 * an op, never let one through; and on stacked file systems the device /proc/locks shows need not be stat's.
 */
export function parseProcLocks(text: string): Set<string> {
  const inodes = new Set<string>();
  for (const match of text.matchAll(LOCK_LINE)) inodes.add(match[1] ?? '');
  return inodes;
}

/** Whether any of `inodes` (bigint st_ino of files and directories of a target) is locked now. */
export async function anyLocked(read: ReadLockedInodes, inodes: Iterable<bigint>): Promise<boolean> {
  const locked = await read();
  if (locked.size === 0) return false;
  for (const inode of inodes) if (locked.has(inode.toString())) return true;
  return false;
}
