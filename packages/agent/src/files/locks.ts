// Busy: is a lock held on a state? Read from /proc/locks, since a lock can't be probed without taking it.
import { open, type FileHandle } from 'node:fs/promises';

/** swtpm holds a POSIX (fcntl) lock on `tpm2/.lock`; QEMU holds OFD locks on NVRAM; flock(1) takes FLOCK. */
const LOCK_KINDS = new Set(['POSIX', 'FLOCK', 'OFDLCK']);

/** Reads the inode numbers that hold locks now, as decimal strings. Throws when /proc/locks can't be read. */
export type ReadLockedInodes = () => Promise<ReadonlySet<string>>;

/**
 * A read of /proc/locks can block for a whole RCU grace period: the kernel takes the global file-lock rwsem for
 * writing to list the locks (fs/locks.c, locks_start: percpu_down_write), and after an idle spell that waits for a
 * grace period — measured here: 0.03 ms for reads back to back, but a median of 8 ms and up to 50 ms under load for
 * reads 20 ms apart, which is how an agent reads it. So:
 * - it is read in libuv's thread pool, never on the event loop (an earlier synchronous read, fast in a benchmark
 *   that read back to back, held every request of a real fleet's agent for those milliseconds);
 * - concurrent callers share reads: a caller is served by a read that started after it called (so it sees every
 *   lock taken before its call, which is all a busy check needs), and while one read runs, every caller that comes
 *   joins the single read queued behind it. A batch's ops, however many, then cost two or three reads, not two each.
 * One fd, kept open and read from offset 0 each time (the kernel makes the text afresh for a read at 0). Text
 * unchanged since the last read gives back the same Set object: `sameLocks` is then one comparison.
 */
export const readProcLocks: ReadLockedInodes = sharedReads(procLocksText());

function procLocksText(): () => Promise<string> {
  let handle: Promise<FileHandle> | undefined;
  // One buffer for every read (they never overlap, see sharedReads), grown when a text outgrows it: a fresh 64 KiB
  // for each read cost more CPU than the read itself (~0.1 ms of allocation and garbage collection per read here).
  let buffer = Buffer.allocUnsafe(64 * 1024);
  const readAll = async (): Promise<ProcRead> => {
    handle ??= open('/proc/locks', 'r');
    const fd = await handle.catch((error: unknown) => {
      handle = undefined;
      throw error;
    });
    let length = 0;
    for (let chunks = 0; ; chunks++) {
      if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
      const { bytesRead } = await fd.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) return { text: buffer.toString('latin1', 0, length), chunks };
      length += bytesRead;
    }
  };
  return () => stableText(readAll);
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
  let read = await readAll();
  if (read.chunks <= 1) return read.text;
  const texts = [read.text];
  for (let i = 1; i < attempts; i++) {
    read = await readAll();
    if (read.text === texts[texts.length - 1]) return read.text;
    texts.push(read.text);
  }
  return texts.join('\n');
}

/**
 * Reads through `readText`, shared as readProcLocks says: at most one read running and one queued behind it; a
 * caller never gets a read that started before it called, and two reads never run at once (they would share the fd).
 */
export function sharedReads(readText: () => Promise<string>): ReadLockedInodes {
  let running: Promise<ReadonlySet<string>> | undefined;
  let queued: Promise<ReadonlySet<string>> | undefined;
  let lastText: string | undefined;
  let lastSet: ReadonlySet<string> = new Set();
  const start = (): Promise<ReadonlySet<string>> => {
    const read = readText().then((text) => {
      if (text !== lastText) {
        lastSet = parseProcLocks(text);
        lastText = text;
      }
      return lastSet;
    });
    running = read;
    const done = (): void => {
      if (running === read) running = undefined;
    };
    read.then(done, done);
    return read;
  };
  return () => {
    // One read at a time: a caller that comes while one runs, or while the queued one is about to start, is served
    // by the queued one, which starts after it called.
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
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === '->' || !LOCK_KINDS.has(fields[1] ?? '')) continue;
    const inode = /^[0-9a-f]+:[0-9a-f]+:(\d+)$/.exec(fields[5] ?? '')?.[1];
    if (inode !== undefined) inodes.add(inode.replace(/^0+(?=\d)/, ''));
  }
  return inodes;
}

/** Whether any of `inodes` (bigint st_ino of files and directories of a target) is locked now. */
export async function anyLocked(read: ReadLockedInodes, inodes: Iterable<bigint>): Promise<boolean> {
  const locked = await read();
  if (locked.size === 0) return false;
  for (const inode of inodes) if (locked.has(inode.toString())) return true;
  return false;
}
