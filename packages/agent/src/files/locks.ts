// Busy: is a lock held on a state? Read from /proc/locks, since a lock can't be probed without taking it.
import { openSync, readSync } from 'node:fs';

/** swtpm holds a POSIX (fcntl) lock on `tpm2/.lock`; QEMU holds OFD locks on NVRAM; flock(1) takes FLOCK. */
const LOCK_KINDS = new Set(['POSIX', 'FLOCK', 'OFDLCK']);

/** Reads the inode numbers that hold locks now, as decimal strings. Throws when /proc/locks can't be read. */
export type ReadLockedInodes = () => Promise<ReadonlySet<string>>;

/**
 * Read synchronously on purpose: /proc/locks is made in memory by the kernel on read and never waits on a disk,
 * so a read on the event loop (µs) beats trips through libuv's 4-thread pool, which the fsyncs of concurrent ops
 * keep busy (a delete batch ran ~40% slower with the async read). One fd, kept open and read from offset 0 each
 * time (the kernel makes the text afresh for a read at 0: a lock taken since the last read is in it), instead of
 * an open, fstat, reads and close per look. Text unchanged since the last read gives back the same Set object:
 * `sameLocks` is then one comparison.
 */
export const readProcLocks: ReadLockedInodes = () => Promise.resolve(procLocks.read());

const procLocks = (() => {
  let fd: number | undefined;
  let buffer = Buffer.alloc(64 * 1024);
  let lastText: string | undefined;
  let lastSet: ReadonlySet<string> = new Set();
  const readText = (): string => {
    fd ??= openSync('/proc/locks', 'r');
    let length = 0;
    for (;;) {
      if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.alloc(buffer.length)]);
      const read = readSync(fd, buffer, length, buffer.length - length, length);
      if (read === 0) return buffer.toString('latin1', 0, length);
      length += read;
    }
  };
  return {
    read(): ReadonlySet<string> {
      const text = readText();
      if (text !== lastText) {
        lastSet = parseProcLocks(text);
        lastText = text;
      }
      return lastSet;
    },
  };
})();

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
