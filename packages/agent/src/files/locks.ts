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
  return async () => {
    handle ??= open('/proc/locks', 'r');
    const fd = await handle.catch((error: unknown) => {
      handle = undefined;
      throw error;
    });
    let buffer = Buffer.allocUnsafe(64 * 1024);
    let length = 0;
    for (;;) {
      if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
      const { bytesRead } = await fd.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) return buffer.toString('latin1', 0, length);
      length += bytesRead;
    }
  };
}

/**
 * Reads through `readText`, shared as readProcLocks says: at most one read running and one queued behind it; a
 * caller never gets a read that started before it called.
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
    if (running === undefined) return start();
    queued ??= running
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
